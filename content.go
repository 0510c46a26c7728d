package nube

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
)

// Content is the node's content layer as a program uses it: what a
// content.Service does, without its lifecycle or its store, which the node
// owns.
type Content interface {
	// Add stores r's bytes as a file and returns its CID.
	Add(ctx context.Context, r io.Reader, opt content.AddOptions) (cid.Cid, error)
	// AddTree stores a directory of entries and returns its CID.
	AddTree(ctx context.Context, entries content.Entries, opt content.AddOptions) (cid.Cid, error)
	// Get opens the file at p ("CID" or "CID/a/b").
	Get(ctx context.Context, p string) (content.File, error)
	// List lists the directory at p.
	List(ctx context.Context, p string) ([]content.Entry, error)
	// Stat describes what is at p.
	Stat(ctx context.Context, p string) (content.Entry, error)
	// Fetch brings everything under root into the store, from every
	// provider at once.
	Fetch(ctx context.Context, root cid.Cid, progress func(content.FetchProgress)) error
	// Pin fetches what is missing under c and keeps it through GC.
	Pin(ctx context.Context, c cid.Cid, name string, progress func(content.FetchProgress)) error
	// Unpin lets GC remove c.
	Unpin(ctx context.Context, c cid.Cid) error
	// Pins lists the pinned roots.
	Pins(ctx context.Context) ([]content.Pin, error)
	// GC removes every block no pin reaches.
	GC(ctx context.Context) (content.GCResult, error)
	// Verify checks every stored block against its CID.
	Verify(ctx context.Context, remove bool) (content.VerifyResult, error)
	// ExportCAR writes the DAG under root to w as a CARv1 file,
	// fetching what the store lacks first.
	ExportCAR(ctx context.Context, root cid.Cid, w io.Writer, progress func(content.FetchProgress)) error
	// ImportCAR stores the blocks of a CAR file, each checked against
	// its CID, and pins its roots.
	ImportCAR(ctx context.Context, r io.Reader, opt content.ImportOptions) (content.ImportResult, error)
	// Has reports whether a block is in the store.
	Has(ctx context.Context, c cid.Cid) (bool, error)
	// Received counts, per peer, what it sent this node.
	Received() []content.PeerStat
	// Sent returns the bytes this node has sent p.
	Sent(p peer.ID) int64
	// Fetching lists the fetches under way, with how many peers each
	// asked and how many provide.
	Fetching() []content.FetchStatus
}

var _ Content = (*content.Service)(nil)

// Content returns the node's content layer: add, fetch, pin, GC.
func (n *Node) Content() Content { return n.content }

// Add stores r's bytes as a file, pins it, announces it, and returns its
// CID; it is Content().Add with no options, kept on Node as the call most
// programs make first (the one `ipfs add --cid-version 1` gives for the same bytes).
func (n *Node) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	return n.content.Add(ctx, r, content.AddOptions{})
}

// Get opens the file c for reading, fetching it from the network as the
// reader goes if this node does not have it. Close the file when done.
// It is Content().Get of c's CID, Add's other half.
func (n *Node) Get(ctx context.Context, c cid.Cid) (content.File, error) {
	return n.content.Get(ctx, c.String())
}
