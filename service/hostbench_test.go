package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/wasm"
)

// The host API's speed figures, each beside what a Go program does with
// the library on the same node, measured in the same loop turn about so
// that whatever else the machine does weighs on both alike. The figures
// are custom metrics; bench/capabilities.sh prints them beside their
// goals:
//
//	a 1 KiB space_get, the space local to the runner   ≤ 1.5x space.GetBytes
//	open of a big CID, streamed in 64 KiB reads         ≥ 70% of Content().Get
//	a nested call through the call host function        ≤ 1.5x Service().Call
//	bytes across the network with Near, and without     < 1% and ≥ 100% of the value
//
// The module (internal/wasmtest/testdata/hostbench) is a reactor that
// repeats its host call many times in one run, so the time per call is
// the host call's, not the run's start.

// benchMB is the size of the big figures, in MiB: NUBE_BENCH_MB, or def.
func benchMB(b *testing.B, def int) int {
	if s := os.Getenv("NUBE_BENCH_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("NUBE_BENCH_MB=%q: want a positive number of MiB", s)
		}
		return n
	}
	return def
}

// hostBench is one node on loopback TCP that has published hostbench
// and runs its own calls.
func hostBench(b *testing.B, opts ...nubetest.Option) (*nube.Node, context.Context) {
	c := nubetest.Cluster(b, 1, append(opts, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}))...)
	n := c.Node(0)
	ctx := context.Background()
	_, err := n.Services().Publish(ctx, bytes.NewReader(wasmtest.Guest(b, "hostbench")), service.PublishOptions{Name: "hostbench"})
	if err != nil {
		b.Fatal(err)
	}
	return n, ctx
}

// runJob runs one line of hostbench on p and returns the bytes it says
// it read.
func runJob(b *testing.B, ctx context.Context, p *service.Pipeline, job string) int64 {
	b.Helper()
	out, err := p.Call(ctx, []byte(job+"\n"))
	if err != nil {
		b.Fatalf("%s: %v", job, err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "ok ")
	if !ok {
		b.Fatalf("%s: the module answered %q", job, out)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		b.Fatalf("%s: the module answered %q", job, out)
	}
	return n
}

// hostReads is how many reads or calls one run of hostbench makes.
const hostReads = 2000

// BenchmarkHostGet reads a 1 KiB key of a space whose home is the runner
// hostReads times in one warm run of a module (space_get, read to the end,
// close, through package guest), and as many times with space.GetBytes
// on the same node.
func BenchmarkHostGet(b *testing.B) {
	n, ctx := hostBench(b)
	s, err := n.Spaces().Create(ctx, "bench", space.Policy{Local: true})
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte{'x'}, 1<<10)
	if err := s.PutBytes(ctx, "k", value); err != nil {
		b.Fatal(err)
	}
	p := n.Service("hostbench").On(n.ID()).Allow(service.Allow{Space: s.ID(), Access: service.Read})
	runJob(b, ctx, p, fmt.Sprintf("get %s k 1", s.ID())) // warm: compiled, an instance kept
	// get: guest.Space.Get, a new slice per value; read: Space.Open read
	// into one buffer, which shows the host's share without the module's
	// allocation.
	for _, op := range []string{"get", "read"} {
		b.Run(op, func(b *testing.B) {
			job := fmt.Sprintf("%s %s k %d", op, s.ID(), hostReads)
			var host, lib time.Duration
			for range b.N {
				t := time.Now()
				if got := runJob(b, ctx, p, job); got != hostReads<<10 {
					b.Fatalf("the module read %d bytes, want %d", got, hostReads<<10)
				}
				host += time.Since(t)
				t = time.Now()
				for range hostReads {
					if v, err := s.GetBytes(ctx, "k"); err != nil || len(v) != len(value) {
						b.Fatalf("GetBytes: %d bytes, %v", len(v), err)
					}
				}
				lib += time.Since(t)
			}
			reads := float64(b.N * hostReads)
			b.ReportMetric(float64(host.Nanoseconds())/reads, "host-ns/read")
			b.ReportMetric(float64(lib.Nanoseconds())/reads, "lib-ns/read")
		})
	}
}

// BenchmarkHostOpen streams a CID of NUBE_BENCH_MB MiB (64 by default)
// held by the runner, on disk, from inside a module (open, reads of 64
// KiB into the module's memory) and with Content().Get and io.Copy to
// io.Discard on the same node (which copies nothing: the reader writes
// its blocks to io.Discard as they are).
func BenchmarkHostOpen(b *testing.B) {
	n, ctx := hostBench(b, nubetest.WithDataDirs())
	size := int64(benchMB(b, 64)) << 20
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(data)
	root, err := n.Content().Add(ctx, bytes.NewReader(data), content.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	data = nil
	p := n.Service("hostbench").On(n.ID()).WithLimits(wasm.Limits{Timeout: time.Minute})
	job := "open " + root.String()
	runJob(b, ctx, p, job) // warm: compiled, an instance kept, the blocks read once
	b.ResetTimer()
	var host, lib time.Duration
	b.SetBytes(size)
	for range b.N {
		t := time.Now()
		if got := runJob(b, ctx, p, job); got != size {
			b.Fatalf("the module read %d bytes, want %d", got, size)
		}
		host += time.Since(t)
		t = time.Now()
		f, err := n.Content().Get(ctx, root.String())
		if err != nil {
			b.Fatal(err)
		}
		if got, err := io.Copy(io.Discard, f); err != nil || got != size {
			b.Fatalf("Content().Get: %d bytes, %v", got, err)
		}
		f.Close()
		lib += time.Since(t)
	}
	mibps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / (1 << 20) }
	b.ReportMetric(mibps(host), "host-MiB/s")
	b.ReportMetric(mibps(lib), "lib-MiB/s")
}

// BenchmarkHostCall calls tally, a reactor that echoes its input, from
// inside a module through the call host function, hostReads times in one
// warm run, and as many times with Service("tally").Call on the same node.
func BenchmarkHostCall(b *testing.B) {
	n, ctx := hostBench(b)
	benchPublish(b, n, "tally")
	p := n.Service("hostbench").On(n.ID()).Allow(service.Allow{Call: "tally"})
	in := "sixteen bytes!!"
	runJob(b, ctx, p, "call tally 1 "+in) // warm: both compiled, instances kept
	job := fmt.Sprintf("call tally %d %s", hostReads, in)
	direct := n.Service("tally")
	if _, err := direct.Call(ctx, []byte(in)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var host, lib time.Duration
	for range b.N {
		t := time.Now()
		runJob(b, ctx, p, job)
		host += time.Since(t)
		t = time.Now()
		for range hostReads {
			if _, err := direct.Call(ctx, []byte(in)); err != nil {
				b.Fatal(err)
			}
		}
		lib += time.Since(t)
	}
	calls := float64(b.N * hostReads)
	b.ReportMetric(float64(host.Nanoseconds())/calls, "host-ns/call")
	b.ReportMetric(float64(lib.Nanoseconds())/calls, "lib-ns/call")
}

// BenchmarkHostNear holds a value of NUBE_BENCH_MB MiB (16 by default) on
// B and has A call space-wc on it: with Near (the run lands on B) and On
// C, and counts the bytes the cluster's links carried for each. Every
// iteration writes a fresh value, so no node has it cached.
func BenchmarkHostNear(b *testing.B) {
	size := benchMB(b, 16) << 20
	c := nubetest.Cluster(b, 3, nubetest.WithShaping(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i == 0 // the caller runs nothing itself
	}))
	a, bn, x := c.Node(0), c.Node(1), c.Node(2)
	ctx := context.Background()
	s, err := a.Spaces().Create(ctx, "big", space.Policy{On: []peer.ID{bn.ID()}})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.PutBytes(ctx, "small", []byte("a b")); err != nil {
		b.Fatal(err)
	}
	_, err = a.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(b, "space-wc")), service.PublishOptions{Name: "space-wc", Wants: []string{"space:read"}})
	if err != nil {
		b.Fatal(err)
	}
	wc := a.Service("space-wc").Allow(service.Allow{Space: s.ID(), Access: service.Read}).WithLimits(wasm.Limits{Timeout: time.Minute})
	// The module reaches each runner once: not what is measured here.
	for _, p := range []peer.ID{bn.ID(), x.ID()} {
		if _, err := wc.On(p).Call(ctx, []byte(s.ID()+" small\n")); err != nil {
			b.Fatal(err)
		}
	}
	call := func(p *service.Pipeline, in []byte) (service.Result, int64) {
		before := c.Carried()
		var r service.Result
		for _, y := range p.CallN(ctx, 1, in) {
			r = y
		}
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		return r, c.Carried() - before
	}
	b.ResetTimer()
	var near, far int64
	for i := range b.N {
		key := fmt.Sprint("words", i)
		// Words of random lengths, so that the count checks the whole
		// value was read.
		rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
		v := make([]byte, size)
		for j := range v {
			v[j] = "abcdefg "[rng.IntN(8)]
		}
		if err := s.PutBytes(ctx, key, v); err != nil {
			b.Fatal(err)
		}
		v = nil
		in := []byte(s.ID() + " " + key + "\n")
		rn, dn := call(wc.Near(s.ID()), in)
		if rn.Peer != bn.ID() || !rn.Near {
			b.Fatalf("near ran on %s (near=%v), want B %s", rn.Peer, rn.Near, bn.ID())
		}
		rf, df := call(wc.On(x.ID()), in)
		if string(rn.Output) != string(rf.Output) {
			b.Fatalf("near counted %q words, elsewhere %q", rn.Output, rf.Output)
		}
		near += dn
		far += df
	}
	b.ReportMetric(float64(size), "value-bytes")
	b.ReportMetric(float64(near)/float64(b.N), "near-bytes")
	b.ReportMetric(float64(far)/float64(b.N), "far-bytes")
	b.ReportMetric(100*float64(near)/float64(b.N)/float64(size), "near-%")
	b.ReportMetric(100*float64(far)/float64(b.N)/float64(size), "far-%")
}
