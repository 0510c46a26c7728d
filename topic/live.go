package topic

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// live is the layer's gossipsub side: live fan-out, the validators, grants
// and sealing. Owner: the live part, which replaces every stub in this
// file.
type live struct{}

func newLive(ctx context.Context, m *Manager) (*live, error) { return &live{}, nil }

func (l *live) close() error { return nil }

// publish dispatches: a durable topic's publish goes to t.publishDurable
// (durable.go), a live one's to gossipsub.
func (t *Topic) publish(ctx context.Context, data []byte, opts PublishOptions) (Ack, error) {
	return Ack{}, errTodo
}

// subscribe dispatches: from an offset, a time or with a consumer to
// t.subscribeDurable (durable.go), from the newest to gossipsub.
func (t *Topic) subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	return nil, errTodo
}

// info fills what the record and the live side know, then asks
// t.m.durable.fill for a durable topic's offsets and consumers.
func (t *Topic) info(ctx context.Context) (Info, error) { return Info{}, errTodo }

func (m *Manager) list() []Summary { return nil }

func (t *Topic) grant(ctx context.Context, user peer.ID, rights Rights, until time.Time) (*space.Grant, error) {
	return nil, errTodo
}

func (t *Topic) revoke(ctx context.Context, id string) error { return errTodo }

// delete deletes the topic's space, and asks the durable part to drop its
// log (t.m.durable.drop).
func (t *Topic) delete(ctx context.Context) error { return errTodo }

// authorise checks that the publisher of r may publish on its topic now:
// the record's chain leads from the topic's owner to the publisher with
// the Publish right, unexpired and unrevoked, on the topic's space.
// Every node that relays (the gossipsub validator) or stores (a holder) a
// message calls it. UNTIL IT IS BUILT IT REFUSES.
func (m *Manager) authorise(ctx context.Context, r *record) error { return errTodo }

// sign makes the envelope of a publish of data by this node's user:
// sealed if the topic is, with the user's grant chain.
func (t *Topic) sign(ctx context.Context, cfg config, data []byte, id string) ([]byte, error) {
	return nil, errTodo
}

// unseal opens a message body (sealed topics) for a subscriber.
func (t *Topic) unseal(ctx context.Context, r *record) ([]byte, error) { return r.Data, nil }

// broadcast hands a stored (or live) message to gossipsub for the topic's
// live subscribers; offset is its place in a durable log, zero on a live
// topic. The durable part calls it after a publish commits.
func (m *Manager) broadcast(ctx context.Context, topicID string, offset uint64, raw []byte) error {
	return errTodo
}
