package topic_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// TestConsumerResumesAfterRestart: a named consumer's position is kept on
// the holders: after the subscriber's node and every holder restart, the
// consumer goes on after the last message it acked, and the message it
// took but did not ack comes again.
func TestConsumerResumesAfterRestart(t *testing.T) {
	c := nubetest.Cluster(t, 4, nubetest.WithConfig(fast), nubetest.WithDataDirs())
	ctx := nubetest.Context(t, 2*time.Minute)
	tp := durableTopic(t, ctx, c, "jobs", topic.Retention{Count: 1000}, 1, 2, 3)
	for i := range 10 {
		if _, err := tp.Publish(ctx, []byte(fmt.Sprint(i)), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := tp.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0), Consumer: "billing", AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := next(t, ctx, s)
		if m.Offset != uint64(i+1) { // offsets count from 1
			t.Fatalf("message %d: offset %d", i, m.Offset)
		}
		if i < 4 {
			if err := m.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close() // offset 5 taken, not acked: released
	info, err := tp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Consumers) != 1 || info.Consumers[0].Acked != 5 || info.Consumers[0].Lag != 6 {
		t.Fatalf("consumers: %+v", info.Consumers)
	}
	// Restart the subscriber's node and every holder, one at a time.
	for i := 0; i <= 3; i++ {
		if _, err := c.Restart(ctx, i); err != nil {
			t.Fatal(err)
		}
		for j := range 4 {
			if j != i {
				c.Connect(ctx, i, j)
			}
		}
	}
	// Another user with a grant resumes the consumer.
	tp = openOn(t, ctx, c, 3, tp)
	s, err = tp.Subscribe(ctx, topic.SubscribeOptions{Consumer: "billing", AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 4; i < 10; i++ {
		m := next(t, ctx, s)
		if m.Offset != uint64(i+1) {
			t.Fatalf("after the restart: offset %d, want %d", m.Offset, i+1)
		}
		if err := m.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWorkQueue: three workers share a consumer; one is killed while it
// holds messages. Every message is processed; none by two workers unless
// its ack deadline passed first.
func TestWorkQueue(t *testing.T) {
	c := nubetest.Cluster(t, 6, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 2*time.Minute)
	tp := durableTopic(t, ctx, c, "work", topic.Retention{Count: 10000}, 1, 2, 3)
	const n = 200
	for i := range n {
		if _, err := tp.Publish(ctx, []byte(fmt.Sprint(i)), topic.PublishOptions{ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	const ackWait = 2 * time.Second
	type take struct {
		worker int
		at     time.Time
	}
	var mu sync.Mutex
	taken := map[uint64][]take{}
	done := map[uint64]int{}
	// Worker 0 runs on node 0 and is killed (its subscription dropped,
	// never closed) after taking messages it never acks.
	dead, err := tp.Subscribe(ctx, topic.SubscribeOptions{Consumer: "q", From: topic.FromOffset(0), AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		m := next(t, ctx, dead)
		mu.Lock()
		taken[m.Offset] = append(taken[m.Offset], take{0, time.Now()})
		mu.Unlock()
	}
	// (No Close: the worker died holding five messages.)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 1; w <= 2; w++ {
		// Workers 1 and 2 run on nodes 4 and 5, of other users.
		s, err := openOn(t, ctx, c, 3+w, tp).Subscribe(ctx, topic.SubscribeOptions{Consumer: "q", AckWait: ackWait})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			for {
				m, err := s.Next(wctx)
				if err != nil {
					return
				}
				mu.Lock()
				taken[m.Offset] = append(taken[m.Offset], take{w, time.Now()})
				mu.Unlock()
				if m.Ack(wctx) == nil {
					mu.Lock()
					done[m.Offset]++
					mu.Unlock()
				}
			}
		}()
	}
	nubetest.Eventually(t, ctx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(done) == n
	}, func() string { return fmt.Sprintf("%d of %d messages processed", len(done), n) })
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for off, ts := range taken {
		for k := 1; k < len(ts); k++ {
			// A second worker only after the first one's deadline.
			if ts[k].at.Sub(ts[k-1].at) < ackWait/2 { // slack: the first take may have been seen late
				t.Errorf("offset %d taken by worker %d and then %d after %v, within the ack wait", off, ts[k-1].worker, ts[k].worker, ts[k].at.Sub(ts[k-1].at))
			}
		}
	}
	for off := uint64(1); off <= 5; off++ {
		if len(taken[off]) < 2 {
			t.Errorf("offset %d, held by the dead worker, was never taken again", off)
		}
	}
	dead.Close()
}
