package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/space"
)

// echoFn is the round trip the space benchmarks compare a small get with.
var echoFn = remote.Func("bench.echo", func(_ context.Context, b []byte) ([]byte, error) { return b, nil })

// spaceCluster is three nodes on loopback TCP: 0 owns a space placed on 1,
// 2 reads it with a grant.
func spaceCluster(b testing.TB) (*nubetest.C, *space.Space, *space.Space) {
	c := nubetest.Cluster(b, 3, nubetest.WithDataDirs(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{transports["tcp"]}
	}))
	ctx := context.Background()
	own, err := c.Node(0).Spaces().Create(ctx, "bench", space.Policy{On: []peer.ID{c.Node(1).ID()}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := own.Grant(ctx, c.Node(2).UserID(), space.Read, time.Time{}); err != nil {
		b.Fatal(err)
	}
	rd, err := c.Node(2).Spaces().Open(ctx, c.Node(0).UserID(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return c, own, rd
}

// BenchmarkSpace measures a space's puts and gets on a remote holder
// beside what they are built on, in the same loop so that whatever else
// the machine does weighs on both alike: a bare remote call round trip,
// and a bare content add and fetch of the same number of bytes. Each
// iteration does one of each; the figures are custom metrics (µs per op,
// MB/s), which bench/space.sh prints side by side.
func BenchmarkSpace(b *testing.B) {
	c, own, rd := spaceCluster(b)
	ctx := context.Background()
	small := bytes.Repeat([]byte{1}, 1<<10)
	if err := own.PutBytes(ctx, "small", small); err != nil {
		b.Fatal(err)
	}
	// Gets with the head cached: nothing is written meanwhile.
	b.Run("1KiB-get", func(b *testing.B) {
		var get, rtt time.Duration
		for range b.N {
			t := time.Now()
			if _, err := echoFn.At(c.Node(2).Remote(), c.Node(1).ID()).Call(ctx, small); err != nil {
				b.Fatal(err)
			}
			rtt += time.Since(t)
			t = time.Now()
			if _, err := rd.GetBytes(ctx, "small"); err != nil {
				b.Fatal(err)
			}
			get += time.Since(t)
		}
		b.ReportMetric(float64(get.Microseconds())/float64(b.N), "get-µs")
		b.ReportMetric(float64(rtt.Microseconds())/float64(b.N), "rtt-µs")
	})
	b.Run("1KiB-put", func(b *testing.B) {
		var put, add time.Duration
		for i := range b.N {
			t := time.Now()
			if err := own.PutBytes(ctx, fmt.Sprint("p", i), small); err != nil {
				b.Fatal(err)
			}
			put += time.Since(t)
			t = time.Now()
			if _, err := c.Node(0).Content().Add(ctx, newRandom(1<<10, time.Now().UnixNano()), content.AddOptions{}); err != nil {
				b.Fatal(err)
			}
			add += time.Since(t)
		}
		b.ReportMetric(float64(put.Microseconds())/float64(b.N), "put-µs")
		b.ReportMetric(float64(add.Microseconds())/float64(b.N), "add-µs")
	})
	const big = 16 << 20
	mbps := func(d time.Duration, n int) float64 { return float64(big) * float64(n) / d.Seconds() / 1e6 }
	seed := int64(0) // never the same bytes twice, across the framework's runs too
	b.Run("16MiB", func(b *testing.B) {
		var get, cat, put, add time.Duration
		for range b.N {
			seed++
			k := fmt.Sprint("big", seed)
			t := time.Now()
			if err := own.Put(ctx, k, newRandom(big, seed)); err != nil {
				b.Fatal(err)
			}
			put += time.Since(t)
			t = time.Now()
			root, err := c.Node(1).Content().Add(ctx, newRandom(big, -seed), content.AddOptions{})
			if err != nil {
				b.Fatal(err)
			}
			add += time.Since(t)
			// Each read is of bytes the reader has never seen, so it
			// crosses the network; the two take turns going first.
			readGet := func() {
				t := time.Now()
				v, err := rd.Get(ctx, k)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, v); err != nil || n != big {
					b.Fatalf("get: %d bytes, %v", n, err)
				}
				v.Close()
				get += time.Since(t)
			}
			readCat := func() {
				t := time.Now()
				f, err := c.Node(2).Content().Get(ctx, root.String())
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, f); err != nil || n != big {
					b.Fatalf("cat: %d bytes, %v", n, err)
				}
				f.Close()
				cat += time.Since(t)
			}
			if seed%2 == 0 {
				readGet()
				readCat()
			} else {
				readCat()
				readGet()
			}
		}
		b.ReportMetric(mbps(get, b.N), "get-MB/s")
		b.ReportMetric(mbps(cat, b.N), "cat-MB/s")
		b.ReportMetric(mbps(put, b.N), "put-MB/s")
		b.ReportMetric(mbps(add, b.N), "add-MB/s")
	})
}
