package topic

import (
	"context"
	"crypto"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/space"
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

// ConfigOf is t's config as its owner signed it (t's node must read it).
func ConfigOf(ctx context.Context, t *Topic) ([]byte, error) {
	c, err := t.config(ctx)
	return c.raw, err
}

// SignConfig signs, with key, a config of topic id that names owner.
func SignConfig(key crypto.Signer, id string, owner peer.ID, r Retention) ([]byte, error) {
	c, err := signConfig(key, config{Retain: r, Topic: id, Owner: owner})
	return c.raw, err
}

// PublishRaw signs data as t's node's user and sends it straight to
// holder, with cfg as the topic's config.
func PublishRaw(ctx context.Context, t *Topic, holder peer.ID, data []byte, cfg []byte) error {
	raw, err := t.sign(ctx, config{}, data, "")
	if err != nil {
		return err
	}
	rep, err := publishFn.At(t.m.cfg.Endpoint, holder).Call(ctx, pubReq{Topic: t.ID(), Config: cfg, Msgs: []pubItem{{Raw: raw}}})
	switch {
	case err != nil:
		return err
	case rep.NotHolder:
		return ErrUnavailable
	}
	return rep.Acks[0].err()
}

// HolderRetention is the retention t's node, a holder, keeps t's log by.
func HolderRetention(t *Topic) (Retention, bool) {
	d := t.m.durable
	d.mu.Lock()
	l := d.logs[t.ID()]
	d.mu.Unlock()
	if l == nil {
		return Retention{}, false
	}
	return l.retention(), true
}

// ReadChain is t's node's user's chain to subscribe to t.
func ReadChain(ctx context.Context, t *Topic) ([][]byte, error) { return t.sp.Chain(ctx, space.Read) }

// Cert is t's node's cert.
func Cert(t *Topic) *nodecert.Cert { return t.m.cfg.Cert }

// Direct makes each of a holder's reader calls (read, consumer fetch, ack,
// info) on t straight to holder from t's node, presenting cert and chain,
// and returns their errors, by call.
func Direct(ctx context.Context, t *Topic, holder peer.ID, cert *nodecert.Cert, chain [][]byte) map[string]error {
	e, who := t.m.cfg.Endpoint, caller{Cert: cert, Chain: chain}
	out := map[string]error{}
	rr, err := readFn.At(e, holder).Call(ctx, readReq{Topic: t.ID(), Max: 10, Who: who})
	if err == nil && (rr.NotHolder || len(rr.Msgs) == 0) {
		err = fmt.Errorf("no messages (not a holder: %v)", rr.NotHolder)
	}
	out["read"] = err
	fr, err := fetchFn.At(e, holder).Call(ctx, fetchReq{Topic: t.ID(), Consumer: "thief", Worker: "w", Max: 10, AckWait: int64(time.Minute), From: 1, Who: who})
	if err == nil && len(fr.Msgs) == 0 {
		err = fmt.Errorf("no messages")
	}
	out["fetch"] = err
	_, err = ackFn.At(e, holder).Call(ctx, ackReq{Topic: t.ID(), Consumer: "billing", Worker: "w", Offsets: []uint64{1}, Who: who})
	out["ack"] = err
	_, err = infoFn.At(e, holder).Call(ctx, infoReq{Topic: t.ID(), Who: who})
	out["info"] = err
	return out
}
