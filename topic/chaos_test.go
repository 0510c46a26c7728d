package topic_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// history records what publishers had acknowledged and what each durable
// consumer was handed, for check.
type history struct {
	mu    sync.Mutex
	acked map[string]topic.Ack  // publish ID → its ack
	got   map[string][]delivery // consumer → deliveries, in order
}

type delivery struct {
	offset uint64
	id     string
}

func newHistory() *history {
	return &history{acked: map[string]topic.Ack{}, got: map[string][]delivery{}}
}

// publisher publishes n messages with IDs prefix-i, each retried with its
// ID until acknowledged (so none is doubled, and none lost).
func (h *history) publisher(ctx context.Context, t *testing.T, tp *topic.Topic, prefix string, n int) {
	for i := range n {
		id := fmt.Sprint(prefix, "-", i)
		for {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ack, err := tp.Publish(pctx, []byte(id), topic.PublishOptions{ID: id})
			cancel()
			if err == nil {
				h.mu.Lock()
				h.acked[id] = ack
				h.mu.Unlock()
				break
			}
			if ctx.Err() != nil {
				t.Errorf("publisher %s: %v", prefix, err)
				return
			}
		}
	}
}

// consumer takes and acks messages of the named consumer until ctx ends,
// subscribing anew after an error.
func (h *history) consumer(ctx context.Context, tp *topic.Topic, name string) {
	for ctx.Err() == nil {
		s, err := tp.Subscribe(ctx, topic.SubscribeOptions{Consumer: name, From: topic.FromOffset(0), AckWait: time.Minute})
		if err != nil {
			continue
		}
		for {
			m, err := s.Next(ctx)
			if err != nil {
				break
			}
			h.mu.Lock()
			h.got[name] = append(h.got[name], delivery{m.Offset, m.ID})
			h.mu.Unlock()
			for m.Ack(ctx) != nil && ctx.Err() == nil {
			}
		}
		s.Close()
	}
}

// delivered reports whether every consumer was handed every acked publish.
func (h *history) delivered(consumers ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range consumers {
		seen := map[uint64]bool{}
		for _, d := range h.got[c] {
			seen[d.offset] = true
		}
		for _, a := range h.acked {
			if !seen[a.Offset] {
				return false
			}
		}
	}
	return true
}

// check verifies the history: each acked publish has its own offset (none
// doubled), every consumer got every one of them (none lost), all in one
// order: offsets first delivered in increasing order, and the same
// message at the same offset for every consumer.
func (h *history) check(t *testing.T, consumers ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byOffset := map[uint64]string{}
	for id, a := range h.acked {
		if o, ok := byOffset[a.Offset]; ok {
			t.Errorf("offset %d acked for %s and %s", a.Offset, o, id)
		}
		byOffset[a.Offset] = id
	}
	for _, c := range consumers {
		first := map[uint64]bool{}
		ids := map[string]uint64{}
		var last uint64
		for k, d := range h.got[c] {
			if want, ok := byOffset[d.offset]; ok && want != d.id {
				t.Errorf("consumer %s: offset %d holds %s, acked as %s", c, d.offset, d.id, want)
			}
			if o, ok := ids[d.id]; ok && o != d.offset {
				t.Errorf("consumer %s: %s stored twice, at %d and %d", c, d.id, o, d.offset)
			}
			ids[d.id] = d.offset
			if first[d.offset] {
				continue // a redelivery: at least once
			}
			if k > 0 && d.offset < last {
				t.Errorf("consumer %s: offset %d first delivered after %d", c, d.offset, last)
			}
			first[d.offset], last = true, d.offset
		}
		for id, a := range h.acked {
			if !first[a.Offset] {
				t.Errorf("consumer %s never got %s (offset %d)", c, id, a.Offset)
			}
		}
	}
	t.Logf("%d publishes acknowledged; deliveries: %v", len(h.acked), func() map[string]int {
		m := map[string]int{}
		for c, ds := range h.got {
			m[c] = len(ds)
		}
		return m
	}())
}

// TestDurableChaos: 5 nodes, 3 holders (1, 2, 3); publishers on nodes 0
// and 4, durable consumers on nodes 1 and 2. Mid-stream holder 3 is
// crashed and restarted, and holder 2 (with its consumer) is cut off and
// healed. Every acknowledged publish reaches both consumers, in one
// order, none lost, none doubled.
func TestDurableChaos(t *testing.T) {
	n := 60
	if !testing.Short() {
		n = 1000
	}
	c := nubetest.Cluster(t, 5, nubetest.WithConfig(fast), nubetest.WithDataDirs())
	ctx := nubetest.Context(t, 4*time.Minute)
	tp := durableTopic(t, ctx, c, "chaos", topic.Retention{Count: 1 << 20}, 1, 2, 3)
	ack, err := tp.Publish(ctx, []byte("first"), topic.PublishOptions{ID: "first"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Offset != 1 || !ack.Durable {
		t.Fatalf("the first publish: %+v, want offset 1", ack)
	}
	h := newHistory()
	h.acked["first"] = ack
	cctx, stopConsumers := context.WithCancel(ctx)
	var cw sync.WaitGroup
	for k, i := range []int{1, 2} {
		sub := openOn(t, ctx, c, i, tp)
		cw.Add(1)
		go func() {
			defer cw.Done()
			h.consumer(cctx, sub, fmt.Sprint("c", k))
		}()
	}
	var pw sync.WaitGroup
	progress := make(chan struct{}, 4*n)
	for _, i := range []int{0, 4} {
		pub := openOn(t, ctx, c, i, tp)
		pw.Add(1)
		go func() {
			defer pw.Done()
			for k := 0; k < n; k += 10 {
				h.publisher(ctx, t, pub, fmt.Sprintf("p%d.%d", i, k), 10)
				progress <- struct{}{}
			}
		}()
	}
	waitBatches := func(k int) {
		for range k {
			select {
			case <-progress:
			case <-ctx.Done():
				t.Fatal("publishers stalled")
			}
		}
	}
	waitBatches(n / 10 / 2)
	t.Log("crash holder 3")
	c.Crash(3)
	waitBatches(n / 10 / 2)
	if _, err := c.Restart(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for _, j := range []int{0, 1, 2, 4} {
		c.Connect(ctx, 3, j)
	}
	t.Log("restarted holder 3; cut holder 2 off")
	c.Partition([]int{2}, []int{0, 1, 3, 4})
	waitBatches(n / 10 / 2)
	if err := c.Heal(ctx); err != nil {
		t.Log(err)
	}
	t.Log("healed")
	pw.Wait()
	nubetest.Eventually(t, ctx, func() bool { return h.delivered("c0", "c1") }, func() string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return fmt.Sprintf("consumers got %d and %d deliveries of %d publishes", len(h.got["c0"]), len(h.got["c1"]), len(h.acked))
	})
	stopConsumers()
	cw.Wait()
	h.check(t, "c0", "c1")
	if len(h.acked) != 2*n+1 {
		t.Fatalf("%d publishes acknowledged, want %d", len(h.acked), 2*n+1)
	}
}

// TestMigrateUnderLoad: a durable topic moves from holders 1, 2, 3 to 3,
// 4, 5 while a publisher and a consumer keep going; the checker holds.
func TestMigrateUnderLoad(t *testing.T) {
	n := 100
	if !testing.Short() {
		n = 1000
	}
	c := nubetest.Cluster(t, 6, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 3*time.Minute)
	tp := durableTopic(t, ctx, c, "moving", topic.Retention{Count: 1 << 20}, 1, 2, 3)
	h := newHistory()
	cctx, stopConsumer := context.WithCancel(ctx)
	var cw sync.WaitGroup
	cw.Add(1)
	go func() {
		defer cw.Done()
		h.consumer(cctx, tp, "c")
	}()
	progress := make(chan struct{}, n)
	var pw sync.WaitGroup
	pw.Add(1)
	go func() {
		defer pw.Done()
		for k := 0; k < n; k += 10 {
			h.publisher(ctx, t, tp, fmt.Sprint("p", k), 10)
			progress <- struct{}{}
		}
	}()
	for range n / 10 / 3 {
		<-progress
	}
	err := tp.Migrate(ctx, space.Policy{On: c.IDs()[3:6]}, func(s string) { t.Log(s) })
	if err != nil {
		t.Fatal(err)
	}
	pw.Wait()
	info, err := tp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Next != uint64(n)+1 { // offsets count from 1
		t.Errorf("after the move the log's next offset is %d, want %d", info.Next, n+1)
	}
	nubetest.Eventually(t, ctx, func() bool { return h.delivered("c") }, func() string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return fmt.Sprintf("the consumer got %d deliveries of %d publishes", len(h.got["c"]), len(h.acked))
	})
	stopConsumer()
	cw.Wait()
	h.check(t, "c")
	// The old holders let go of the log.
	for _, i := range []int{1, 2} {
		if gs := c.Node(i).Groups().List(); len(gs) != 0 {
			for _, g := range gs {
				if len(g) > 6 && g[:6] == "topic." {
					t.Errorf("node %d still keeps %s", i, g)
				}
			}
		}
	}
	_ = errors.New
}
