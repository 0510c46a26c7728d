package nube

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/group"
)

// Group forms or joins the replicated group name: this node and members,
// each of which makes the same call (or joins later). A node that has the
// group on disk reopens it with its log, and members is then ignored. See
// package group for what a group offers.
func (n *Node) Group(ctx context.Context, name string, members ...peer.ID) (*group.Group, error) {
	return n.groups.Open(ctx, name, group.Options{Members: members})
}

// OpenGroup opens the group name with options: to join an existing group
// through one of its members, or to replicate a state machine of the
// program's own.
func (n *Node) OpenGroup(ctx context.Context, name string, opts group.Options) (*group.Group, error) {
	return n.groups.Open(ctx, name, opts)
}

// GroupNames lists the groups this node keeps, open or on disk.
func (n *Node) GroupNames() []string { return n.groups.Names() }
