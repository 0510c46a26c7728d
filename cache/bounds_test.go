package cache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

// TestBounds: a cache never keeps more than its bytes, the node never
// more than its own, and a value over MaxEntry is served but not kept.
func TestBounds(t *testing.T) {
	c := nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, cfg *nube.Config) { cfg.CacheMemory = 64 << 10 }))
	ctx := nubetest.Context(t, time.Minute)
	s := newStore()
	for i := range 200 {
		s.set(fmt.Sprintf("k%d", i), strings.Repeat("v", 1000))
	}
	s.set("big", strings.Repeat("b", 5000))
	x, err := c.Node(0).Cache(ctx, s.source("test/bounds"), cache.Options{NoPeers: true, Bound: time.Hour, MaxBytes: 32 << 10, MaxEntry: 4000})
	if err != nil {
		t.Fatal(err)
	}
	y, err := c.Node(0).Cache(ctx, s.source("test/bounds2"), cache.Options{NoPeers: true, Bound: time.Hour, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range []*cache.Cache{x, y} {
		nubetest.Eventually(t, ctx, func() bool { return !z.Stats().Confirmed.IsZero() }, func() string { return "no heartbeat" })
	}
	for i := range 200 {
		for _, z := range []*cache.Cache{x, y} {
			if _, err := z.Get(ctx, fmt.Sprintf("k%d", i)); err != nil {
				t.Fatal(err)
			}
			if b := z.Stats().Bytes; b > z.Stats().MaxBytes {
				t.Fatalf("%s keeps %d bytes, over its %d", z.Name(), b, z.Stats().MaxBytes)
			}
			if b := c.Node(0).Caches().Bytes(); b > 64<<10 {
				t.Fatalf("the node keeps %d bytes, over its %d", b, 64<<10)
			}
		}
	}
	if x.Stats().Evictions == 0 || y.Stats().Evictions == 0 {
		t.Fatalf("no evictions: %+v %+v", x.Stats(), y.Stats())
	}
	before := x.Stats().Entries
	if v, err := x.Get(ctx, "big"); err != nil || len(v) != 5000 {
		t.Fatalf("a value over MaxEntry: %d bytes, %v", len(v), err)
	}
	if x.Stats().Entries > before {
		t.Fatal("a value over MaxEntry was kept")
	}
	// The most recent key stays, the first went (LRU).
	loads := s.loads.Load()
	if _, err := x.Get(ctx, "k199"); err != nil || s.loads.Load() != loads {
		t.Fatalf("the last key read was not kept: %v", err)
	}
}

// TestHotKeyCopied: a node that reads another's key HotReads times keeps
// a copy and then serves it from its own memory.
func TestHotKeyCopied(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	s := newStore()
	cs := openAll(t, ctx, c.Nodes(), func(int) cache.Source { return s.source("test/hot") }, cache.Options{HotReads: 3})
	key := ""
	for i := 0; key == ""; i++ {
		if k := fmt.Sprintf("k%d", i); cs[0].Owner(k) == c.Node(1).ID() {
			key = k
		}
	}
	s.set(key, "hot")
	for range 5 {
		if v, err := cs[0].Get(ctx, key); err != nil || string(v) != "hot" {
			t.Fatalf("get: %q, %v", v, err)
		}
	}
	st := cs[0].Stats()
	if st.RemoteHits != 3 || st.Hits != 2 {
		t.Fatalf("stats %+v: want 3 reads from the owner, then 2 from the copy", st)
	}
	if n := s.loads.Load(); n != 1 {
		t.Fatalf("%d source reads, want 1", n)
	}
}

// TestGroupSource: members of a group cache its map; a write through the
// cache is read back at once, and a write to the group straight is seen
// by the other member within the bound.
func TestGroupSource(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	var gs []*group.Group
	for i := range 3 {
		g, err := c.Node(i).Groups().Open(ctx, "kv", group.Options{Members: c.IDs()})
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	if _, err := gs[0].Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	cs := openAll(t, ctx, c.Nodes(), func(i int) cache.Source { return cache.GroupSource(gs[i]) }, cache.Options{})
	for _, x := range cs {
		if v, err := x.Get(ctx, "k"); err != nil || string(v) != "1" {
			t.Fatalf("get: %q, %v", v, err)
		}
	}
	// Read your own write, at once.
	if err := cs[1].Put(ctx, "k", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if v, err := cs[1].Get(ctx, "k"); err != nil || string(v) != "2" {
		t.Fatalf("the writer read %q, %v after its write", v, err)
	}
	// A write to the group itself reaches every cache.
	if _, err := gs[2].Put(ctx, "k", []byte("3")); err != nil {
		t.Fatal(err)
	}
	for i, x := range cs {
		nubetest.Eventually(t, ctx, func() bool {
			v, err := x.Get(context.Background(), "k")
			return err == nil && string(v) == "3"
		}, func() string { return fmt.Sprintf("node %d does not see the write", i) })
	}
}
