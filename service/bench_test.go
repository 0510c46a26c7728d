package service_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// The speed goal: a warm call of a trivial module within 3x of a remote
// call of the same native Go function (remote's BenchmarkCallRTT/tcp).
// bench/service.sh prints them side by side.

func benchPublish(b *testing.B, n *nube.Node, module string) {
	b.Helper()
	_, err := n.Services().Publish(context.Background(), bytes.NewReader(wasmtest.Module(b, module)), service.PublishOptions{Name: module})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWarmCall calls a trivial module (16 bytes in and out) on a
// peer that has it compiled: a reactor (instance kept per caller) and a
// command (a fresh instance per call, so a Go runtime starting each time).
func BenchmarkWarmCall(b *testing.B) {
	c := nubetest.Cluster(b, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}))
	caller, callee := c.Node(0), c.Node(1)
	in := []byte("sixteen bytes!!\n")
	for kind, module := range map[string]string{"reactor": "tally", "command": "echo"} {
		benchPublish(b, callee, module)
		b.Run(kind, func(b *testing.B) {
			p := caller.Service(module).On(callee.ID())
			ctx := context.Background()
			if _, err := p.Call(ctx, in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Call(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdCall calls a trivial module on a node that has never seen
// it: each call goes to a fresh node, which fetches the 2 MB module from
// the publisher, checks its CID, compiles it and runs it. Starting and
// stopping the fresh node is not timed.
func BenchmarkColdCall(b *testing.B) {
	c := nubetest.Cluster(b, 1, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	}))
	pub := c.Node(0)
	benchPublish(b, pub, "echo")
	ctx := context.Background()
	in := []byte("sixteen bytes!!\n")
	for b.Loop() {
		b.StopTimer()
		cfg := nubetest.TestConfig()
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		fresh, err := nube.Start(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fresh.Connect(ctx, pub.Addrs()[0].String()); err != nil {
			b.Fatal(err)
		}
		p := pub.Service("echo").On(fresh.ID())
		b.StartTimer()
		r, err := p.Any(ctx, in)
		b.StopTimer()
		if err != nil || !r.Cold {
			b.Fatalf("cold call: cold=%v, %v", r.Cold, err)
		}
		fresh.Close()
		b.StartTimer()
	}
}

// burnRounds makes one run of the burn module take tens of milliseconds.
const burnRounds = "20000"

// BenchmarkCallN runs a CPU-bound module on 1 and on 4 nodes at once
// (five nodes in this process, the caller computing nothing) and reports
// results per second.
func BenchmarkCallN(b *testing.B) {
	c := nubetest.Cluster(b, 5, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.NoCompute = i == 0
	}))
	caller := c.Node(0)
	benchPublish(b, c.Node(1), "burn")
	ctx := context.Background()
	p := caller.Service("burn").On(c.IDs()[1:]...)
	// Every node compiles the module before the clock starts.
	for _, r := range p.CallN(ctx, 4, []byte(burnRounds)) {
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	for _, n := range []int{1, 4} {
		b.Run(map[int]string{1: "n=1", 4: "n=4"}[n], func(b *testing.B) {
			results := 0
			var cpu time.Duration
			start := time.Now()
			for b.Loop() {
				for _, r := range p.CallN(ctx, n, []byte(burnRounds)) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
					results++
					cpu += r.Usage.CPU
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(results)/elapsed.Seconds(), "results/s")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(results), "cpu-ms/result")
		})
	}
}
