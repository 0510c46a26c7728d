package topic_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// TestFanOutLatency measures (and only reports) the time from Publish to
// Next on 10 subscriber nodes, one 1 KiB message at a time: the figure the
// bench sets beside NATS core's.
func TestFanOutLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 11 nodes; skipped in short mode")
	}
	const subs, n = 10, 300
	c := nubetest.Cluster(t, subs+1)
	ctx := nubetest.Context(t, 2*time.Minute)
	owner := c.Node(0)
	tp, err := owner.Topics().Create(ctx, "latency", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, subs)
	for i := 1; i <= subs; i++ {
		if _, err := tp.Grant(ctx, c.Node(i).UserID(), topic.Subscribe, time.Time{}); err != nil {
			t.Fatal(err)
		}
		sub := subscribe(t, ctx, open(t, ctx, c.Node(i), owner.UserID(), "latency"))
		wg.Go(func() {
			for range n {
				m, err := sub.Next(ctx)
				if err != nil {
					errs <- err
					return
				}
				d := time.Since(m.Time)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	waitGossip(t, ctx, tp, c.IDs()[1:]...)
	for i := range n {
		data := make([]byte, 1024) // 1 KiB, as the bench sends
		copy(data, fmt.Sprint(i))
		if _, err := tp.Publish(ctx, data, topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		// One at a time: wait until every subscriber has it.
		nubetest.Eventually(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= (i+1)*subs || len(errs) > 0 },
			func() string { return fmt.Sprintf("message %d did not reach every subscriber", i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(lat)
	t.Logf("live fan-out to %d subscriber nodes, %d messages: p50 %v, p99 %v, max %v", subs, n,
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}
