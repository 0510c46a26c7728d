package space

import (
	"errors"

	"github.com/nubecloud/nube/errcode"
)

// Errors a caller tells apart with errors.Is, also through the daemon's
// API.
var (
	// ErrNotFound reports a space, key or grant that does not exist.
	ErrNotFound = errcode.New(errcode.NotFound, "not found")
	// ErrNotAuthorised reports a read or write the user has no grant for,
	// or whose grant expired, was revoked or is for another space.
	ErrNotAuthorised = errcode.New(errcode.Refused, "not authorised")
	// ErrTooLarge reports a key or value over its limit; the message names
	// the limit.
	ErrTooLarge = errcode.New(errcode.TooLarge, "too large")
	// ErrBadName reports a malformed space name or ID.
	ErrBadName = errcode.New(errcode.BadRequest, "bad space name")
	// ErrBadPolicy reports a placement policy that contradicts itself or
	// cannot be met.
	ErrBadPolicy = errcode.New(errcode.BadRequest, "bad placement policy")
	// ErrBadHead reports a head that does not decode, is too large or is
	// not of the space asked for.
	ErrBadHead = errcode.New(errcode.BadRequest, "bad space head")
	// ErrBadGrant reports a grant that does not decode or breaks the rules
	// of delegation.
	ErrBadGrant = errcode.New(errcode.BadRequest, "bad grant")
	// ErrBadChange reports a write request that does not decode.
	ErrBadChange = errcode.New(errcode.BadRequest, "bad change")
	// ErrForged reports a signature that does not verify.
	ErrForged = errcode.New(errcode.Conflict, "forged")
	// ErrStale reports a head older than one already seen, or a write
	// sealed under a key epoch that has ended.
	ErrStale = errcode.New(errcode.Conflict, "stale")
	// ErrNotHome reports a call that only the space's home can serve.
	ErrNotHome = errcode.New(errcode.Refused, "not the space's home")
	// ErrUnavailable reports that no holder of the space could serve a
	// read.
	ErrUnavailable = errcode.New(errcode.Unreachable, "no holder could serve the space")
	// ErrExists reports a create of a space that exists.
	ErrExists = errcode.New(errcode.Conflict, "space exists")
	// ErrHeadTooLarge reports a change (a write, a grant, a migration)
	// that would make the space's head larger than MaxHeadSize, which no
	// other node would take. Nothing changed; revoking grants makes room.
	ErrHeadTooLarge = errcode.New(errcode.TooLarge, "space head too large")
	// ErrTooManyGrants reports a grant the home does not file because the
	// space has MaxGrants filed, or the delegates it is issued under have
	// MaxGrantsPerIssuer each. Revoking grants makes room.
	ErrTooManyGrants = errcode.New(errcode.TooLarge, "too many grants")
	// ErrGrantRate reports a grant filed under a delegate that has filed
	// GrantBurst lately; it may file one more each GrantEvery. The
	// message says when to try again.
	ErrGrantRate = errcode.New(errcode.Busy, "grants filed too fast")
)

// ErrDecrypt reports ciphertext that does not open: tampered, truncated,
// or sealed with a key this reader does not have.
var ErrDecrypt = errors.New("ciphertext does not open: tampered, truncated or sealed with another key")

// ErrNotOffered: the node does not hold spaces for this owner, or has no
// room left in the disk budget its owner gave others.
var ErrNotOffered = errcode.New(errcode.Refused, "node does not offer storage to this owner")
