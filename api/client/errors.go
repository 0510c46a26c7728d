package client

import "errors"

// ErrNoDaemon reports that no daemon is running on a data dir.
var ErrNoDaemon = errors.New("no nube daemon is running")

// ErrNoHandoff reports a client that cannot hand files over to its node:
// one not from Open, on a system that cannot, or on a node that takes
// none.
var ErrNoHandoff = errors.New("this client cannot hand files over to its node")
