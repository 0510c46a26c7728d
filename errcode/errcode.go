// Package errcode is nube's one vocabulary for errors that cross a
// boundary (between nodes, or through the daemon's HTTP API): a Code per
// kind of failure and a sentinel per Code. Every layer's own sentinel that
// belongs to a kind is made with New, so that errors.Is finds the kind in
// it, and a client that only learns the code on the far side of a boundary
// can still match the layer's sentinel:
//
//	var ErrBusy = errcode.New(errcode.Busy, "node is busy") // in package service
//	errors.Is(service.ErrBusy, errcode.ErrBusy)             // true
//	errors.Is(errFromTheDaemon, service.ErrBusy)            // true when its code is busy
package errcode

import (
	"context"
	"errors"
)

// Code names a kind of failure.
type Code string

// The codes. Internal is every failure of no other kind.
const (
	BadRequest   Code = "bad_request"  // the request is malformed or names nothing valid
	Unauthorized Code = "unauthorized" // no credentials, or wrong ones
	Forbidden    Code = "forbidden"    // from another origin or host
	Refused      Code = "refused"      // a policy says no (not this peer, not this node)
	NotFound     Code = "not_found"    // no such content, service, function or path
	Conflict     Code = "conflict"     // ambiguous, or a descriptor that does not hold
	TooLarge     Code = "too_large"    // over a size cap
	Busy         Code = "busy"         // too much under way; try again
	Unreachable  Code = "unreachable"  // a peer could not be reached, or failed to serve
	Timeout      Code = "timeout"      // nothing answered in time
	Internal     Code = "internal"
)

// The sentinel of each code.
var (
	ErrBadRequest   = &codeError{BadRequest, "bad request"}
	ErrUnauthorized = &codeError{Unauthorized, "unauthorized"}
	ErrForbidden    = &codeError{Forbidden, "forbidden"}
	ErrRefused      = &codeError{Refused, "refused"}
	ErrNotFound     = &codeError{NotFound, "not found"}
	ErrConflict     = &codeError{Conflict, "conflict"}
	ErrTooLarge     = &codeError{TooLarge, "too large"}
	ErrBusy         = &codeError{Busy, "busy"}
	ErrUnreachable  = &codeError{Unreachable, "unreachable"}
	ErrTimeout      = &codeError{Timeout, "timed out"}
)

// table is the order in which Of tries the kinds: the first match wins,
// so an error of two kinds always gets the same code.
var table = []*codeError{
	ErrUnauthorized, ErrForbidden, ErrRefused, ErrBadRequest, ErrTooLarge,
	ErrNotFound, ErrConflict, ErrBusy, ErrTimeout, ErrUnreachable,
}

type codeError struct {
	code Code
	msg  string
}

func (e *codeError) Error() string { return e.msg }

// Is makes a layer's sentinel made with New match its code's sentinel.
func (e *codeError) Is(target error) bool {
	t, ok := target.(*codeError)
	return ok && t.code == e.code && (t == Sentinel(e.code) || t == e)
}

// New returns a sentinel of code with its own message: errors.Is matches
// it with itself and with the code's sentinel.
func New(code Code, msg string) error { return &codeError{code, msg} }

// Sentinel returns code's sentinel, or nil for Internal or an unknown code.
func Sentinel(code Code) error {
	for _, e := range table {
		if e.code == code {
			return e
		}
	}
	return nil
}

// Of returns the code of err: the first kind in the table that errors.Is
// finds in it, Timeout for a context deadline, or Internal.
func Of(err error) Code {
	if err == nil {
		return ""
	}
	for _, e := range table {
		if errors.Is(err, e) {
			return e.code
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	return Internal
}

// With returns err marked as of code: its message is err's, errors.Is
// finds both err's chain and code's sentinel in it, and Of gives code
// unless err has a kind that comes first in the table. It returns err
// itself for a nil err or a code with no sentinel (Internal).
func With(code Code, err error) error {
	s := Sentinel(code)
	if err == nil || s == nil {
		return err
	}
	return &withCode{err, s}
}

type withCode struct {
	err, kind error
}

func (e *withCode) Error() string   { return e.err.Error() }
func (e *withCode) Unwrap() []error { return []error{e.err, e.kind} }
