package bench

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nubetest"
)

const (
	rawEcho    protocol.ID = "/nube-bench/raw-echo/1"
	rawSink    protocol.ID = "/nube-bench/raw-sink/1"
	framedEcho protocol.ID = "/nube-bench/framed-echo/1"
	msgSize                = 64 // bytes of payload per round trip
)

var transports = map[string]string{
	"tcp":  "/ip4/127.0.0.1/tcp/0",
	"quic": "/ip4/127.0.0.1/udp/0/quic-v1",
}

// pair starts two connected nodes that speak only the given transport, with
// the benchmark protocols on the second.
func pair(b *testing.B, transport string) (a, srv *nube.Node) {
	c := nubetest.Cluster(b, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{transports[transport]}
	}))
	a, srv = c.Node(0), c.Node(1)
	h := srv.Sys().Host()
	// Raw echo: copy every byte back.
	h.SetStreamHandler(rawEcho, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	// Raw sink: read everything, then answer one byte.
	h.SetStreamHandler(rawSink, func(s network.Stream) {
		defer s.Close()
		io.Copy(io.Discard, s)
		s.Write([]byte{1})
	})
	// Framed echo: the same round trip through wire frames (CBOR).
	h.SetStreamHandler(framedEcho, func(s network.Stream) {
		defer s.Close()
		ws := wire.NewStream(s)
		ctx := context.Background()
		for {
			var m []byte
			if err := ws.Recv(ctx, &m); err != nil {
				return
			}
			if err := ws.Send(ctx, m); err != nil {
				return
			}
		}
	})
	return a, srv
}

func forEachTransport(b *testing.B, f func(b *testing.B, a, srv *nube.Node)) {
	for _, tr := range []string{"tcp", "quic"} {
		b.Run(tr, func(b *testing.B) {
			a, srv := pair(b, tr)
			f(b, a, srv)
		})
	}
}

// BenchmarkRawStreamRTT is the baseline round trip: 64 bytes there and back
// on an open go-libp2p stream.
func BenchmarkRawStreamRTT(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		s, err := a.Sys().Host().NewStream(context.Background(), srv.ID(), rawEcho)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		buf := make([]byte, msgSize)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(s, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFramedRTT is nube's framed-message round trip: the same 64 bytes
// as a CBOR value in a wire frame, sent and received through wire.Stream
// (deadlines, size cap, encoding and decoding included). Goal: under 10%
// over BenchmarkRawStreamRTT.
func BenchmarkFramedRTT(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		s, err := a.Sys().Host().NewStream(context.Background(), srv.ID(), framedEcho)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ws := wire.NewStream(s)
		ctx := context.Background()
		msg := make([]byte, msgSize)
		var got []byte
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := ws.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if err := ws.Recv(ctx, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawNewStreamRTT is the baseline for a call that opens a stream
// each time: open, one 64-byte round trip, close.
func BenchmarkRawNewStreamRTT(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		buf := make([]byte, msgSize)
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s, err := a.Sys().Host().NewStream(ctx, srv.ID(), rawEcho)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(s, buf); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

// BenchmarkPing is nube's ping (the node API, libp2p's ping protocol on a
// new stream each call: 32 bytes there and back).
func BenchmarkPing(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := a.Ping(ctx, srv.ID()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRawStreamThroughput is the raw go-libp2p stream's one-way
// throughput: 1 MiB writes into a sink, reported as MB/s.
func BenchmarkRawStreamThroughput(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		s, err := a.Sys().Host().NewStream(context.Background(), srv.ID(), rawSink)
		if err != nil {
			b.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		b.SetBytes(int64(len(chunk)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		s.CloseWrite()
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil { // everything arrived
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
	})
}

// BenchmarkFramedVsRaw measures the framed and the raw round trip in the
// same loop, alternating blocks of 50 on two streams of the same
// connection, so that a noisy moment on a shared machine hits both alike.
// It reports both (µs per round trip) and framed/raw; the goal is a ratio
// under 1.10.
func BenchmarkFramedVsRaw(b *testing.B) {
	forEachTransport(b, func(b *testing.B, a, srv *nube.Node) {
		ctx := context.Background()
		raw, err := a.Sys().Host().NewStream(ctx, srv.ID(), rawEcho)
		if err != nil {
			b.Fatal(err)
		}
		defer raw.Close()
		fs, err := a.Sys().Host().NewStream(ctx, srv.ID(), framedEcho)
		if err != nil {
			b.Fatal(err)
		}
		defer fs.Close()
		framed := wire.NewStream(fs)
		buf := make([]byte, msgSize)
		var got []byte
		const block = 50
		var rawT, framedT time.Duration
		n := 0
		b.ResetTimer()
		for n < b.N {
			t0 := time.Now()
			for i := 0; i < block; i++ {
				if _, err := raw.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(raw, buf); err != nil {
					b.Fatal(err)
				}
			}
			t1 := time.Now()
			for i := 0; i < block; i++ {
				if err := framed.Send(ctx, buf); err != nil {
					b.Fatal(err)
				}
				if err := framed.Recv(ctx, &got); err != nil {
					b.Fatal(err)
				}
			}
			rawT += t1.Sub(t0)
			framedT += time.Since(t1)
			n += block
		}
		b.StopTimer()
		b.ReportMetric(float64(rawT.Microseconds())/float64(n), "raw-µs/rtt")
		b.ReportMetric(float64(framedT.Microseconds())/float64(n), "framed-µs/rtt")
		b.ReportMetric(float64(framedT)/float64(rawT), "framed/raw")
	})
}
