package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
)

// Code says why a remote call failed. It travels on the wire, so its values
// never change meaning.
type Code uint8

// The codes a call can fail with.
const (
	// CodeCallee: the function ran and returned an error of its own.
	CodeCallee Code = 1
	// CodeNoSuchFunction: the peer does not serve a function of that name
	// to this caller.
	CodeNoSuchFunction Code = 2
	// CodeRefused: the peer's policy refused the call (caller not allowed,
	// or too many of its calls under way).
	CodeRefused Code = 3
	// CodePanicked: the function panicked; the peer recovered and stayed up.
	CodePanicked Code = 4
	// CodeUnreachable: no stream to the peer could be opened, or it was cut
	// before the call finished (the peer died or the link went down).
	CodeUnreachable Code = 5
	// CodeDeadline: the call's deadline passed.
	CodeDeadline Code = 6
	// CodeInputTooLarge: the encoded input is over the peer's cap.
	CodeInputTooLarge Code = 7
	// CodeCanceled: the caller cancelled the call.
	CodeCanceled Code = 8
	// CodeBadInput: the input does not decode into the function's input
	// type (caller and callee disagree on the signature).
	CodeBadInput Code = 9
	// CodeResultTooLarge: a result is over the caller's cap.
	CodeResultTooLarge Code = 10
	// CodeProtocol: a peer broke the protocol (malformed frame, a result
	// that does not decode into the output type).
	CodeProtocol Code = 11
)

var codeNames = map[Code]string{
	CodeCallee:         "callee error",
	CodeNoSuchFunction: "no such function",
	CodeRefused:        "refused by policy",
	CodePanicked:       "callee panicked",
	CodeUnreachable:    "peer unreachable",
	CodeDeadline:       "deadline exceeded",
	CodeInputTooLarge:  "input too large",
	CodeCanceled:       "canceled",
	CodeBadInput:       "input does not fit the function",
	CodeResultTooLarge: "result too large",
	CodeProtocol:       "protocol error",
}

// String names the code as error messages do.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Sentinel errors, one per Code, for errors.Is. A deadline is
// context.DeadlineExceeded and a cancellation context.Canceled, as for a
// local call.
var (
	ErrCallee         = errors.New("callee error")
	ErrNoSuchFunction = errcode.New(errcode.NotFound, "no such function")
	ErrRefused        = errcode.New(errcode.Refused, "refused by policy")
	ErrPanicked       = errors.New("callee panicked")
	ErrUnreachable    = errcode.New(errcode.Unreachable, "peer unreachable")
	ErrInputTooLarge  = errcode.New(errcode.TooLarge, "input too large")
	ErrBadInput       = errcode.New(errcode.BadRequest, "input does not fit the function")
	ErrResultTooLarge = errcode.New(errcode.TooLarge, "result too large")
	ErrProtocol       = errors.New("protocol error")
)

// sentinels is the wire table of the codes: the sentinel each stands for.
var sentinels = errcode.Table[Code]{
	{Key: CodeCallee, Err: ErrCallee},
	{Key: CodeNoSuchFunction, Err: ErrNoSuchFunction},
	{Key: CodeRefused, Err: ErrRefused},
	{Key: CodePanicked, Err: ErrPanicked},
	{Key: CodeUnreachable, Err: ErrUnreachable},
	{Key: CodeDeadline, Err: context.DeadlineExceeded},
	{Key: CodeInputTooLarge, Err: ErrInputTooLarge},
	{Key: CodeCanceled, Err: context.Canceled},
	{Key: CodeBadInput, Err: ErrBadInput},
	{Key: CodeResultTooLarge, Err: ErrResultTooLarge},
	{Key: CodeProtocol, Err: ErrProtocol},
}

// sentinel is the sentinel of c, and ErrProtocol for a code this node
// does not know.
func (c Code) sentinel() error {
	if e := sentinels.ErrOf(c); e != nil {
		return e
	}
	return ErrProtocol
}

// Error is how a remote call fails. Test its kind with errors.Is against
// the sentinels above (or context.DeadlineExceeded, context.Canceled), or
// read Code with errors.As.
type Error struct {
	Func    string  // the function called
	Peer    peer.ID // the peer called
	Code    Code
	Message string // what the peer (or the local side) said went wrong
	// Kind is the errcode kind of the callee's own error (Code
	// CodeCallee), when it has one: errors.Is matches every sentinel of
	// that kind, so errors.Is(err, group.ErrNotMember) holds on the
	// caller as on the callee.
	Kind errcode.Code
	// cause is the local error behind the failure, when there is one: the
	// dial error, the stream error, or a self-call's own error value.
	cause error
	// unsent: the call failed before any of it left this node.
	unsent bool
}

// MayHaveRun reports whether the function may have run on the peer
// despite the error. It is false only for a call that failed before its
// input left this node (no route to the peer, no stream, this node
// shutting down): such a call may be sent elsewhere without risk of
// running twice. A call cut after it was sent may have run, and its
// reply been lost.
func (e *Error) MayHaveRun() bool { return !e.unsent }

func (e *Error) Error() string {
	where := fmt.Sprintf("remote call %s on %s", e.Func, shortID(e.Peer))
	switch {
	case e.Code == CodeCallee:
		return where + ": " + e.Message
	case e.Message == "":
		return where + ": " + e.Code.String()
	default:
		return where + ": " + e.Code.String() + ": " + e.Message
	}
}

// Unwrap returns the sentinel of the error's code and, if there is one,
// the local cause.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Code.sentinel(), e.cause}
	}
	return []error{e.Code.sentinel()}
}

// Is matches the sentinels of the callee's error kind: the caller learns
// the kind, not which layer's sentinel it was.
func (e *Error) Is(target error) bool {
	if e.Kind == "" {
		return false
	}
	// A callee that ran out of the time the caller passed on (a nested
	// call that timed out first, say) timed out as the caller did.
	if e.Kind == errcode.Timeout && target == context.DeadlineExceeded {
		return true
	}
	s := errcode.Sentinel(e.Kind)
	return s != nil && errors.Is(target, s)
}

func shortID(p peer.ID) string {
	s := p.String()
	if len(s) > 16 {
		return s[:6] + "…" + s[len(s)-6:]
	}
	return s
}

// PanicError is what a function's panic becomes on the node where it ran;
// the caller gets an Error with CodePanicked and the panic's value as its
// message. Stack holds the callee's stack, for its own log.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// status is a failure this package decides on the callee's side (the input
// does not decode, the peer has too many calls), carried to the caller as
// its code and message.
type status struct {
	code Code
	msg  string
}

func (s *status) Error() string { return s.code.String() + ": " + s.msg }
