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
func spaceCluster(b *testing.B) (*nubetest.C, *space.Space, *space.Space) {
	c := nubetest.Cluster(b, 3, nubetest.WithDataDirs(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{transports["tcp"]}
	}))
	ctx := context.Background()
	own, err := c.Node(0).CreateSpace(ctx, "bench", space.Policy{On: []peer.ID{c.Node(1).ID()}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := own.Grant(ctx, c.Node(2).UserID(), space.Read, time.Time{}); err != nil {
		b.Fatal(err)
	}
	rd, err := c.Node(2).Space(ctx, c.Node(0).UserID(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return c, own, rd
}

// BenchmarkSpace measures a space's puts and gets on a remote holder
// beside what they are built on: a bare remote call round trip, and a
// bare content add and fetch of the same bytes. bench/space.sh prints
// them side by side.
func BenchmarkSpace(b *testing.B) {
	c, own, rd := spaceCluster(b)
	ctx := context.Background()
	small := bytes.Repeat([]byte{1}, 1<<10)
	b.Run("call-rtt", func(b *testing.B) {
		for range b.N {
			if _, err := echoFn.At(c.Node(2).Remote(), c.Node(1).ID()).Call(ctx, small); err != nil {
				b.Fatal(err)
			}
		}
	})
	if err := own.PutBytes(ctx, "small", small); err != nil {
		b.Fatal(err)
	}
	b.Run("get-1KiB", func(b *testing.B) {
		b.SetBytes(1 << 10)
		for range b.N {
			if _, err := rd.GetBytes(ctx, "small"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put-1KiB", func(b *testing.B) {
		b.SetBytes(1 << 10)
		for i := range b.N {
			if err := own.PutBytes(ctx, fmt.Sprint("p", i), small); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("add-1KiB", func(b *testing.B) {
		b.SetBytes(1 << 10)
		for i := range b.N {
			if _, err := c.Node(0).Content().Add(ctx, newRandom(1<<10, int64(i)), content.AddOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	const big = 16 << 20
	b.Run("put-16MiB", func(b *testing.B) {
		b.SetBytes(big)
		for i := range b.N {
			if err := own.Put(ctx, fmt.Sprint("big", i), newRandom(big, int64(i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("add-16MiB", func(b *testing.B) {
		b.SetBytes(big)
		for i := range b.N {
			if _, err := c.Node(0).Content().Add(ctx, newRandom(big, int64(1000+i)), content.AddOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Each get reads a value the reader has never seen, so it crosses the
	// network; the value is written (untimed) first.
	b.Run("get-16MiB", func(b *testing.B) {
		b.SetBytes(big)
		for i := range b.N {
			b.StopTimer()
			k := fmt.Sprint("get", i)
			if err := own.Put(ctx, k, newRandom(big, int64(2000+i))); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			v, err := rd.Get(ctx, k)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, v); err != nil || n != big {
				b.Fatalf("read %d bytes: %v", n, err)
			}
			v.Close()
		}
	})
	b.Run("cat-16MiB", func(b *testing.B) {
		b.SetBytes(big)
		for i := range b.N {
			b.StopTimer()
			root, err := c.Node(1).Content().Add(ctx, newRandom(big, int64(3000+i)), content.AddOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			f, err := c.Node(2).Content().Get(ctx, root.String())
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, f); err != nil || n != big {
				b.Fatalf("read %d bytes: %v", n, err)
			}
			f.Close()
		}
	})
}
