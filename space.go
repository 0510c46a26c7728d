package nube

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// CreateSpace makes the space name, owned by the node's user, with this
// node as its home, placed as policy says (space.Policy{Local: true} for
// this node alone).
func (n *Node) CreateSpace(ctx context.Context, name string, policy space.Policy) (*space.Space, error) {
	return n.spaces.Create(ctx, name, policy)
}

// Space returns a handle on the space name of owner (empty: the node's
// own user). The handle finds the space's newest head and holders on each
// call, so a program keeps it across migrations. ctx is for symmetry with
// the calls that reach the network; opening does not.
func (n *Node) Space(ctx context.Context, owner peer.ID, name string) (*space.Space, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return n.spaces.Open(owner, name)
}

// Spaces lists the spaces this node is home of or holds for others.
func (n *Node) Spaces() []space.Summary { return n.spaces.Spaces() }

// SpaceHoldings lists the spaces this node holds for other users, from
// the pins that keep them.
func (n *Node) SpaceHoldings(ctx context.Context) ([]space.Holding, error) {
	return n.spaces.Holdings(ctx)
}
