package topic

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// The calls below are the contract between the package's parts; each part
// replaces its stubs and this file goes.

func (m *Manager) list() []Summary { return nil }
func (t *Topic) publish(ctx context.Context, data []byte, opts PublishOptions) (Ack, error) {
	return Ack{}, errTodo
}
func (t *Topic) subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	return nil, errTodo
}
func (t *Topic) info(ctx context.Context) (Info, error) { return Info{}, errTodo }
func (t *Topic) grant(ctx context.Context, user peer.ID, rights Rights, until time.Time) (*space.Grant, error) {
	return nil, errTodo
}
func (t *Topic) revoke(ctx context.Context, id string) error { return errTodo }
func (t *Topic) migrate(ctx context.Context, policy space.Policy, progress func(string)) error {
	return errTodo
}
func (t *Topic) delete(ctx context.Context) error { return errTodo }

// authorise checks that the publisher of r may publish on its topic now:
// the record's chain leads from the topic's owner to the publisher with
// the Publish right, unexpired and unrevoked, on the topic's space.
// Every node that relays (the gossipsub validator) or stores (a holder) a
// message calls it. Owner: the live part. UNTIL IT IS BUILT IT REFUSES.
func (m *Manager) authorise(ctx context.Context, r *record) error { return errTodo }

// seal and unseal encrypt a message body under the topic key of an epoch
// (sealed topics); the live part builds them.
func (t *Topic) seal(ctx context.Context, data []byte) (sealed []byte, epoch uint64, err error) {
	return data, 0, nil
}
func (t *Topic) unseal(ctx context.Context, r *record) ([]byte, error) { return r.Data, nil }

// broadcast hands a stored (or live) message to gossipsub for the topic's
// live subscribers; offset is its place in a durable log, zero on a live
// topic. The durable part calls it after a publish commits. Owner: live.
func (m *Manager) broadcast(ctx context.Context, topicID string, offset uint64, raw []byte) error {
	return errTodo
}
