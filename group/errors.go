package group

import (
	"errors"

	"github.com/nubecloud/nube/errcode"
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrNotFound: no such key, or no such group on this node.
	ErrNotFound = errcode.New(errcode.NotFound, "not found")
	// ErrNotMember: the node is not a member of the group.
	ErrNotMember = errcode.New(errcode.Refused, "not a member of the group")
	// ErrBadName: a group name, key or value that breaks the rules.
	ErrBadName = errcode.New(errcode.BadRequest, "bad group name, key or value")
	// ErrNoLeader: the group has no leader the call could reach in time
	// (a majority of its members is down or cut off).
	ErrNoLeader = errcode.New(errcode.Unreachable, "group has no reachable leader")
	// ErrMachine wraps an error a StateMachine returned from Apply.
	ErrMachine = errors.New("state machine")
	// ErrClosed: the group was closed on this node.
	ErrClosed = errors.New("group closed")
)

// ErrMalformed is wrapped by every error about a message that does not
// hold together.
var ErrMalformed = errors.New("malformed raft message")

// ErrLockLost is the cause of a held lock's Lost channel closing: its
// lease ran out before a renewal reached the leader.
var ErrLockLost = errors.New("lock lost")

// ErrLagged ends a watch whose reader fell too far behind the changes.
var ErrLagged = errors.New("watch fell behind")
