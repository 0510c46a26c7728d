// Package topic gives users event streams they own: a topic is a named
// stream of signed messages that belongs to a user key, with grants to
// publish and to subscribe, live fan-out through gossipsub
// (go-libp2p-pubsub), and, when created with a retention, a durable log
// kept in one total order on N holders that late readers replay from an
// offset or a time.
//
//	t, err := node.Topics().Create(ctx, "events", topic.Options{Retain: topic.Retention{Count: 1e6}, Placement: space.Policy{Replicas: 3}})
//	ack, err := t.Publish(ctx, []byte("hello"), topic.PublishOptions{ID: "req-17"})
//	sub, err := t.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0), Consumer: "billing"})
//	for { m, err := sub.Next(ctx); …; m.Ack(ctx) }
//
// # Ownership and grants
//
// A topic OWNER/NAME is kept by the space OWNER/topic.NAME: its
// placement, grants and keys are that space's, and its config (sealed,
// retention) is a record in that space signed by the owner's user key. The rights map onto the
// space's: Publish is Write, Subscribe is Read, Delegate is Delegate, so
// delegation, expiry, and revocation with key rotation follow the space's
// rules (see package space). Grant runs on the topic's home for the owner
// and on any node for a grantee that may delegate; Revoke runs on the
// home.
//
// # Live messages
//
// A node runs one gossipsub router; each topic is a gossipsub topic. A
// publisher signs each message with its user key (the envelope names the
// publisher, the topic, a time, the body and the publisher's grant chain,
// owner first) and sends it to every peer on the topic (flood publish),
// who pass it on along the gossipsub mesh. Every node, before it delivers
// or passes on a message, checks it: the payload's size and shape, that
// it is of this topic, stamped within 30 s ahead or 90 s behind the node's
// clock (a replay inside the window is a duplicate gossipsub drops), that
// the chain gives the publisher the Publish right now, and the
// publisher's signature. A message that fails is dropped at that node,
// the first hop, and no subscriber sees it. Where no honest node would
// have passed it on (a bad signature, no grant, another topic's, a
// malformed or oversized one, a stamp far out of the window) the peer
// that sent it is penalised: gossipsub's score of that peer falls by 100
// times the square of such messages, and under -1000 the node ignores
// everything the peer sends (4 such messages do it). A message an honest
// relay may have passed on (its grant revoked or ended after it was
// signed, its stamp just out of the window) is dropped without penalty.
// A message with an offset (from a durable log) is accepted only from the
// topic's home or one of its holders (from another node it is dropped
// unpenalised: it may be a holder newer than the head this node knows).
//
// Verdicts are cached per (publisher, chain) and per head of the topic's
// space, so a node checks a chain once, not per message, and a sender
// without a grant costs it no signature check. How soon a revocation
// reaches relays: on the topic's home at once; on other nodes within
// 2 s (each asks the home for the newest head every 2 s while it relays
// the topic, in the background), plus a round trip. A publisher not on
// the home may go on sealing under the old key for up to the space's
// HeadTTL (2 s) after a revocation. A message under a revoked chain,
// stamped before the chain was revoked, is dropped unpenalised (an honest
// relay may have passed it on); one stamped more than 32 s after this
// node learned of the revocation (2 s plus the 30 s clock window) is a
// revoked publisher's flood, and its sender is penalised.
//
// A live subscription is at most once, and keeps a publisher's order as
// far as gossip does: the publisher sends each message straight to every
// node on the topic that it knows, which checks them one at a time, so
// they arrive in order unless one is lost or a copy relayed by another
// node overtakes the direct one. Order across publishers, and every
// message, are what a durable topic's offsets give.
// Each local subscription has a buffer of 1024 messages and 16 MiB; a
// subscriber that does not keep up loses what does not fit, never slowing
// the publisher or other subscribers, and its next Next returns an error
// wrapping ErrLagged that says how many it lost, then it goes on with the
// next messages. To miss nothing, subscribe to a durable topic from an
// offset or as a consumer.
//
// # Sealed topics
//
// A topic created with Options.Sealed seals each body with
// XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from its space's
// data key of the current key epoch; a subscriber derives the same key
// from the keys it holds as a reader of the space. A revocation starts a
// new epoch whose key a revoked subscriber never gets: it can read
// nothing published after (its Next returns ErrNotAuthorised for such a
// message). Relays and holders see only ciphertext. A public topic's
// bodies are readable by any node that joins its gossip; the API refuses
// a subscribe without a grant, but the gossip is not secret: seal a topic
// whose bodies must be.
//
// # Durable topics
//
// A topic created with a Retention keeps its messages on its holders (the
// holders of its space; a Local topic's home alone) in one log: a raft
// group (package group) of the holders, in one total order, each message
// at an offset that counts from 1 and never changes (0 means none: a live
// topic's Ack and Message have Offset 0, a durable one's Ack has Durable
// set). Publish and Subscribe choose the path themselves. What an Ack means:
// Publish returns once a majority of the holders stored the message and
// applied it; a message acknowledged so is never lost while a majority of
// the holders lives (their logs are synced to disk), and every reader sees
// it at the same offset. A publish that fails with an error may still have
// been stored: retry it with the same PublishOptions.ID and it is stored
// once.
//
// Dedup: a publish whose ID (scoped to its publisher) the log stored within
// the last DedupWindow (two minutes, by the log's clock: the time the
// holder that gathered the batch stamped on it, never going back) is not
// stored again; its Ack names the first one's offset with Duplicate set.
// A publish without an ID is deduplicated by the signed message itself:
// its retries, or anyone's replay of it, within the window are stored
// once (Duplicate set). A holder stores only messages stamped at most
// 30 s ahead of its clock and 80 s behind it, so that a replay after the
// window is refused.
//
// Reads: a subscription starts at an offset (FromOffset; FromOffset(0) is
// the first message still held), at the first message stored at or after
// a time (FromTime, by the log's clock), or at the next message
// (FromNewest, which rides the live gossip: the holders send each stored
// message there with its offset), and goes on with each message as it is
// stored, in offset order. A reader asking for an offset the retention
// dropped (Count, Bytes or Age, oldest first) gets a *LagError naming the
// first offset still held, and the next Next goes on from there.
//
// Consumers: a subscription with SubscribeOptions.Consumer is a worker of
// a durable consumer kept on the holders (in the log's state machine): it
// starts where the consumer stands (From only for a consumer that does
// not exist yet), gets each message at least once, and a message it does
// not Ack within AckWait goes to another worker of the same consumer (a
// work queue; no message goes to two workers before its deadline). A
// worker holds at most 256 messages unacked (backpressure: Next waits for
// an Ack or a deadline), a consumer at most 4096. Closing a subscription
// hands its unacked messages back at once. A consumer behind the
// retention gets one *LagError and goes on from the first offset held.
// Info reports, per consumer, the offset below which all is acked, the
// messages pending and the lag.
//
// Who reads a durable topic: holders serve reads, consumers, acks and
// Info only to a node whose user may subscribe now (the node shows its
// cert and its user's grant chain; a revoked grant is refused at the next
// call). A holder that may not read the topic's space keeps the retention
// of the owner's signed config a caller brings, and no other: a caller
// cannot make it keep less.
package topic
