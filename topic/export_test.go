package topic

import (
	"context"
	"crypto"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// What the external tests reach inside the package.

// GossipTopic is the gossipsub topic a nube topic travels on.
func GossipTopic(id string) string { return gossipTopic(id) }

// Join joins t's gossip without subscribing, as a publisher does.
func Join(t *Topic) error {
	_, err := t.m.live.join(t.ID())
	return err
}

// GossipPeers are the peers t's node knows to be on t's gossip.
func GossipPeers(t *Topic) []peer.ID {
	lt := t.m.live.topic(t.ID())
	if lt == nil {
		return nil
	}
	return lt.pt.ListPeers()
}

// Score is the score t's node gives p, and whether it scores p at all.
func Score(t *Topic, p peer.ID) (float64, bool) { return t.m.live.score(p) }

// GraylistThreshold is the score under which a node ignores a peer.
const GraylistThreshold = graylistThreshold

// Chain is this user's chain to publish on t.
func Chain(ctx context.Context, t *Topic) ([][]byte, error) { return t.sp.Chain(ctx, 2) }

// Forge is what a hostile publisher makes: a payload with a record
// signed by key, naming publisher, for topic, stamped at, with chain and
// an offset.
type Forge struct {
	Key       crypto.Signer
	Topic     string
	Publisher peer.ID
	At        time.Time
	Data      []byte
	Chain     [][]byte
	Offset    uint64
	Epoch     uint64
}

// Payload signs and wraps f.
func (f Forge) Payload() ([]byte, error) {
	raw, err := f.Envelope()
	if err != nil {
		return nil, err
	}
	return encodePayload(f.Offset, raw)
}

// Envelope signs f.
func (f Forge) Envelope() ([]byte, error) {
	return sealMessage(f.Key, &record{Topic: f.Topic, Publisher: f.Publisher, Time: f.At.UnixNano(), Data: f.Data, Chain: f.Chain, Epoch: f.Epoch})
}

// Check runs t's node's validator on a payload as if from.
func Check(ctx context.Context, t *Topic, from peer.ID, payload []byte) error {
	_, err := t.m.live.check(ctx, t.ID(), from, payload)
	return err
}

// Judge is what t's node's validator tells gossipsub of a payload from
// from: "accept", "ignore" (dropped unpenalised) or "reject" (dropped,
// and the sender's score falls).
func Judge(ctx context.Context, t *Topic, from peer.ID, payload []byte) string {
	_, err := t.m.live.check(ctx, t.ID(), from, payload)
	return map[pubsub.ValidationResult]string{pubsub.ValidationAccept: "accept", pubsub.ValidationIgnore: "ignore", pubsub.ValidationReject: "reject"}[result(err)]
}

// Open opens a payload as a subscriber does (bodies still sealed).
func Open(payload []byte) (data []byte, publisher peer.ID, err error) {
	p, err := decodePayload(payload)
	if err != nil {
		return nil, "", err
	}
	r, err := openMessage(p.Env)
	if err != nil {
		return nil, "", err
	}
	return r.Data, r.Publisher, nil
}

// Unseal opens a sealed body as t's node's user.
func Unseal(ctx context.Context, t *Topic, payload []byte) ([]byte, error) {
	p, err := decodePayload(payload)
	if err != nil {
		return nil, err
	}
	r, err := openMessage(p.Env)
	if err != nil {
		return nil, err
	}
	return t.unseal(ctx, r)
}

// Rates are t's node's counts for t.
func RatesOf(t *Topic) Rates {
	if lt := t.m.live.topic(t.ID()); lt != nil {
		return lt.rates()
	}
	return Rates{}
}

// Broadcast signs data as t's node's user and hands it to the gossip with
// offset, as the durable part does after a commit.
func Broadcast(ctx context.Context, t *Topic, offset uint64, data []byte) error {
	cfg, err := t.cachedConfig(ctx)
	if err != nil {
		return err
	}
	raw, err := t.sign(ctx, cfg, data, "")
	if err != nil {
		return err
	}
	return t.m.broadcast(ctx, t.ID(), offset, raw)
}
