package nube

import (
	"context"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
)

// Content returns the node's content service: add, fetch, pin, GC.
func (n *Node) Content() *content.Service { return n.content }

// Add stores r's bytes as a file, pins it, announces it, and returns its
// CID (the one `ipfs add --cid-version 1` gives for the same bytes).
func (n *Node) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	return n.content.Add(ctx, r, content.AddOptions{})
}

// Get opens the file c for reading, fetching it from the network as the
// reader goes if this node does not have it. Close the file when done.
func (n *Node) Get(ctx context.Context, c cid.Cid) (content.File, error) {
	return n.content.Get(ctx, c.String())
}

// Pin fetches everything under c that this node lacks and keeps it
// through garbage collection.
func (n *Node) Pin(ctx context.Context, c cid.Cid) error {
	return n.content.Pin(ctx, c, "", nil)
}

// Unpin lets garbage collection remove c (unless another pin reaches it).
func (n *Node) Unpin(ctx context.Context, c cid.Cid) error {
	return n.content.Unpin(ctx, c)
}

// Pins lists the pinned roots.
func (n *Node) Pins(ctx context.Context) ([]content.Pin, error) {
	return n.content.Pins(ctx)
}

// GC removes every block not reachable from a pin.
func (n *Node) GC(ctx context.Context) (content.GCResult, error) {
	return n.content.GC(ctx)
}
