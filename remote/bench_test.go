package remote_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
)

// The speed goals: a call's round trip within 1.5x of the raw libp2p
// baseline (a new stream, one byte each way), and many concurrent calls
// at least 70% of the raw baseline's rate at the same concurrency. Each
// benchmark runs over TCP and over QUIC, on two nodes in this process.

const echoProtocol = "/nube-bench/echo/1"

// parallelism is how many goroutines per CPU the parallel benchmarks run.
const parallelism = 16

var transports = map[string]string{
	"tcp":  "/ip4/127.0.0.1/tcp/0",
	"quic": "/ip4/127.0.0.1/udp/0/quic-v1",
}

// pair starts two nodes that speak one transport, with an echo handler on
// the second for the raw baseline.
func pair(b *testing.B, listen string) (from *nube.Node, to peer.ID) {
	c := nubetest.Cluster(b, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{listen}
	}))
	c.Node(1).Sys().Host().SetStreamHandler(echoProtocol, func(s network.Stream) {
		var buf [1]byte
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			_ = s.Reset()
			return
		}
		_, _ = s.Write(buf[:])
		_ = s.Close()
	})
	return c.Node(0), c.Node(1).ID()
}

func rawRTT(ctx context.Context, n *nube.Node, p peer.ID) error {
	s, err := n.Sys().Host().NewStream(ctx, p, echoProtocol)
	if err != nil {
		return err
	}
	buf := []byte{42}
	if _, err := s.Write(buf); err != nil {
		_ = s.Reset()
		return err
	}
	if _, err := io.ReadFull(s, buf); err != nil {
		_ = s.Reset()
		return err
	}
	_ = s.Close() // over QUIC, an error once the echo side has closed
	return nil
}

func forTransports(b *testing.B, f func(b *testing.B, n *nube.Node, p peer.ID)) {
	for _, name := range []string{"tcp", "quic"} {
		b.Run(name, func(b *testing.B) {
			n, p := pair(b, transports[name])
			b.ResetTimer()
			f(b, n, p)
		})
	}
}

// BenchmarkRawStreamRTT is the baseline: open a new stream, write one
// byte, read the echo, close.
func BenchmarkRawStreamRTT(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		ctx := context.Background()
		for b.Loop() {
			if err := rawRTT(ctx, n, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCallRTT is one remote call of a function that takes and returns
// a short string.
func BenchmarkCallRTT(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := upper.At(n, p).Call(ctx, "hello"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCallRTTDeadline is BenchmarkCallRTT with a deadline on every
// call, as careful callers set, so that the time left crosses the wire.
func BenchmarkCallRTTDeadline(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := upper.At(n, p).Call(ctx, "hello")
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// parallel runs one round trip from many goroutines at once (16 per
// CPU) and reports the rate under unit.
func parallel(b *testing.B, unit string, roundTrip func(context.Context) error) {
	ctx := context.Background()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := roundTrip(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// BenchmarkRawStreamParallel is the baseline of BenchmarkCallParallel:
// raw echo round trips from many goroutines at once.
func BenchmarkRawStreamParallel(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		parallel(b, "rtt/s", func(ctx context.Context) error { return rawRTT(ctx, n, p) })
	})
}

// BenchmarkCallParallel is many concurrent small calls from one node to
// another, reported in calls per second.
func BenchmarkCallParallel(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		parallel(b, "calls/s", func(ctx context.Context) error {
			_, err := upper.At(n, p).Call(ctx, "hello")
			return err
		})
	})
}

// BenchmarkStreamCallRTT is a streaming call that yields one result: the
// path of calls with a stream of their own (streams, and inputs over 64
// KiB), for comparison with the lane that small plain calls take.
func BenchmarkStreamCallRTT(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		ctx := context.Background()
		for b.Loop() {
			for _, err := range count.At(n, p).Call(ctx, countIn{N: 1}) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkStreamItems streams small results (about 100 bytes each) to a
// caller that takes them as fast as it can, reported in items per second.
func BenchmarkStreamItems(b *testing.B) {
	forTransports(b, func(b *testing.B, n *nube.Node, p peer.ID) {
		got := 0
		for _, err := range count.At(n, p).Call(context.Background(), countIn{N: b.N, Pad: 100}) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != b.N {
			b.Fatalf("got %d items, want %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	})
}
