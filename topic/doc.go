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
// This doc is completed by the layers that fill the package in.
package topic
