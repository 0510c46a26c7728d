package topic_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

func fast(_ int, c *nube.Config) { c.GroupHeartbeat = 300 * time.Millisecond }

// durableTopic makes topic name on node 0, held by nodes on.
func durableTopic(t *testing.T, ctx context.Context, c *nubetest.C, name string, retain topic.Retention, on ...int) *topic.Topic {
	t.Helper()
	return durableTopicTB(t, ctx, c, name, retain, on...)
}

func durableTopicTB(t testing.TB, ctx context.Context, c *nubetest.C, name string, retain topic.Retention, on ...int) *topic.Topic {
	t.Helper()
	var ids []peer.ID
	for _, i := range on {
		ids = append(ids, c.Node(i).ID())
	}
	tp, err := c.Node(0).Topics().Create(ctx, name, topic.Options{Retain: retain, Placement: space.Policy{On: ids}})
	if err != nil {
		t.Fatal(err)
	}
	grantAll(t, ctx, c, tp)
	return tp
}

// grantAll has the owner grant Publish and Subscribe on tp to the user of
// every other node of c.
func grantAll(t testing.TB, ctx context.Context, c *nubetest.C, tp *topic.Topic) {
	t.Helper()
	seen := map[peer.ID]bool{tp.Owner(): true}
	for i := range c.Len() {
		u := c.Node(i).UserID()
		if seen[u] {
			continue
		}
		seen[u] = true
		if _, err := tp.Grant(ctx, u, topic.Publish|topic.Subscribe, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
}

// openOn opens node 0's topic on node i.
func openOn(t *testing.T, ctx context.Context, c *nubetest.C, i int, tp *topic.Topic) *topic.Topic {
	t.Helper()
	o, err := c.Node(i).Topics().Open(ctx, tp.Owner(), tp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func next(t *testing.T, ctx context.Context, s *topic.Subscription) topic.Message {
	t.Helper()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDurablePublishSubscribe: on a topic of 3 holders, publishes get
// offsets in order; a subscriber on another node reads from an offset,
// from a time and from the newest; a repeated ID is stored once; the
// retention drops the oldest and a reader behind it gets a *LagError
// naming the first offset held.
func TestDurablePublishSubscribe(t *testing.T) {
	c := nubetest.Cluster(t, 5, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 20*time.Second)
	tp := durableTopic(t, ctx, c, "events", topic.Retention{Count: 20}, 1, 2, 3)
	// Offsets count from 1.
	for i := 1; i <= 10; i++ {
		ack, err := tp.Publish(ctx, []byte(fmt.Sprint("m", i)), topic.PublishOptions{ID: fmt.Sprint("id", i)})
		if err != nil {
			t.Fatal(err)
		}
		if ack.Offset != uint64(i) || ack.Duplicate || !ack.Durable {
			t.Fatalf("publish %d: %+v", i, ack)
		}
	}
	// A retried publish is stored once.
	ack, err := tp.Publish(ctx, []byte("m3 again"), topic.PublishOptions{ID: "id3"})
	if err != nil || ack.Offset != 3 || !ack.Duplicate {
		t.Fatalf("repeated ID: %+v, %v", ack, err)
	}
	sub := openOn(t, ctx, c, 4, tp) // another user, with a grant, on a node that is no holder
	s, err := sub.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(4)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mid time.Time
	for i := 4; i <= 10; i++ {
		m := next(t, ctx, s)
		if m.Offset != uint64(i) || string(m.Data) != fmt.Sprint("m", i) || m.ID != fmt.Sprint("id", i) {
			t.Fatalf("read %d: offset %d %q", i, m.Offset, m.Data)
		}
		if i == 7 {
			mid = m.Time
		}
	}
	// The stream goes on with what is published next.
	if _, err := tp.Publish(ctx, []byte("m11"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, s); m.Offset != 11 || string(m.Data) != "m11" {
		t.Fatalf("live read: %d %q", m.Offset, m.Data)
	}
	// From a time: the first message stored at or after it.
	st, err := sub.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromTime(mid)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m := next(t, ctx, st); m.Offset > 7 || !m.Time.Before(mid.Add(time.Nanosecond)) && m.Offset != 7 {
		t.Fatalf("from time %v: offset %d at %v", mid, m.Offset, m.Time)
	}
	// From the newest: only what comes next.
	sn, err := sub.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromNewest()})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if _, err := sub.Publish(ctx, []byte("m12"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ctx, sn); m.Offset != 12 || string(m.Data) != "m12" {
		t.Fatalf("from the newest: offset %d", m.Offset)
	}
	// Retention: 20 kept; a reader at 1 lags, one from 0 (the first
	// held) does not.
	for i := 13; i <= 40; i++ {
		if _, err := tp.Publish(ctx, []byte(fmt.Sprint("m", i)), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := sub.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.First != 21 || info.Next != 41 || info.Leader == "" {
		t.Fatalf("info: %+v", info)
	}
	sl, err := sub.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	_, err = sl.Next(ctx)
	var lag *topic.LagError
	if !errors.As(err, &lag) || !errors.Is(err, topic.ErrLagged) || lag.First != 21 {
		t.Fatalf("reading offset 1 behind the retention: %v", err)
	}
	if m := next(t, ctx, sl); m.Offset != 21 {
		t.Fatalf("after the lag: offset %d", m.Offset)
	}
	sf, err := sub.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	if m := next(t, ctx, sf); m.Offset != 21 {
		t.Fatalf("from the first held: offset %d", m.Offset)
	}
}
