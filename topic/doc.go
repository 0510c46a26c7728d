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
// # Durable topics
//
// A topic created with a Retention keeps its messages on its holders (the
// holders of its space; a Local topic's home alone) in one log: a raft
// group (package group) of the holders, in one total order, each message
// at an offset that counts from zero and never changes. What an Ack means:
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
// A publish without an ID is still deduplicated against the node's own
// retries of it.
//
// Reads: a subscription starts at an offset (FromOffset), at the first
// message stored at or after a time (FromTime, by the log's clock), or at
// the next message (FromNewest), and goes on with each message as it is
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
package topic
