// Package space gives users data they own: a space is a named key/value
// store that belongs to a user key, not to a node. Its owner chooses where
// it lives (the home node alone, named nodes, or N replicas), who may read
// and write it (grants, delegable and revocable), and moves it between
// nodes with one call while the programs that use it keep working.
//
// A space's contents are an ordinary DAG in the content store: a HAMT
// (boxo's, as UnixFS directories use) from each key's tag to an entry that
// holds the key's sealed metadata and links to its value, a UnixFS file of
// sealed segments. Everything a holder stores is ciphertext; key names are
// HMAC tags. The owner signs a head (sequence number, root, placement,
// holders, the space's keys wrapped for each reader, revoked grants) that
// readers resolve and never roll back. The node that created the space is
// its home: it applies every write, one at a time, so no write is lost,
// and pushes each new head to the holders, which pin its root.
//
// Reads go to a holder (or the home) in one round trip that returns the
// blocks on the key's path, each checked against its CID; a holder that
// lies is caught and the next one asked. Migration pins the space on the
// new holders, publishes a head that names them, then releases the old
// ones; readers that reach a holder that let go ask for a newer head.
//
// The home bounds what others can make it carry: a head is never signed
// over MaxHeadSize (the change is refused with ErrHeadTooLarge), and a
// space has at most MaxGrants grants filed, at most MaxGrantsPerIssuer of
// them under any one delegate (ErrTooManyGrants), and grants are filed
// under a delegate GrantBurst at once, then one each GrantEvery
// (ErrGrantRate). A grant counts against every delegate in its chain, so
// the fresh keys a delegate delegates to share its caps and its pace.
// Filing a grant wraps the keys for its grantee alone; only a key
// rotation (a revocation, an expiry) wraps them for every reader, so the
// HPKE work is one seal per filing and at most MaxGrants+1 per rotation.
//
// ARCHITECTURE.md ("A space") draws the whole path; RATIONALE.md says why.
package space

import "github.com/nubecloud/nube/errcode"

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
