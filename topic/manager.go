package topic

import (
	"context"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/space"
)

// Manager is a node's topics layer.
type Manager struct {
	cfg     Config
	live    *live    // live.go: gossipsub, validators
	durable *durable // durable.go: logs on holders, consumers
}

// New starts the layer. Close stops it.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	m := &Manager{cfg: cfg}
	var err error
	if m.live, err = newLive(ctx, m); err != nil {
		return nil, err
	}
	if m.durable, err = newDurable(ctx, m); err != nil {
		m.live.close()
		return nil, err
	}
	return m, nil
}

// Close stops the layer: subscriptions end, logs close.
func (m *Manager) Close() error {
	err := m.durable.close()
	if e := m.live.close(); err == nil {
		err = e
	}
	return err
}

// Create makes the topic name, owned by this node's user.
func (m *Manager) Create(ctx context.Context, name string, opts Options) (*Topic, error) {
	return m.create(ctx, name, opts)
}

// Open returns a handle on the topic name of owner (empty: this node's
// user). It reaches no other node.
func (m *Manager) Open(owner peer.ID, name string) (*Topic, error) {
	return m.open(owner, name)
}

// List lists the topics this node owns, holds or subscribes to.
func (m *Manager) List() []Summary { return m.list() }

// Topic is a handle on one topic.
type Topic struct {
	m     *Manager
	owner peer.ID
	name  string
	sp    *space.Space // the space that keeps the topic's record
}

// ID is "OWNER/NAME".
func (t *Topic) ID() string { return t.owner.String() + "/" + t.name }

// Owner is the topic's owner.
func (t *Topic) Owner() peer.ID { return t.owner }

// Name is the topic's name.
func (t *Topic) Name() string { return t.name }

// Publish signs data as this node's user and sends it. On a durable topic
// it returns once a majority of the holders stored it; on a live-only one
// once it is handed to gossipsub.
func (t *Topic) Publish(ctx context.Context, data []byte, opts PublishOptions) (Ack, error) {
	return t.publish(ctx, data, opts)
}

// Subscribe starts a subscription.
func (t *Topic) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	return t.subscribe(ctx, opts)
}

// Info describes the topic (grants and consumers on its home and
// holders only).
func (t *Topic) Info(ctx context.Context) (Info, error) { return t.info(ctx) }

// Grant lets user publish and/or subscribe until until (zero: no end).
func (t *Topic) Grant(ctx context.Context, user peer.ID, rights Rights, until time.Time) (*space.Grant, error) {
	return t.grant(ctx, user, rights, until)
}

// Revoke revokes a grant by its ID; a sealed topic's key rotates.
func (t *Topic) Revoke(ctx context.Context, id string) error { return t.revoke(ctx, id) }

// Migrate moves a durable topic to the holders policy names while
// publishers and subscribers keep going.
func (t *Topic) Migrate(ctx context.Context, policy space.Policy, progress func(string)) error {
	return t.migrate(ctx, policy, progress)
}

// Delete deletes the topic and everything it kept.
func (t *Topic) Delete(ctx context.Context) error { return t.delete(ctx) }

// SplitID splits "OWNER/NAME".
func SplitID(id string) (peer.ID, string, error) {
	o, n, ok := strings.Cut(id, "/")
	if !ok {
		return "", "", ErrBadName
	}
	p, err := peer.Decode(o)
	if err != nil {
		return "", "", ErrBadName
	}
	return p, n, nil
}
