package job

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
)

// Spec says what a job does. Its zero value is not a job: Input and Map
// are required. It is plain data (JSON) so that it can be kept, sent and
// run again.
type Spec struct {
	// Input is a CID of a file or a directory (every file under it,
	// recursively, in path order), "CID/path" of either, or a space and
	// key prefix as "space:OWNER/NAME/PREFIX" (the values of the keys
	// under PREFIX; the map runs get a capability to read them).
	Input string `json:"input"`
	// Map is the map service: a name, name@version or descriptor CID.
	Map string `json:"map"`
	// Reduce is the reduce service; empty: no reduce, and the result
	// directory holds each map task's output as it is.
	Reduce string `json:"reduce,omitempty"`
	// Reducers is R, how many partitions the map outputs are split into
	// and how many reduce tasks run. Zero: 1.
	Reducers int `json:"reducers,omitempty"`
	// Split says how the input is cut into map tasks.
	Split Split `json:"split,omitzero"`
	// Budget is the most the job may pay for its runs, in millicredits.
	// Zero: the job runs only free services (a priced one fails it at the
	// start with ErrBudget).
	Budget uint64 `json:"budget,omitempty"`
	// TaskTimeout bounds one run of a task; zero: the service's own
	// limit. A run past it counts as failed and runs again elsewhere.
	TaskTimeout time.Duration `json:"task_timeout,omitempty"`
	// Timeout bounds the whole job; zero: DefaultTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxAttempts is how many runs a task may fail before the job
	// fails; zero: DefaultAttempts.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// VerifyFraction is the share of map tasks, from 0 to 1, run a
	// second time on another node and compared (the map service must be
	// declared deterministic).
	VerifyFraction float64 `json:"verify_fraction,omitempty"`
	// NoBackup turns off backup copies of slow tasks.
	NoBackup bool `json:"no_backup,omitempty"`
	// Allow are rights given to every map and reduce run beyond reading
	// content (and, for a space input, reading that space).
	Allow []service.Allow `json:"allow,omitempty"`
	// Nodes, if set, are the only nodes the job's tasks run on.
	Nodes []peer.ID `json:"nodes,omitempty"`
}

// Split says how a job's input is cut into map tasks.
type Split struct {
	// Size, if positive, cuts every file into pieces of about Size
	// bytes, each ending at a newline (a record's last piece reads on
	// past its end to the next newline, and every piece but a file's
	// first starts after the first newline it meets, as Hadoop's text
	// input does). Zero: one task per file.
	Size int64 `json:"size,omitempty"`
}

// Defaults for a Spec's zero fields.
const (
	DefaultTimeout  = time.Hour
	DefaultAttempts = 4
)

// State is where a job is.
type State string

// The states of a job.
const (
	Running   State = "running"
	Done      State = "done"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Progress is a job's counters as they stand.
type Progress struct {
	// Phase is "map", "reduce" or "" once the job has ended.
	Phase string `json:"phase,omitempty"`
	// Tasks counts the job's tasks, map and reduce.
	Tasks int `json:"tasks"`
	// Done, Running and Failed count tasks finished, runs under way
	// (backups and verifications included) and failed runs so far.
	Done    int `json:"done"`
	Running int `json:"running"`
	Failed  int `json:"failed"`
	// BytesLocal is the map input read by mappers from their own store;
	// BytesFetched what mappers had to fetch from another node.
	BytesLocal   int64 `json:"bytes_local"`
	BytesFetched int64 `json:"bytes_fetched"`
	// Nodes is how many distinct nodes ran a task of the job.
	Nodes int `json:"nodes"`
	// Spent is what the job has paid, in millicredits; Reserved what its
	// runs under way may still cost at most.
	Spent    int64 `json:"spent"`
	Reserved int64 `json:"reserved,omitempty"`
	// Elapsed is the time since the job started (across restarts of
	// its coordinator); ETA the time it is likely to need still, zero
	// when not known yet.
	Elapsed time.Duration `json:"elapsed"`
	ETA     time.Duration `json:"eta,omitempty"`
}

// Status is what a coordinator knows of one of its jobs.
type Status struct {
	ID       string    `json:"id"`
	Spec     Spec      `json:"spec"`
	State    State     `json:"state"`
	Progress Progress  `json:"progress"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	// Result is the result directory's CID, once Done.
	Result cid.Cid `json:"result,omitzero"`
	// Error is why the job failed or was cancelled.
	Error string `json:"error,omitempty"`
	// Disagreements are the verified tasks whose runs differed.
	Disagreements []Disagreement `json:"disagreements,omitempty"`
}

// Disagreement is a verified task whose runs gave different outputs.
type Disagreement struct {
	Task string `json:"task"`
	// Outputs are each node's output, a hex hash of it.
	Outputs map[peer.ID]string `json:"outputs"`
	// Minority are the nodes whose output differs from the majority's
	// (all of them when no output had a majority).
	Minority []peer.ID `json:"minority"`
}

// LogLine is one line of a job's log.
type LogLine struct {
	At   time.Time `json:"at"`
	Msg  string    `json:"msg"`
	Task string    `json:"task,omitempty"`
	Node peer.ID   `json:"node,omitempty"`
}

// Job is a running (or ended) job on its coordinator. Its methods are
// safe for concurrent use.
type Job struct {
	c *coord
}

// ID names the job on its coordinator.
func (j *Job) ID() string { return j.c.id }

// Spec returns the job's spec, with its defaults filled in.
func (j *Job) Spec() Spec { return j.c.spec }

// Progress returns the job's counters as they stand now.
func (j *Job) Progress() Progress { return j.c.progress() }

// Status returns the job's state, progress and result.
func (j *Job) Status() Status { return j.c.status() }

// Wait waits until the job ends or ctx does, and returns the result
// directory's CID, or why the job failed (ErrBudget, ErrTaskFailed,
// ErrInputNotFound, ErrCancelled, …). Ending ctx does not stop the job.
func (j *Job) Wait(ctx context.Context) (cid.Cid, error) { return j.c.wait(ctx) }

// Done is closed when the job ends.
func (j *Job) Done() <-chan struct{} { return j.c.done }

// Cancel stops the job: no task of it keeps running, and no runner is
// left holding the job's escrow beyond its answer. A job already ended
// is left as it is.
func (j *Job) Cancel() { j.c.cancel(ErrCancelled) }

// Logs returns the job's log, oldest first (at most the last MaxLogLines).
func (j *Job) Logs() []LogLine { return j.c.logs() }

// MaxLogLines caps the lines a job's log keeps.
const MaxLogLines = 2000
