package cache

import "github.com/nubecloud/nube/errcode"

// Errors a caller tells apart with errors.Is, also through the daemon's
// API.
var (
	// ErrNotFound reports a key the source does not have, or a cache this
	// node does not keep.
	ErrNotFound = errcode.New(errcode.NotFound, "not in the cache's source")
	// ErrNotAuthorised reports a Get of a space this node's user may not
	// read (no grant, or a revoked one): its entries are dropped too.
	ErrNotAuthorised = errcode.New(errcode.Refused, "not authorised to read the cache's source")
	// ErrClosed reports a call on a closed cache or manager.
	ErrClosed = errcode.New(errcode.Unreachable, "cache closed")
	// ErrBadRequest reports a malformed request from a peer (a name or key
	// over its cap).
	ErrBadRequest = errcode.New(errcode.BadRequest, "bad cache request")
)
