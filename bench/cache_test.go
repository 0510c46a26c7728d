package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/groupcache"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/space"
)

// Caches beside a Go map and groupcache, in one run on one loopback
// (bench/cache.sh prints the table):
//
//	BenchmarkCacheLocalHit/{map,nube}       a hit on this node vs a map behind a mutex: ns/op
//	BenchmarkCacheRemoteHit/{groupcache,nube}  a hit on the key's owner, another node
//	                     (groupcache: another process, over its HTTP pool): ns/op
//	BenchmarkCacheSpaceRead/{direct,cached} a space key read by a node that does not
//	                     hold the space, without and through a cache at a 90% hit rate: ns/op
//	BenchmarkCacheInvalidation              a write's invalidation reaching 10 readers:
//	                     p50-µs, p99-µs from the write's call, beside rtt-µs (a round
//	                     trip to the home) and write-µs (the write's own p50)

const cacheValue = 100 // bytes of each value

func value(key string) []byte {
	b := []byte(strings.Repeat(key, cacheValue/len(key)+1))
	return b[:cacheValue]
}

func BenchmarkCacheLocalHit(b *testing.B) {
	b.Run("map", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string][]byte{"k": value("k")}
		b.ResetTimer()
		for b.Loop() {
			mu.Lock()
			v := m["k"]
			mu.Unlock()
			if len(v) != cacheValue {
				b.Fatal("bad value")
			}
		}
	})
	b.Run("nube", func(b *testing.B) {
		c := nubetest.Cluster(b, 1)
		ctx := nubetest.Context(b, time.Minute)
		x, err := c.Node(0).Cache(ctx, cache.Loader("bench/local", func(_ context.Context, key string) ([]byte, error) {
			return value(key), nil
		}, func(context.Context) (uint64, error) { return 1, nil }), cache.Options{NoPeers: true, Bound: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		nubetest.Eventually(b, ctx, func() bool { return !x.Stats().Confirmed.IsZero() }, func() string { return "no heartbeat" })
		if _, err := x.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			v, err := x.Get(ctx, "k")
			if err != nil || len(v) != cacheValue {
				b.Fatal(err)
			}
		}
	})
}

// groupcacheChildEnv makes the test binary a groupcache peer: its value
// is "LISTEN,PEER" and it serves until its stdin closes.
const groupcacheChildEnv = "NUBE_BENCH_GROUPCACHE_CHILD"

func newGroupcache(self string, peers []string, cacheBytes int64) (*groupcache.HTTPPool, *groupcache.Group) {
	pool := groupcache.NewHTTPPoolOpts(self, nil)
	pool.Set(peers...)
	g := groupcache.NewGroup("bench", cacheBytes, groupcache.GetterFunc(func(_ context.Context, key string, dest groupcache.Sink) error {
		return dest.SetBytes(value(key))
	}))
	return pool, g
}

// TestGroupcacheChild is the other process of the groupcache side.
func TestGroupcacheChild(t *testing.T) {
	env := os.Getenv(groupcacheChildEnv)
	if env == "" {
		t.Skip("not a test: the child process of BenchmarkCacheRemoteHit, which sets its env (skipped in short mode and alone)")
	}
	self, other, _ := strings.Cut(env, ",")
	pool, _ := newGroupcache("http://"+self, []string{"http://" + self, "http://" + other}, 64<<20)
	ln, err := net.Listen("tcp", self)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pool}
	go srv.Serve(ln)
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	srv.Close()
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func BenchmarkCacheRemoteHit(b *testing.B) {
	const nkeys = 512
	b.Run("groupcache", func(b *testing.B) {
		self, other := freeAddr(b), freeAddr(b)
		cmd := exec.Command(os.Args[0], "-test.run=^TestGroupcacheChild$")
		cmd.Env = append(os.Environ(), groupcacheChildEnv+"="+other+","+self)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { stdin.Close(); cmd.Wait() }()
		if line, _ := bufio.NewReader(stdout).ReadString('\n'); !strings.HasPrefix(line, "ready") {
			b.Fatalf("the groupcache peer said %q", line)
		}
		// This side keeps nothing: every Get of the peer's keys is its hit.
		pool, g := newGroupcache("http://"+self, []string{"http://" + self, "http://" + other}, 0)
		ln, err := net.Listen("tcp", self)
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: pool}
		go srv.Serve(ln)
		defer srv.Close()
		var keys []string
		for i := 0; len(keys) < nkeys; i++ {
			k := fmt.Sprintf("key-%d", i)
			if _, remote := pool.PickPeer(k); remote {
				keys = append(keys, k)
			}
		}
		ctx := context.Background()
		var v []byte
		for _, k := range keys { // the peer loads each once
			if err := g.Get(ctx, k, groupcache.AllocatingByteSliceSink(&v)); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if err := g.Get(ctx, keys[i%nkeys], groupcache.AllocatingByteSliceSink(&v)); err != nil || len(v) != cacheValue {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("nube", func(b *testing.B) {
		c := nubetest.Cluster(b, 2)
		ctx := nubetest.Context(b, 5*time.Minute)
		src := cache.Loader("bench/remote", func(_ context.Context, key string) ([]byte, error) {
			return value(key), nil
		}, func(context.Context) (uint64, error) { return 1, nil })
		var xs []*cache.Cache
		for i := range 2 {
			x, err := c.Node(i).Cache(ctx, src, cache.Options{HotReads: -1, Bound: time.Hour, Peers: []peer.ID{c.Node(1 - i).ID()}})
			if err != nil {
				b.Fatal(err)
			}
			xs = append(xs, x)
		}
		var keys []string
		for i := 0; len(keys) < nkeys; i++ {
			k := fmt.Sprintf("key-%d", i)
			if xs[0].Owner(k) == c.Node(1).ID() {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if _, err := xs[0].Get(ctx, k); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		i := 0
		for b.Loop() {
			v, err := xs[0].Get(ctx, keys[i%nkeys])
			if err != nil || len(v) != cacheValue {
				b.Fatal(err)
			}
			i++
		}
		b.StopTimer()
		if st := xs[0].Stats(); st.Hits > 0 {
			b.Fatalf("%d local hits: the figure is not of the owner's", st.Hits)
		}
	})
	b.Run("nube-call", func(b *testing.B) {
		// The remote layer's own round trip, for scale: a call that does
		// nothing but list the functions.
		c := nubetest.Cluster(b, 2)
		ctx := nubetest.Context(b, 5*time.Minute)
		fn := remote.Declare[struct{}, []remote.FuncInfo]("nube.functions")
		t := fn.At(c.Node(0), c.Node(1).ID())
		for b.Loop() {
			if _, err := t.Call(ctx, struct{}{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCacheSpaceRead(b *testing.B) {
	c := nubetest.Cluster(b, 2)
	ctx := nubetest.Context(b, 5*time.Minute)
	sp, err := c.Node(0).Spaces().Create(ctx, "bench", space.Policy{Local: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sp.Grant(ctx, c.Node(1).UserID(), space.Read, time.Time{}); err != nil {
		b.Fatal(err)
	}
	const nkeys = 100
	for i := range nkeys {
		if err := sp.PutBytes(ctx, fmt.Sprintf("k%d", i), value(fmt.Sprintf("k%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	rs, err := c.Node(1).Spaces().Open(ctx, c.Node(0).UserID(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("direct", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := rs.GetBytes(ctx, fmt.Sprintf("k%d", i%nkeys)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("cached", func(b *testing.B) {
		src, err := c.Node(1).SpaceSource(sp.ID())
		if err != nil {
			b.Fatal(err)
		}
		x, err := c.Node(1).Cache(ctx, src, cache.Options{NoPeers: true})
		if err != nil {
			b.Fatal(err)
		}
		for i := range nkeys { // warm: the figure is of a steady 90%
			if _, err := x.Get(ctx, fmt.Sprintf("k%d", i)); err != nil {
				b.Fatal(err)
			}
		}
		before := x.Stats()
		i := 0
		for b.Loop() {
			k := fmt.Sprintf("k%d", i%nkeys)
			if i%10 == 0 {
				x.Invalidate(k) // one read in ten misses
			}
			if _, err := x.Get(ctx, k); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.StopTimer()
		st := x.Stats()
		hits, misses := st.Hits-before.Hits, st.Misses-before.Misses
		b.ReportMetric(100*float64(hits)/float64(hits+misses), "hit-%")
	})
}

func BenchmarkCacheInvalidation(b *testing.B) {
	const readers = 10
	c := nubetest.Cluster(b, readers+1)
	ctx := nubetest.Context(b, 10*time.Minute)
	sp, err := c.Node(0).Spaces().Create(ctx, "inval", space.Policy{Local: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= readers; i++ {
		if _, err := sp.Grant(ctx, c.Node(i).UserID(), space.Read, time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	if err := sp.PutBytes(ctx, "x", []byte("0")); err != nil {
		b.Fatal(err)
	}
	got := make(chan time.Time, 16*readers)
	var xs []*cache.Cache
	for i := 1; i <= readers; i++ {
		src, err := c.Node(i).SpaceSource(sp.ID())
		if err != nil {
			b.Fatal(err)
		}
		x, err := c.Node(i).Cache(ctx, src, cache.Options{Bound: time.Minute, NoPeers: true, Invalidated: func(keys []string) {
			if slices.Contains(keys, "x") {
				got <- time.Now()
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		xs = append(xs, x)
	}
	var lat, rtt, wr []time.Duration
	src0, _ := c.Node(1).SpaceSource(sp.ID())
	for i := 0; b.Loop(); i++ {
		for _, x := range xs {
			if _, err := x.Get(ctx, "x"); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		if _, err := src0.Version(ctx); err != nil { // one round trip to the home
			b.Fatal(err)
		}
		rtt = append(rtt, time.Since(t0))
		start := time.Now()
		if err := sp.PutBytes(ctx, "x", fmt.Appendf(nil, "%d", i+1)); err != nil {
			b.Fatal(err)
		}
		wr = append(wr, time.Since(start))
		for range readers {
			select {
			case at := <-got:
				lat = append(lat, at.Sub(start))
			case <-ctx.Done():
				b.Fatal("an invalidation did not come")
			}
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds())
	}
	b.ReportMetric(pct(lat, 0.5), "p50-µs")
	b.ReportMetric(pct(lat, 0.99), "p99-µs")
	b.ReportMetric(pct(rtt, 0.5), "rtt-µs")
	b.ReportMetric(pct(wr, 0.5), "write-µs") // the write itself, from which latency counts
}
