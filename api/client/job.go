package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// JobSpec says what a job does, as POST /api/v0/job/run takes it (the
// JSON of job.Spec; see that type for each field).
type JobSpec struct {
	Input          string        `json:"input"`
	Map            string        `json:"map"`
	Reduce         string        `json:"reduce,omitempty"`
	Reducers       int           `json:"reducers,omitempty"`
	Split          JobSplit      `json:"split,omitzero"`
	Budget         uint64        `json:"budget,omitempty"`          // millicredits
	TaskTimeout    time.Duration `json:"task_timeout,omitempty"`    // nanoseconds
	Timeout        time.Duration `json:"timeout,omitempty"`         // nanoseconds
	MaxAttempts    int           `json:"max_attempts,omitempty"`    //
	VerifyFraction float64       `json:"verify_fraction,omitempty"` // 0 to 1
	NoBackup       bool          `json:"no_backup,omitempty"`
	Nodes          []string      `json:"nodes,omitempty"`
}

// JobSplit says how a job's input is cut into map tasks: Size bytes a
// piece, each ending at a newline; zero: one task per file.
type JobSplit struct {
	Size int64 `json:"size,omitempty"`
}

// JobProgress is a job's counters (job.Progress).
type JobProgress struct {
	Phase        string        `json:"phase,omitempty"` // "map", "reduce", "" once ended
	Tasks        int           `json:"tasks"`
	Done         int           `json:"done"`
	Running      int           `json:"running"`
	Failed       int           `json:"failed"`
	BytesLocal   int64         `json:"bytes_local"`
	BytesFetched int64         `json:"bytes_fetched"`
	Nodes        int           `json:"nodes"`
	Spent        int64         `json:"spent"`
	Reserved     int64         `json:"reserved,omitempty"`
	Elapsed      time.Duration `json:"elapsed"`
	ETA          time.Duration `json:"eta,omitempty"`
}

// JobDisagreement is a verified task whose runs differed.
type JobDisagreement struct {
	Task     string            `json:"task"`
	Outputs  map[string]string `json:"outputs"`
	Minority []string          `json:"minority"`
}

// JobStatus is a job's state, progress and result (job.Status).
type JobStatus struct {
	ID            string            `json:"id"`
	Spec          JobSpec           `json:"spec"`
	State         string            `json:"state"` // running, done, failed, cancelled
	Progress      JobProgress       `json:"progress"`
	Started       time.Time         `json:"started"`
	Ended         time.Time         `json:"ended,omitzero"`
	Result        string            `json:"result,omitempty"` // the result directory's CID, once done
	Error         string            `json:"error,omitempty"`
	Disagreements []JobDisagreement `json:"disagreements,omitempty"`
}

// Running reports whether the job has not ended yet.
func (s JobStatus) Running() bool { return s.State == "" || s.State == "running" }

// JobLogLine is one line of a job's log.
type JobLogLine struct {
	At   time.Time `json:"at"`
	Msg  string    `json:"msg"`
	Task string    `json:"task,omitempty"`
	Node string    `json:"node,omitempty"`
}

// JobRef names a job, for cancel.
type JobRef struct {
	ID string `json:"id"`
}

// JobRun starts a job with the node as its coordinator; it answers at
// once with the job's first status.
func (c *Client) JobRun(ctx context.Context, spec JobSpec) (JobStatus, error) {
	var out JobStatus
	return out, c.Call(ctx, http.MethodPost, "/api/v0/job/run", spec, &out)
}

// JobStatus returns a job's state, progress and result.
func (c *Client) JobStatus(ctx context.Context, id string) (JobStatus, error) {
	var out JobStatus
	return out, c.Call(ctx, http.MethodGet, "/api/v0/job/status?"+url.Values{"id": {id}}.Encode(), nil, &out)
}

// JobsList lists the jobs the node coordinates, newest first.
func (c *Client) JobsList(ctx context.Context) ([]JobStatus, error) {
	var out []JobStatus
	return out, c.Call(ctx, http.MethodGet, "/api/v0/job/list", nil, &out)
}

// JobCancel stops a job.
func (c *Client) JobCancel(ctx context.Context, id string) error {
	return c.Call(ctx, http.MethodPost, "/api/v0/job/cancel", JobRef{ID: id}, nil)
}

// JobLogs returns a job's log, oldest first.
func (c *Client) JobLogs(ctx context.Context, id string) ([]JobLogLine, error) {
	var out []JobLogLine
	return out, c.Call(ctx, http.MethodGet, "/api/v0/job/logs?"+url.Values{"id": {id}}.Encode(), nil, &out)
}

// JobWatch yields a job's status about every interval (zero: the node's
// default) until it ends: the last status yielded is the ended one.
func (c *Client) JobWatch(ctx context.Context, id string, every time.Duration) iter.Seq2[JobStatus, error] {
	q := url.Values{"id": {id}}
	if every > 0 {
		q.Set("every", every.String())
	}
	return ndjson[JobStatus](ctx, c, http.MethodGet, "/api/v0/job/watch?"+q.Encode(), nil)
}

// JobPublish asks to publish a job's spec under a name.
type JobPublish struct {
	Name string  `json:"name"`
	Spec JobSpec `json:"spec"`
}

// JobPublished is a published job: its document's CID, its name, and its
// spec with the services pinned to descriptor CIDs.
type JobPublished struct {
	CID  string  `json:"cid"`
	Name string  `json:"name"`
	Spec JobSpec `json:"spec"`
}

// JobPublishedRef names a published job: its CID, or the name it was
// published under on the node.
type JobPublishedRef struct {
	Ref string `json:"ref"`
}

// JobPublish publishes a job's spec; the answer's CID runs it again.
func (c *Client) JobPublish(ctx context.Context, name string, spec JobSpec) (JobPublished, error) {
	var out JobPublished
	return out, c.Call(ctx, http.MethodPost, "/api/v0/job/publish", JobPublish{Name: name, Spec: spec}, &out)
}

// JobRunPublished runs a published job with the node as its coordinator.
func (c *Client) JobRunPublished(ctx context.Context, ref string) (JobStatus, error) {
	var out JobStatus
	return out, c.Call(ctx, http.MethodPost, "/api/v0/job/run-published", JobPublishedRef{Ref: ref}, &out)
}
