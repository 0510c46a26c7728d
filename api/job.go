package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/job"
)

// Job endpoints: map/reduce jobs this node coordinates (package job).
//
//	POST /api/v0/job/run      job.Spec (client.JobSpec)  → JobStatus, at once
//	GET  /api/v0/job/status?id=ID                        → JobStatus
//	GET  /api/v0/job/list                                → [JobStatus], newest first
//	POST /api/v0/job/cancel   {id}
//	GET  /api/v0/job/logs?id=ID                          → [JobLogLine], oldest first
//	GET  /api/v0/job/watch?id=ID&every=D                 → NDJSON JobStatus, or
//	                            server-sent events with Accept: text/event-stream
//	POST /api/v0/job/publish  {name, spec}               → JobPublished {cid, name, spec}
//	POST /api/v0/job/run-published {ref}  a CID, or a name published here → JobStatus
//
// A watch sends the job's status at once, then every D (default
// defaultWatchEvery, at least minWatchEvery) and when the job ends; the
// last status sent is the ended one, and then the stream ends. Ending the
// request does not stop the job (POST /api/v0/job/cancel does).
func (s *Server) jobRoutes(mux *router) {
	mux.HandleFunc("POST /api/v0/job/run", s.handleJobRun)
	mux.HandleFunc("GET /api/v0/job/status", s.handleJobStatus)
	mux.HandleFunc("GET /api/v0/job/list", s.handleJobList)
	mux.HandleFunc("POST /api/v0/job/cancel", s.handleJobCancel)
	mux.HandleFunc("GET /api/v0/job/logs", s.handleJobLogs)
	mux.HandleFunc("GET /api/v0/job/watch", s.handleJobWatch)
	mux.HandleFunc("POST /api/v0/job/publish", s.handleJobPublish)
	mux.HandleFunc("POST /api/v0/job/run-published", s.handleJobRunPublished)
}

// The pace of a job watch.
const (
	defaultWatchEvery = 500 * time.Millisecond
	minWatchEvery     = 100 * time.Millisecond
)

// jobID reads the id parameter, which every job endpoint but run and list
// needs.
func jobID(r *http.Request) (string, error) {
	id := r.URL.Query().Get("id")
	if id == "" {
		return "", errcode.With(errcode.BadRequest, errors.New("no job id given (id=ID)"))
	}
	return id, nil
}

func (s *Server) handleJobRun(w http.ResponseWriter, r *http.Request) {
	var spec job.Spec
	if !readJSON(w, r, &spec) {
		return
	}
	// The job outlives the request: its context is the node's, kept by
	// the job manager.
	j, err := s.node.Jobs().Run(r.Context(), spec)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, jobStatusJSON(j.Status()))
}

func (s *Server) handleJobStatus(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		codedError(w, err)
		return
	}
	st, err := s.node.Jobs().Status(id)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, jobStatusJSON(st))
}

func (s *Server) handleJobList(w http.ResponseWriter, _ *http.Request) {
	out := []client.JobStatus{}
	for _, st := range s.node.Jobs().List() {
		out = append(out, jobStatusJSON(st))
	}
	writeJSON(w, out)
}

func (s *Server) handleJobCancel(w http.ResponseWriter, r *http.Request) {
	var req client.JobRef
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.node.Jobs().Cancel(req.ID); err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *Server) handleJobLogs(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		codedError(w, err)
		return
	}
	lines, err := s.node.Jobs().Logs(id)
	if err != nil {
		codedError(w, err)
		return
	}
	out := make([]client.JobLogLine, len(lines))
	for i, l := range lines {
		out[i] = client.JobLogLine{At: l.At, Msg: l.Msg, Task: l.Task}
		if l.Node != "" {
			out[i].Node = l.Node.String()
		}
	}
	writeJSON(w, out)
}

func (s *Server) handleJobWatch(w http.ResponseWriter, r *http.Request) {
	id, err := jobID(r)
	if err != nil {
		codedError(w, err)
		return
	}
	every := defaultWatchEvery
	if v := r.URL.Query().Get("every"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			codedError(w, errcode.With(errcode.BadRequest, fmt.Errorf("every=%q: %w", v, err)))
			return
		}
		every = max(d, minWatchEvery)
	}
	j, err := s.node.Jobs().Get(id)
	if err != nil {
		codedError(w, err)
		return
	}
	send := ndjsonWriter(w)
	if wantsSSE(r) {
		send = sseWriter(w)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if send(jobStatusJSON(j.Status())) != nil {
			return
		}
		select {
		case <-j.Done():
			send(jobStatusJSON(j.Status()))
			return
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// sseWriter writes each value as one server-sent event, flushing each.
func sseWriter(w http.ResponseWriter) func(v any) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	fl, _ := w.(http.Flusher)
	return func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
}

// jobStatusJSON is a job's status as the API answers it: the spec and
// counters as the job package writes them, CIDs and peer IDs as strings.
func jobStatusJSON(st job.Status) client.JobStatus {
	p := st.Progress
	out := client.JobStatus{ID: st.ID, Spec: jobSpecJSON(st.Spec), State: string(st.State), Started: st.Started, Ended: st.Ended, Error: st.Error,
		Progress: client.JobProgress{Phase: p.Phase, Tasks: p.Tasks, Done: p.Done, Running: p.Running, Failed: p.Failed,
			BytesLocal: p.BytesLocal, BytesFetched: p.BytesFetched, Nodes: p.Nodes, Spent: p.Spent, Reserved: p.Reserved, Elapsed: p.Elapsed, ETA: p.ETA}}
	if st.Result.Defined() {
		out.Result = st.Result.String()
	}
	for _, d := range st.Disagreements {
		cd := client.JobDisagreement{Task: d.Task, Outputs: map[string]string{}}
		for p, h := range d.Outputs {
			cd.Outputs[p.String()] = h
		}
		for _, p := range d.Minority {
			cd.Minority = append(cd.Minority, p.String())
		}
		out.Disagreements = append(out.Disagreements, cd)
	}
	return out
}

func jobSpecJSON(s job.Spec) client.JobSpec {
	out := client.JobSpec{Input: s.Input, Map: s.Map, Reduce: s.Reduce, Reducers: s.Reducers, Split: client.JobSplit{Size: s.Split.Size},
		Budget: s.Budget, TaskTimeout: s.TaskTimeout, Timeout: s.Timeout, MaxAttempts: s.MaxAttempts, VerifyFraction: s.VerifyFraction, NoBackup: s.NoBackup}
	for _, p := range s.Nodes {
		out.Nodes = append(out.Nodes, p.String())
	}
	return out
}

// jobPublishReq is POST /api/v0/job/publish's body: the spec as the job
// package reads it.
type jobPublishReq struct {
	Name string   `json:"name"`
	Spec job.Spec `json:"spec"`
}

func (s *Server) handleJobPublish(w http.ResponseWriter, r *http.Request) {
	var req jobPublishReq
	if !readJSON(w, r, &req) {
		return
	}
	c, err := s.node.Jobs().Publish(r.Context(), req.Name, req.Spec)
	if err != nil {
		codedError(w, err)
		return
	}
	p, err := s.node.Jobs().Published(r.Context(), c.String())
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, client.JobPublished{CID: c.String(), Name: p.Name, Spec: jobSpecJSON(p.Spec)})
}

func (s *Server) handleJobRunPublished(w http.ResponseWriter, r *http.Request) {
	var req client.JobPublishedRef
	if !readJSON(w, r, &req) {
		return
	}
	j, err := s.node.Jobs().RunPublished(r.Context(), req.Ref)
	if err != nil {
		codedError(w, err)
		return
	}
	writeJSON(w, jobStatusJSON(j.Status()))
}
