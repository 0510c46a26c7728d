package topic

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// What the attack review's tests send a holder straight, as a hostile
// node would, without the client's checks.

// AttackAck sends holder an ack (or a release) of consumer's offsets as
// worker, from t's node.
func AttackAck(ctx context.Context, t *Topic, holder peer.ID, consumer, worker string, offs []uint64) error {
	_, err := ackFn.At(t.m.cfg.Endpoint, holder).Call(ctx, ackReq{Topic: t.ID(), Consumer: consumer, Worker: worker, Offsets: offs})
	return err
}

// AttackFetch asks holder for messages of consumer as worker, with an
// ack wait of ackWait nanoseconds, from t's node.
func AttackFetch(ctx context.Context, t *Topic, holder peer.ID, consumer, worker string, ackWait int64) (offsets []uint64, err error) {
	rep, err := fetchFn.At(t.m.cfg.Endpoint, holder).Call(ctx, fetchReq{Topic: t.ID(), Consumer: consumer, Worker: worker, Max: 16, AckWait: ackWait, From: 1})
	for _, m := range rep.Msgs {
		offsets = append(offsets, m.Offset)
	}
	return offsets, err
}

// AttackRead reads holder's log of t from offset from, from t's node:
// the offsets and the raw envelopes.
func AttackRead(ctx context.Context, t *Topic, holder peer.ID, from uint64) (offsets []uint64, raws [][]byte, notHolder bool, err error) {
	who, err := t.m.durable.who(ctx, t)
	if err != nil {
		return nil, nil, false, err
	}
	rep, err := readFn.At(t.m.cfg.Endpoint, holder).Call(ctx, readReq{Topic: t.ID(), From: from, Who: who})
	for _, m := range rep.Msgs {
		offsets = append(offsets, m.Offset)
		raws = append(raws, m.Raw)
	}
	return offsets, raws, rep.NotHolder, err
}

// AttackPublish hands holder a signed envelope to store, with nonce,
// from t's node: the offset, whether it was a duplicate, or why not.
func AttackPublish(ctx context.Context, t *Topic, holder peer.ID, raw []byte, nonce string) (uint64, bool, error) {
	rep, err := publishFn.At(t.m.cfg.Endpoint, holder).Call(ctx, pubReq{Topic: t.ID(), Msgs: []pubItem{{Raw: raw, Nonce: nonce}}})
	if err != nil {
		return 0, false, err
	}
	if len(rep.Acks) != 1 {
		return 0, false, ErrUnavailable
	}
	return rep.Acks[0].Offset, rep.Acks[0].Dup, rep.Acks[0].err()
}

// AttackWake wakes holder's log of t with a retention of the caller's
// choosing, from t's node: a config naming t's owner, signed by the
// caller's own user key.
func AttackWake(ctx context.Context, t *Topic, holder peer.ID, retain Retention) error {
	c, err := signConfig(t.m.cfg.UserKey, config{Retain: retain, Topic: t.ID(), Owner: t.owner})
	if err != nil {
		return err
	}
	_, err = wakeFn.At(t.m.cfg.Endpoint, holder).Call(ctx, wakeReq{Topic: t.ID(), Config: c.raw})
	return err
}

// GroupName is the name of the group of topic id's log.
func GroupName(id string) string { return groupName(id) }

// AttackBatch is a raft entry of a topic log that appends raw, as a
// hostile group leader would write it.
func AttackBatch(raw []byte) ([]byte, error) {
	return wire.Marshal(batch{Time: time.Now().UnixNano(), Cmds: []command{{Op: opAppend, Raw: raw}}})
}

// AttackWakeJoin wakes holder's log of t, telling it to join the log's
// group through via, from t's node.
func AttackWakeJoin(ctx context.Context, t *Topic, holder, via peer.ID) error {
	_, err := wakeFn.At(t.m.cfg.Endpoint, holder).Call(ctx, wakeReq{Topic: t.ID(), Join: via.String()})
	return err
}

// EnvelopePublisher is the publisher a stored envelope names (its
// signature checked).
func EnvelopePublisher(raw []byte) (peer.ID, []byte, error) {
	r, err := openMessage(raw)
	if err != nil {
		return "", nil, err
	}
	return r.Publisher, r.Data, nil
}
