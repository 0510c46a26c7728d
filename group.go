package nube

import (
	"context"

	"github.com/nubecloud/nube/group"
)

// Groups is what a program does with the node's replicated groups: open
// (form, join or reopen) one and list them. The node owns the groups'
// life: closing the node closes them. See package group for what a group
// offers.
type Groups interface {
	// Open forms, joins or reopens the group name and returns it; a group
	// open already is returned as it is. opts.Members forms it with those
	// peers (each of which makes the same call), opts.Join joins it
	// through one of its members, opts.Machine replicates a state machine
	// of the program's own. A group on disk reopens with its log, and
	// opts.Members is then ignored.
	Open(ctx context.Context, name string, opts group.Options) (*group.Group, error)
	// List lists the groups this node keeps, open or on disk, sorted.
	List() []string
}

var _ Groups = (*group.Manager)(nil)

// Groups returns the node's groups layer.
func (n *Node) Groups() Groups { return n.groups }
