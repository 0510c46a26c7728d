package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// ledgerCluster is five nodes on loopback TCP: 0, 1 and 2 keep the
// ledger; 3 runs services; 4 calls them. 3 and 4 are not ledger nodes.
func ledgerCluster(b testing.TB) *nubetest.C {
	c := nubetest.Cluster(b, 5, nubetest.WithDataDirs(), nubetest.TrustFirst(3), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.ListenAddrs = []string{transports["tcp"]}
	}))
	ctx := context.Background()
	if _, err := c.Node(0).Ledger().Create(ctx, 1_000_000_000, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		b.Fatal(err)
	}
	// 4's user founded nothing: 2's, which spends nothing here, vouches for it.
	if _, err := c.Node(2).Ledger().Vouch(ctx, c.Node(4).UserID(), 1_000_000_000); err != nil {
		b.Fatal(err)
	}
	for _, i := range []int{3, 4} {
		if _, err := c.Node(i).Ledger().Info(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// A payee is a user the ledger knows: pay each node's user once, by
	// the node's ID, so that the runs below pay users as a program would.
	for _, p := range []int{1, 3} {
		if _, err := c.Node(0).Ledger().Send(ctx, c.Node(p).ID(), 1, "hello"); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkLedger measures the ledger beside what it is built on, turn
// about in one loop:
//
//   - transfers: 64 signed transfers at once through a ledger node,
//     every signature checked on every member, against 64 raw writes
//     (Put) to the same group at once;
//   - priced-call: a call of a priced service from a node that keeps no
//     ledger to another that keeps none (reserve, hold, run, receipt,
//     settlement), against the same call of a free service, and against
//     one ledger round trip from that node (a transfer).
func BenchmarkLedger(b *testing.B) {
	c := ledgerCluster(b)
	ctx := context.Background()
	b.Run("transfers", func(b *testing.B) {
		const width = 64
		n := c.Node(0)
		g, err := n.Groups().Open(ctx, "ledger", group.Options{})
		if err != nil {
			b.Fatal(err)
		}
		to := c.Node(1).UserID()
		var txTime, putTime time.Duration
		for i := range b.N {
			t := time.Now()
			at(b, width, func(j int) error {
				_, err := n.Ledger().Send(ctx, to, 1, "")
				return err
			})
			txTime += time.Since(t)
			t = time.Now()
			at(b, width, func(j int) error {
				_, err := g.Put(ctx, fmt.Sprintf("bench/%d/%d", i, j), []byte("x"))
				return err
			})
			putTime += time.Since(t)
		}
		b.ReportMetric(float64(b.N*width)/txTime.Seconds(), "tx/s")
		b.ReportMetric(float64(b.N*width)/putTime.Seconds(), "puts/s")
	})
	b.Run("priced-call", func(b *testing.B) {
		provider, caller := c.Node(3), c.Node(4)
		code := wasmtest.Module(b, "tally") // a reactor: a warm call costs little beside the ledger
		free, err := provider.Services().Publish(ctx, bytes.NewReader(code), service.PublishOptions{Name: "bench-free"})
		if err != nil {
			b.Fatal(err)
		}
		priced, err := provider.Services().Publish(ctx, bytes.NewReader(code), service.PublishOptions{Name: "bench-priced",
			Price: service.Price{PerCall: 1, PerCPUSecond: 1000}})
		if err != nil {
			b.Fatal(err)
		}
		in := []byte("hello")
		call := func(d *service.Descriptor) time.Duration {
			t := time.Now()
			if _, err := caller.Service(d.ID().String()).On(provider.ID()).Call(ctx, in); err != nil {
				b.Fatal(err)
			}
			return time.Since(t)
		}
		call(free) // warm both: modules compiled, descriptors known
		call(priced)
		var freeT, pricedT, rtt time.Duration
		for range b.N {
			freeT += call(free)
			pricedT += call(priced)
			t := time.Now()
			if _, err := caller.Ledger().Send(ctx, provider.UserID(), 1, ""); err != nil {
				b.Fatal(err)
			}
			rtt += time.Since(t)
		}
		b.ReportMetric(float64(freeT.Microseconds())/float64(b.N), "free-µs")
		b.ReportMetric(float64(pricedT.Microseconds())/float64(b.N), "priced-µs")
		b.ReportMetric(float64(rtt.Microseconds())/float64(b.N), "ledger-rtt-µs")
	})
}

// at runs f for 0..n-1 at once and fails b on the first error.
func at(b *testing.B, n int, f func(int) error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for j := range n {
		wg.Go(func() { errs[j] = f(j) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}
