package topic

import (
	"fmt"

	"github.com/nubecloud/nube/errcode"
)

// Errors a caller tells apart with errors.Is, also through the daemon's
// API.
var (
	// ErrNotFound reports a topic or consumer that does not exist.
	ErrNotFound = errcode.New(errcode.NotFound, "topic not found")
	// ErrExists reports a create of a topic that exists.
	ErrExists = errcode.New(errcode.Conflict, "topic exists")
	// ErrBadName reports a malformed topic name or ID.
	ErrBadName = errcode.New(errcode.BadRequest, "bad topic name")
	// ErrNotAuthorised reports a publish or subscribe the user has no
	// grant for, or whose grant expired or was revoked.
	ErrNotAuthorised = errcode.New(errcode.Refused, "not authorised on topic")
	// ErrBadMessage reports a message that does not decode, is over
	// MaxMessage, or whose signature does not verify.
	ErrBadMessage = errcode.New(errcode.BadRequest, "bad topic message")
	// ErrTooLarge reports a message over MaxMessage.
	ErrTooLarge = errcode.New(errcode.TooLarge, "topic message too large")
	// ErrLagged reports a subscriber or consumer that asked for an offset
	// the retention has dropped; the error is a *LagError naming the first
	// offset it can still read.
	ErrLagged = errcode.New(errcode.Conflict, "behind the topic's retention")
	// ErrNotDurable reports a call that needs a retained topic (an offset,
	// a time, a consumer) on a live-only one.
	ErrNotDurable = errcode.New(errcode.BadRequest, "topic keeps no messages")
	// ErrUnavailable reports that no holder of a durable topic could take
	// a publish or serve a read (no majority).
	ErrUnavailable = errcode.New(errcode.Unreachable, "no majority of the topic's holders")
)

// LagError is ErrLagged with the first offset still held.
type LagError struct {
	Asked, First uint64
}

func (e *LagError) Error() string {
	return fmt.Sprintf("topic: offset %d is behind the retention: the first offset still held is %d", e.Asked, e.First)
}

func (e *LagError) Unwrap() error { return ErrLagged }
