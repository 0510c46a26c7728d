package nube

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// Spaces is what a program does with spaces: create one, open one (its
// own or another user's), list those this node keeps, and those it holds
// for others. The node owns the layer's life. See package space for what a
// space offers.
type Spaces interface {
	// Create makes the space name, owned by the node's user, with this
	// node as its home, placed as policy says (space.Policy{Local: true}
	// for this node alone). A name taken on this node is
	// space.ErrExists.
	Create(ctx context.Context, name string, policy space.Policy) (*space.Space, error)
	// Open returns a handle on the space name of owner (empty: the
	// node's own user). Opening reaches no other node: the handle finds
	// the space's newest head and holders on each call, so a program
	// keeps it across migrations. ctx is for symmetry with the calls that
	// do reach the network.
	Open(ctx context.Context, owner peer.ID, name string) (*space.Space, error)
	// List lists the spaces this node is home of or holds for others.
	List() []space.Summary
	// Holdings lists the spaces this node holds for other users, from the
	// pins that keep them.
	Holdings(ctx context.Context) ([]space.Holding, error)
}

// spaces is the facade's Spaces over a space.Manager.
type spaces struct{ m *space.Manager }

func (s spaces) Create(ctx context.Context, name string, policy space.Policy) (*space.Space, error) {
	return s.m.Create(ctx, name, policy)
}

func (s spaces) Open(ctx context.Context, owner peer.ID, name string) (*space.Space, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.m.Open(owner, name)
}

func (s spaces) List() []space.Summary { return s.m.Spaces() }

func (s spaces) Holdings(ctx context.Context) ([]space.Holding, error) { return s.m.Holdings(ctx) }

// Spaces returns the node's spaces layer.
func (n *Node) Spaces() Spaces { return spaces{n.spaces} }
