package space

import (
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/remote"
)

// The layer's remote calls. Every node serves them all; each answers only
// for the spaces it is home or holder of.
var (
	// headFn asks for a space's newest head that the node has.
	headFn = remote.Declare[headReq, headReply]("nube.space.head")
	// writeFn asks the home to apply an encoded change.
	writeFn = remote.Declare[[]byte, headReply]("nube.space.write")
	// pushFn gives a holder a new head (and the blocks the write made);
	// it pins the head's root, reporting progress, and lets go of the old
	// one, or of the space if the head no longer names it.
	pushFn = remote.DeclareStream[pushReq, pushReply]("nube.space.push")
	// readFn asks a holder for the blocks on the paths to some tags (or,
	// with All, of every entry).
	readFn = remote.Declare[readReq, readReply]("nube.space.read")
	// grantFn files a delegated grant with the home.
	grantFn = remote.Declare[[]byte, headReply]("nube.space.grant")
	// grantsFn asks the home for a user's grants on a space.
	grantsFn = remote.Declare[grantsReq, grantsReply]("nube.space.grants")
	// watchFn streams a space's heads from the home as they are made.
	watchFn = remote.DeclareStream[watchReq, headReply]("nube.space.watch")
)

type headReq struct {
	Space string `cbor:"1,keyasint"`
}

type headReply struct {
	Head []byte `cbor:"1,keyasint,omitempty"`
}

type pushReq struct {
	Head   []byte  `cbor:"1,keyasint"`
	Blocks []block `cbor:"2,keyasint,omitempty"`
}

// pushReply is progress while the holder copies, then its result.
type pushReply struct {
	Progress *content.FetchProgress `cbor:"1,keyasint,omitempty"`
	Seq      uint64                 `cbor:"2,keyasint,omitempty"`
	Done     bool                   `cbor:"3,keyasint,omitempty"`
	Released bool                   `cbor:"4,keyasint,omitempty"`
}

// maxReadReply bounds the blocks one read returns; past it, the reader
// fetches the rest through bitswap.
const maxReadReply = 4 << 20

// inlineValue is the largest sealed value sent whole with a read or a
// write.
const inlineValue = 1 << 20

type readReq struct {
	Space string   `cbor:"1,keyasint"`
	Root  []byte   `cbor:"2,keyasint"`
	Tags  []string `cbor:"3,keyasint,omitempty"`
	All   bool     `cbor:"4,keyasint,omitempty"` // every entry (for List)
}

type readReply struct {
	NotHeld bool    `cbor:"1,keyasint,omitempty"` // the node does not hold that root
	Blocks  []block `cbor:"2,keyasint,omitempty"`
	Value   bool    `cbor:"3,keyasint,omitempty"` // the value's blocks are all there
}

type grantsReq struct {
	Space string `cbor:"1,keyasint"`
	User  string `cbor:"2,keyasint"`
}

type grantsReply struct {
	Grants [][]byte `cbor:"1,keyasint,omitempty"`
}

type watchReq struct {
	Space string `cbor:"1,keyasint"`
	Since uint64 `cbor:"2,keyasint"`
}
