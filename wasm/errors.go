package wasm

import (
	"errors"
	"fmt"
)

// Errors a run or a compile can fail with. Each is wrapped with details;
// test for them with errors.Is.
var (
	// ErrCIDMismatch: the module's bytes do not hash to its CID.
	ErrCIDMismatch = errors.New("module bytes do not match its CID")
	// ErrInvalidModule: the bytes are not a WebAssembly module this
	// sandbox can run (bad binary, unknown kind, imports it lacks).
	ErrInvalidModule = errors.New("invalid module")
	// ErrModuleTooLarge: the module is larger than Config.MaxModuleSize.
	ErrModuleTooLarge = errors.New("module too large")
	// ErrMemoryLimit: the module needed more memory than its limit.
	ErrMemoryLimit = errors.New("memory limit exceeded")
	// ErrTimeout: the run went on past its time limit and was stopped.
	ErrTimeout = errors.New("time limit exceeded")
	// ErrInputTooLarge: the input is larger than the run's limit.
	ErrInputTooLarge = errors.New("input too large")
	// ErrOutputTooLarge: the module wrote more than the run's limit.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrExit: the module exited with a code other than 0. The error is
	// an *ExitError.
	ErrExit = errors.New("module failed")
	// ErrTrap: the module trapped (unreachable, out-of-bounds access,
	// division by zero, stack overflow…).
	ErrTrap = errors.New("module trapped")
	// ErrClosed: the runtime was closed.
	ErrClosed = errors.New("wasm runtime closed")
)

// ExitError reports a module that exited with a non-zero code. Stderr
// holds the start of what it wrote to stderr, which for a Go module is
// its panic message.
type ExitError struct {
	Code   uint32
	Stderr string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("module exited with code %d", e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Is makes errors.Is(err, ErrExit) hold for an *ExitError.
func (e *ExitError) Is(target error) bool { return target == ErrExit }
