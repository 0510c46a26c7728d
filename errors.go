package nube

import "errors"

// ErrDataDirInUse reports that another nube process runs on the data dir.
var ErrDataDirInUse = errors.New("data dir in use by another nube")

// ErrUnsafePermissions reports a data dir that others may write, or a key
// file that others may read: whoever can write the data dir can replace
// the node's keys or point the CLI (and its API token) elsewhere, and
// whoever can read a key file is that node or user.
var ErrUnsafePermissions = errors.New("unsafe permissions")
