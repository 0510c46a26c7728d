package nube

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/topic"
)

// Topics is what a program does with topics: create one, open one (its
// own or another user's) and list those this node owns, holds or
// subscribes to. The node owns the layer's life. See package topic for
// what a topic offers.
type Topics interface {
	// Create makes the topic name, owned by the node's user.
	Create(ctx context.Context, name string, opts topic.Options) (*topic.Topic, error)
	// Open returns a handle on the topic name of owner (empty: the node's
	// own user). Opening reaches no other node.
	Open(ctx context.Context, owner peer.ID, name string) (*topic.Topic, error)
	// List lists the topics this node owns, holds or subscribes to.
	List() []topic.Summary
}

type topics struct{ m *topic.Manager }

func (t topics) Create(ctx context.Context, name string, opts topic.Options) (*topic.Topic, error) {
	return t.m.Create(ctx, name, opts)
}

func (t topics) Open(ctx context.Context, owner peer.ID, name string) (*topic.Topic, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.m.Open(owner, name)
}

func (t topics) List() []topic.Summary { return t.m.List() }

// Topics returns the node's topics layer.
func (n *Node) Topics() Topics { return topics{n.topics} }
