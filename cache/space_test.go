package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// spaceCluster starts node 0, which owns the space "data" (kept on it
// alone), and n readers with a grant to read it, each with a cache of it.
func spaceCluster(t *testing.T, ctx context.Context, n int, opts cache.Options) (*nubetest.C, *space.Space, []*cache.Cache, []*space.Grant) {
	t.Helper()
	c := nubetest.Cluster(t, n+1)
	sp, err := c.Node(0).Spaces().Create(ctx, "data", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	grants := make([]*space.Grant, n)
	for i := 1; i <= n; i++ {
		if grants[i-1], err = sp.Grant(ctx, c.Node(i).UserID(), space.Read, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.PutBytes(ctx, "x", []byte("0")); err != nil {
		t.Fatal(err)
	}
	cs := openAll(t, ctx, c.Nodes()[1:], func(i int) cache.Source {
		src, err := c.Node(i + 1).SpaceSource(sp.ID())
		if err != nil {
			t.Fatal(err)
		}
		return src
	}, opts)
	return c, sp, cs, grants
}

// read is one Get of a reader: when it began and what it returned.
type read struct {
	node  int
	start time.Time
	value int
}

// TestSpaceReadsWithinTheBound: readers on five nodes read a key through
// a cache while the space's owner writes it. No read returns a value
// older than the last write acknowledged more than the bound before the
// read began. The long version kills a reader, kills the key's owner
// node among the readers, and partitions a reader off and heals it.
func TestSpaceReadsWithinTheBound(t *testing.T) {
	run := 3 * time.Second
	if !testing.Short() {
		run = 12 * time.Second
	}
	ctx := nubetest.Context(t, 2*time.Minute)
	bound := 500 * time.Millisecond
	c, sp, cs, _ := spaceCluster(t, ctx, 5, cache.Options{Bound: bound})
	ids := c.IDs()

	var mu sync.Mutex
	var acks []time.Time // acks[i] is when write i was acknowledged
	acks = append(acks, time.Now())
	var reads []read
	dead := make([]bool, len(cs))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := sp.PutBytes(ctx, "x", []byte(strconv.Itoa(i))); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			mu.Lock()
			acks = append(acks, time.Now())
			mu.Unlock()
		}
	})
	for r := range cs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				gone := dead[r]
				mu.Unlock()
				if gone {
					return
				}
				start := time.Now()
				v, err := cs[r].Get(ctx, "x")
				if err != nil {
					continue // a partitioned or dying reader may fail; it must not be stale
				}
				n, err := strconv.Atoi(string(v))
				if err != nil {
					t.Errorf("reader %d: value %q", r, v)
					return
				}
				mu.Lock()
				reads = append(reads, read{r, start, n})
				mu.Unlock()
			}
		})
	}
	wait := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	if testing.Short() {
		wait(run)
	} else {
		wait(run / 4)
		t.Log("killing a reader")
		// A reader dies.
		mu.Lock()
		dead[4] = true
		mu.Unlock()
		c.Kill(5)
		wait(run / 4)
		t.Log("killing the key's owner")
		// The node that owns the key among the readers dies.
		owner := string(cs[0].Owner("x"))
		for i := range cs[:4] {
			if owner == string(ids[i+1]) && i != 0 {
				mu.Lock()
				dead[i] = true
				mu.Unlock()
				c.Kill(i + 1)
			}
		}
		wait(run / 4)
		t.Log("partitioning a reader")
		// A reader is cut off from all, then healed.
		c.Partition([]int{1}, []int{0, 2, 3, 4})
		wait(run / 8)
		t.Log("healing")
		if err := c.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		wait(run / 8)
	}
	t.Log("stopping")
	close(stop)
	wg.Wait()
	t.Log("stopped")

	mu.Lock()
	defer mu.Unlock()
	checkBound(t, acks, reads, bound)
}

// checkBound fails the test for a read that returned a value older than
// the last write acknowledged more than bound before the read began.
func checkBound(t *testing.T, acks []time.Time, reads []read, bound time.Duration) {
	t.Helper()
	if len(reads) < 50 {
		t.Fatalf("only %d reads", len(reads))
	}
	bad := 0
	for _, r := range reads {
		// The newest write acknowledged before start-bound (acks are in
		// order).
		edge := r.start.Add(-bound)
		want := max(0, sort.Search(len(acks), func(i int) bool { return !acks[i].Before(edge) })-1)
		if r.value < want {
			bad++
			if bad < 5 {
				t.Errorf("reader %d at %s read %d; write %d was acknowledged more than %s before", r.node, r.start.Format("15:04:05.000"), r.value, want, bound)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d reads older than the bound allows", bad, len(reads))
	}
	t.Logf("%d reads of %d writes, none older than the bound", len(reads), len(acks))
}

// TestSpaceRevokedReader: a reader whose grant is revoked loses its
// entries and its Gets are refused.
func TestSpaceRevokedReader(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	_, sp, cs, grants := spaceCluster(t, ctx, 2, cache.Options{})
	for _, x := range cs {
		if v, err := x.Get(ctx, "x"); err != nil || string(v) != "0" {
			t.Fatalf("get: %q, %v", v, err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool { return cs[0].Stats().Entries > 0 || cs[1].Stats().Entries > 0 }, func() string { return "nothing kept" })
	if err := sp.Revoke(ctx, grants[0].ID()); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		_, err := cs[0].Get(ctx, "x")
		return errors.Is(err, cache.ErrNotAuthorised) && cs[0].Stats().Entries == 0
	}, func() string {
		_, err := cs[0].Get(ctx, "x")
		return fmt.Sprintf("the revoked reader still reads: %v, %d entries", err, cs[0].Stats().Entries)
	})
	// The other reader goes on.
	if v, err := cs[1].Get(ctx, "x"); err != nil || string(v) != "0" {
		t.Fatalf("the reader still granted: %q, %v", v, err)
	}
}
