package job_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// TestBudgetSpent: a job of priced runs whose budget covers two of its
// tasks stops with ErrBudget; it paid no more than its budget, no reserve
// is left held, and the ledger's balances and escrow sum to zero.
func TestBudgetSpent(t *testing.T) {
	const limit = 50_000
	c := nubetest.Cluster(t, 4, nubetest.TrustFirst(3), nubetest.WithConfig(func(_ int, c *nube.Config) {
		c.GroupHeartbeat = 200 * time.Millisecond
		c.LedgerTick = 100 * time.Millisecond
	}))
	ctx := nubetest.Context(t, 4*time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Ledger().Create(ctx, limit, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatal(err)
	}
	coord := c.Node(3)
	if _, err := c.Node(2).Ledger().Vouch(ctx, coord.UserID(), limit); err != nil {
		t.Fatal(err)
	}
	price := service.Price{PerCall: 1000}
	publish(t, ctx, c.Node(0), price, "wordcount-map", "wordcount-reduce")
	files := corpus(6, 8, 10)
	in := spread(t, ctx, c, 3, files, around(3))
	const budget = 2500 // two runs' most, not three
	j, err := coord.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce",
		Budget: budget, Nodes: c.IDs()[:3], NoBackup: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(ctx)
	if !errors.Is(err, job.ErrBudget) {
		t.Fatalf("job past its budget: %v; want ErrBudget\n%s", err, logText(j))
	}
	p := j.Progress()
	if p.Spent > budget || p.Spent == 0 || p.Running != 0 || p.Reserved != 0 {
		t.Fatalf("progress: %+v; want some spent, at most %d, nothing running or reserved", p, budget)
	}
	t.Logf("stopped with %d of %d millicredits spent: %v", p.Spent, budget, err)
	// The ledger: the coordinator's user paid what the job counted, no
	// more; no reserve is left; everything sums to zero.
	var in0 ledger.Info
	nubetest.Eventually(t, ctx, func() bool {
		var err error
		in0, err = c.Node(0).Ledger().LocalInfo(ctx)
		if err == nil && in0.Sum != 0 {
			t.Fatalf("the ledger's balances and escrow sum to %d", in0.Sum)
		}
		a, aerr := c.Node(0).Ledger().Account(ctx, coord.UserID())
		return err == nil && aerr == nil && in0.Escrow == 0 && in0.Reserves == 0 && -a.Balance == p.Spent
	}, func() string {
		a, _ := c.Node(0).Ledger().Account(ctx, coord.UserID())
		return fmt.Sprintf("ledger %+v; the coordinator's user's balance %d, the job spent %d", in0, a.Balance, p.Spent)
	})
}
