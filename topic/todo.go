package topic

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// The calls below are the contract between the package's parts; each part
// replaces its stubs and this file goes.

func (m *Manager) create(ctx context.Context, name string, opts Options) (*Topic, error) {
	return nil, errTodo
}
func (m *Manager) open(owner peer.ID, name string) (*Topic, error) { return nil, errTodo }
func (m *Manager) list() []Summary                                 { return nil }
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
