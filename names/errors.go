package names

import "github.com/nubecloud/nube/errcode"

// Errors a caller tells apart with errors.Is, also through the daemon's
// API.
var (
	// ErrNotFound reports a name no router holds a record of, a domain
	// with no DNSLink, or a key this node does not keep.
	ErrNotFound = errcode.New(errcode.NotFound, "name not found")
	// ErrBadName reports a malformed IPNS name, domain or key name.
	ErrBadName = errcode.New(errcode.BadRequest, "bad name")
	// ErrBadRecord reports a record that does not decode, is larger than
	// ipns.MaxRecordSize, is not signed by its name's key, or has expired.
	ErrBadRecord = errcode.New(errcode.BadRequest, "bad IPNS record")
	// ErrExists reports a key name already taken.
	ErrExists = errcode.New(errcode.Conflict, "key exists")
)
