package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nubetest"
)

// store is a Go loader's data: one map behind a version, shared by the
// nodes of a test (one process), counting its reads.
type store struct {
	mu    sync.Mutex
	data  map[string]string
	ver   uint64
	loads atomic.Int64
}

func newStore() *store { return &store{data: map[string]string{}, ver: 1} }

func (s *store) set(k, v string) {
	s.mu.Lock()
	s.data[k] = v
	s.ver++
	s.mu.Unlock()
}

func (s *store) source(id string) cache.Source {
	return cache.Loader(id, func(ctx context.Context, key string) ([]byte, error) {
		s.loads.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		v, ok := s.data[key]
		if !ok {
			return nil, fmt.Errorf("%w: %s", cache.ErrNotFound, key)
		}
		return []byte(v), nil
	}, func(ctx context.Context) (uint64, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ver, nil
	})
}

// openAll opens src's cache on every node and waits until each knows all
// the others as peers.
func openAll(t *testing.T, ctx context.Context, nodes []*nube.Node, src func(i int) cache.Source, opts cache.Options) []*cache.Cache {
	t.Helper()
	cs := make([]*cache.Cache, len(nodes))
	for i, n := range nodes {
		c, err := n.Cache(ctx, src(i), opts)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	nubetest.Eventually(t, ctx, func() bool {
		for _, c := range cs {
			if len(c.Peers()) != len(nodes)-1 {
				return false
			}
		}
		return true
	}, func() string {
		s := ""
		for i, c := range cs {
			s += fmt.Sprintf(" node %d knows %d peers;", i, len(c.Peers()))
		}
		return "the caches did not find each other:" + s
	})
	return cs
}

// TestOneLoadForAColdKey: 1,000 concurrent gets of one cold key spread
// over 5 nodes read the source once.
func TestOneLoadForAColdKey(t *testing.T) {
	c := nubetest.Cluster(t, 5)
	ctx := nubetest.Context(t, time.Minute)
	s := newStore()
	s.set("cold", "value")
	cs := openAll(t, ctx, c.Nodes(), func(int) cache.Source { return s.source("test/cold") }, cache.Options{})
	owners := map[string]bool{}
	for _, x := range cs {
		owners[string(x.Owner("cold"))] = true
	}
	if len(owners) != 1 {
		t.Fatalf("the nodes disagree on the key's owner: %v", owners)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v, err := cs[i%5].Get(ctx, "cold")
			if err == nil && string(v) != "value" {
				err = fmt.Errorf("got %q", v)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := s.loads.Load(); n != 1 {
		t.Fatalf("1,000 gets over 5 nodes read the source %d times, want 1", n)
	}
}

// TestStaleFillDropped: an invalidation that comes while a fill is under
// way breaks its lease: what it loaded is not kept, and the Get returns
// the value after the change.
func TestStaleFillDropped(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, time.Minute)
	s := newStore()
	s.set("k", "old")
	x, err := c.Node(0).Cache(ctx, s.source("test/lease"), cache.Options{NoPeers: true, Bound: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool { return !x.Stats().Confirmed.IsZero() }, func() string { return "no heartbeat" })
	var once sync.Once
	cache.SetFillHook(x, func(key string) {
		// The first load read "old"; now the source changes and tells the
		// cache, before the fill is kept.
		once.Do(func() {
			s.set("k", "new")
			x.Invalidate("k")
		})
	})
	v, err := x.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(v) != "new" {
		t.Fatalf("a Get racing an invalidation returned %q, want the value after it", v)
	}
	if st := x.Stats(); st.StaleFills != 1 || st.Loads != 2 {
		t.Fatalf("stats %+v: want one stale fill and two loads", st)
	}
	v, err = x.Get(ctx, "k")
	if err != nil || string(v) != "new" {
		t.Fatalf("the kept entry is %q, %v; want the new value", v, err)
	}
	if n := s.loads.Load(); n != 2 {
		t.Fatalf("%d loads, want 2 (the second Get a hit)", n)
	}
	_, err = x.Get(ctx, "missing")
	if !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("a missing key: %v, want ErrNotFound", err)
	}
}
