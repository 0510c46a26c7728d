package job

import "github.com/nubecloud/nube/errcode"

// Errors a caller tells apart with errors.Is, also through the daemon's
// API.
var (
	// ErrNotFound reports a job ID this node does not know.
	ErrNotFound = errcode.New(errcode.NotFound, "job not found")
	// ErrBadSpec reports a Spec that cannot run: no input, no map
	// service, a bad split, a fraction outside [0, 1].
	ErrBadSpec = errcode.New(errcode.BadRequest, "bad job spec")
	// ErrInputNotFound reports an input (or one of its files) that no
	// node could be found to hold before the job's timeout; the message
	// names the CID.
	ErrInputNotFound = errcode.New(errcode.NotFound, "job input not found")
	// ErrBudget reports a job stopped because its next task could cost
	// more than what is left of Spec.Budget. Nothing was paid beyond it.
	ErrBudget = errcode.New(errcode.Refused, "job budget spent")
	// ErrTaskFailed reports a task that failed on every node it was
	// tried on, MaxAttempts times; the message names the task, the nodes
	// and the last error.
	ErrTaskFailed = errcode.New(errcode.Unreachable, "job task failed")
	// ErrCancelled reports a job stopped by Cancel.
	ErrCancelled = errcode.New(errcode.Conflict, "job cancelled")
	// ErrBadContract reports a map or reduce module whose output does not
	// keep the map/reduce contract (MAPREDUCE.md).
	ErrBadContract = errcode.New(errcode.BadRequest, "output breaks the map/reduce contract")
)
