package ledger_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
)

// TestStrangersExhaustConfirmations: a confirmation of a question no entry
// answers costs its member a Sync (a log write through the leader) after
// the 250 ms grace. Bare libp2p hosts (peer IDs anyone makes for free),
// each keeping 16 made-up confirmations under way at every member (the
// door's per-peer rate, 500 a second, never bites: each call lasts 250 ms
// and more), make the followers forward Sync after Sync to the leader, and
// the leader runs only 16 calls at once per peer: the follower's own
// writes, the opRead of an honest node's question among them, are refused
// ("too many calls under way"). The resource manager took 186 of the 816
// connections tried (62 per member); the 4096 awaiting slots never filled,
// the pipe from follower to leader did. The node's failure is reported as
// ErrImpostor ("not the ledger this node knows"), which submitUntil takes
// for a refusal, not for an unreachable ledger. Timing-dependent at the
// threshold: 40 hosts did not deny service here, 272 (62 connected) did.
func TestStrangersExhaustConfirmations(t *testing.T) {
	if testing.Short() {
		t.Skip("short: 272 hosts flood the ledger")
	}
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 3*time.Minute)
	node := c.Node(3)
	if _, err := node.Ledger().Account(ctx, ""); err != nil {
		t.Fatalf("before the flood: %v", err)
	}
	g, err := c.Node(0).Groups().Open(ctx, ledger.GroupName, group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	status := func() uint64 {
		st, err := g.Status(ctx)
		if err != nil {
			return 0
		}
		return st.Writes
	}
	w0 := status()
	flood, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	const hosts, each = 272, 16
	conns := 0
	for range hosts {
		h, ep := bare(t, ctx)
		for i := range 3 {
			if h.Connect(ctx, c.Node(i).Sys().AddrInfo()) != nil {
				continue
			}
			conns++
			for range each {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for flood.Err() == nil {
						h := make([]byte, 32)
						rand.Read(h)
						impConfirm.At(ep, c.Node(i).ID()).Call(flood, map[int]any{1: "account", 2: h})
					}
				}()
			}
		}
	}
	t.Logf("%d of %d stranger connections to the members taken", conns, 3*hosts)
	// Wait till the made-up confirmations cost their Syncs: the flood is
	// on.
	nubetest.Eventually(t, ctx, func() bool { return status() > w0+200 },
		func() string { return "the strangers' confirmations never made a member write" })
	t.Logf("the flood made %d writes so far", status()-w0)
	var errs []string
	for range 3 {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := node.Ledger().Account(actx, "")
		cancel()
		if err == nil {
			return
		}
		errs = append(errs, err.Error())
	}
	t.Fatalf("while strangers flood nube.ledger.confirm, the node cannot read its own account:\n%s", strings.Join(errs, "\n"))
}
