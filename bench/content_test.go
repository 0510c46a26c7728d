package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/netns"
	"github.com/nubecloud/nube/nubetest"
)

// randomReader yields n reproducible pseudo-random bytes, fast enough not
// to be what a benchmark measures.
type randomReader struct {
	rng *rand.Rand
	n   int64
}

func newRandom(n int64, seed int64) *randomReader {
	return &randomReader{rng: rand.New(rand.NewSource(seed)), n: n}
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

// benchSize is the file size of the add and fetch benchmarks: 256 MiB, or
// NUBE_BENCH_MB mebibytes (bench/content.sh uses 1024 to measure memory).
func benchSize() int64 {
	if mb, err := strconv.Atoi(os.Getenv("NUBE_BENCH_MB")); err == nil && mb > 0 {
		return int64(mb) << 20
	}
	return 256 << 20
}

// BenchmarkAdd adds a 256 MiB file to a node's on-disk store (chunking,
// hashing, writing, and the final sync), as `nube add` does.
func BenchmarkAdd(b *testing.B) {
	size := benchSize()
	c := nubetest.Cluster(b, 1, nubetest.WithDataDirs())
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Node(0).Content().Add(ctx, newRandom(size, int64(i)), content.AddOptions{NoPin: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchOneProvider fetches a 256 MiB file from one provider over
// loopback TCP into the fetcher's on-disk store. Compare with
// BenchmarkRawStreamThroughput/tcp.
func BenchmarkFetchOneProvider(b *testing.B) {
	oneProvider(b, func(ctx context.Context, fetcher nube.Content, root cid.Cid, size int64) error {
		return fetcher.Fetch(ctx, root, nil)
	})
}

// oneProvider runs fetch b.N times on node 1 of a two-node cluster on
// loopback TCP, each time for a fresh file of benchSize on node 0, timing
// only the fetch.
func oneProvider(b *testing.B, fetch func(ctx context.Context, fetcher nube.Content, root cid.Cid, size int64) error) {
	size := benchSize()
	c := nubetest.Cluster(b, 2, nubetest.WithDataDirs(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{transports["tcp"]}
	}))
	ctx := context.Background()
	b.SetBytes(size)
	for i := range b.N {
		b.StopTimer()
		root, err := c.Node(0).Content().Add(ctx, newRandom(size, int64(i)), content.AddOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := fetch(ctx, c.Node(1).Content(), root, size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCatOneProvider reads a 256 MiB file from one provider over
// loopback TCP as `nube cat` does: a reader at the front, the fetch
// walking the DAG ahead of it. Compare with BenchmarkFetchOneProvider.
func BenchmarkCatOneProvider(b *testing.B) {
	oneProvider(b, func(ctx context.Context, fetcher nube.Content, root cid.Cid, size int64) error {
		f, err := fetcher.Get(ctx, root.String())
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(io.Discard, f)
		if err == nil && n != size {
			err = fmt.Errorf("read %d of %d bytes", n, size)
		}
		return err
	})
}

// TestParallelFetchRateLimited measures the parallel fetch on slow links:
// in a network namespace of its own, each provider sends from an address
// whose traffic tc limits to the same rate, and a 64 MiB file is fetched
// from 1 provider and then from 4. bench/content.sh prints its result.
func TestParallelFetchRateLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("short: the rate-limited fetch takes several seconds; skipped")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("netns: tc (iproute2) not found, cannot limit links: skipped")
	}
	if !netns.Isolate(t) {
		return
	}
	rate := os.Getenv("NUBE_BENCH_RATE")
	if rate == "" {
		rate = "200mbit"
	}
	const size = 64 << 20
	tc := func(args string) {
		if out, err := exec.Command("tc", strings.Fields(args)...).CombinedOutput(); err != nil {
			t.Fatalf("tc %s: %v: %s", args, err, out)
		}
	}
	tc("qdisc add dev lo root handle 1: htb default 99")
	tc("class add dev lo parent 1: classid 1:99 htb rate 20gbit")
	for i := 1; i <= 5; i++ {
		netns.AddAddr(t, fmt.Sprintf("10.0.0.%d/32", i))
		if i <= 4 { // providers; the fetcher (10.0.0.5) is not limited
			tc(fmt.Sprintf("class add dev lo parent 1: classid 1:1%d htb rate %s", i, rate))
			tc(fmt.Sprintf("filter add dev lo parent 1: protocol ip prio 1 u32 match ip src 10.0.0.%d/32 flowid 1:1%d", i, i))
		}
	}
	run := func(providers int) time.Duration {
		// Node 0 fetches, nodes 1..providers provide. Node 0 dials the
		// others, so each provider's side of its connection has the
		// provider's address, which tc limits. (A connection a provider
		// dialed would leave from the fetcher's address.)
		c := nubetest.Cluster(t, providers+1, nubetest.WithConfig(func(i int, cfg *nube.Config) {
			ip := i
			if i == 0 {
				ip = 5
			}
			cfg.ListenAddrs = []string{fmt.Sprintf("/ip4/10.0.0.%d/tcp/0", ip)}
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var root cid.Cid
		for i := 1; i <= providers; i++ {
			r, err := c.Node(i).Content().Add(ctx, newRandom(size, 99), content.AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			root = r
		}
		start := time.Now()
		if err := c.Node(0).Content().Fetch(ctx, root, nil); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		for i := 1; i <= providers; i++ {
			t.Logf("  provider %d sent %.1f MiB", i, float64(c.Node(i).Content().Sent(c.Node(0).ID()))/(1<<20))
		}
		return d
	}
	one := run(1)
	four := run(4)
	mb := float64(size) / (1 << 20)
	t.Logf("RESULT parallel-fetch rate=%s one=%.2fs (%.1f MiB/s) four=%.2fs (%.1f MiB/s) speedup=%.2f",
		rate, one.Seconds(), mb/one.Seconds(), four.Seconds(), mb/four.Seconds(), one.Seconds()/four.Seconds())
}
