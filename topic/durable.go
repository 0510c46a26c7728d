package topic

import (
	"context"

	"github.com/nubecloud/nube/space"
)

// durable is the layer's log side: a durable topic's log on its holders
// (a group), offsets, consumers and work queues. Owner: the durable part,
// which replaces every stub in this file.
type durable struct{}

func newDurable(ctx context.Context, m *Manager) (*durable, error) { return &durable{}, nil }

func (d *durable) close() error { return nil }

// publishDurable stores raw (a signed envelope, from t.sign) on the
// topic's holders and returns its offset once a majority stored it.
func (t *Topic) publishDurable(ctx context.Context, cfg config, raw []byte, opts PublishOptions) (Ack, error) {
	return Ack{}, errTodo
}

// subscribeDurable subscribes from an offset or a time, or as a consumer.
func (t *Topic) subscribeDurable(ctx context.Context, cfg config, opts SubscribeOptions) (*Subscription, error) {
	return nil, errTodo
}

// fill adds a durable topic's leader, offsets, bytes and consumers to info.
func (d *durable) fill(ctx context.Context, t *Topic, cfg config, info *Info) error { return nil }

// drop deletes a durable topic's log on this node (the topic is deleted).
func (d *durable) drop(ctx context.Context, t *Topic) error { return nil }

// migrate moves a durable topic to the holders policy names while
// publishers and subscribers keep going; a live topic's space simply
// migrates.
func (t *Topic) migrate(ctx context.Context, policy space.Policy, progress func(string)) error {
	return errTodo
}
