package content

import "github.com/nubecloud/nube/errcode"

// ErrNotPinned reports an unpin of something that is not pinned.
var ErrNotPinned = errcode.New(errcode.NotFound, "not pinned")

// ErrCorruptBlock reports a stored block whose bytes are not what was
// written: its pack is short or gone, or the bytes fail their checksum.
var ErrCorruptBlock = errcode.New(errcode.Internal, "stored block is corrupt")

// ErrStoreClosed reports a use of a block store that has been closed.
var ErrStoreClosed = errcode.New(errcode.Unreachable, "block store closed")

// ErrBadName reports a name in a directory, or a part of a path, that is
// not one plain name (see CheckName), or a name two entries of one
// directory share. A DAG is anyone's: a link named "../a" or "a/b", saved
// by a tool that joins names to paths, lands outside the directory, and
// two entries of one name let a symlink stand where a directory is then
// written. Such a directory is refused, not cleaned: its listing, its
// paths and its export (a tar stream, the gateway's tar) all fail.
var ErrBadName = errcode.New(errcode.BadRequest, "bad name")

// ErrBadCAR reports a CAR file that is malformed, oversized or holds a
// block whose bytes do not match its CID.
var ErrBadCAR = errcode.New(errcode.BadRequest, "bad CAR file")

// ErrIncomplete reports a root whose DAG is not all in the store (after
// an import that lacked some of it).
var ErrIncomplete = errcode.New(errcode.BadRequest, "DAG incomplete")

// ErrBadCID reports a string that is not a CID.
var ErrBadCID = errcode.New(errcode.BadRequest, "not a valid CID")

// ErrNotUnixFS reports a CID whose codec is neither dag-pb nor raw: not a
// file or directory this node can read.
var ErrNotUnixFS = errcode.New(errcode.BadRequest, "not UnixFS content")

// ErrNotFound reports a path whose name is not in its directory.
var ErrNotFound = errcode.New(errcode.NotFound, "no such file or directory")

// ErrNoProvider reports content that no reachable peer provided before
// the deadline.
var ErrNoProvider = errcode.New(errcode.Timeout, "no provider found")

// ErrMalformed reports a UnixFS node whose parts do not hold together: a
// HAMT shard whose links are not shard links, whose bitfield does not
// match them, or that links as a shard a node that is not one. Anyone can
// publish such a node; it is the data that is bad, not this node, so the
// API answers 400 as for ErrNotUnixFS, never 500.
var ErrMalformed = errcode.New(errcode.BadRequest, "malformed UnixFS node")

// ErrIsDir reports an attempt to read a directory as a file.
var ErrIsDir = errcode.New(errcode.BadRequest, "is a directory")
