package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

const limit = 50_000 // 50 credits

func fast(_ int, c *nube.Config) {
	c.GroupHeartbeat = 200 * time.Millisecond
	c.LedgerTick = 100 * time.Millisecond
}

// ledgerCluster starts n nodes and makes the first three a ledger; their
// users found it, with limit each, and each other user is vouched for
// with limit by one of them (the last first: node 0 keeps its credit).
// Every node trusts the users of the three (an option may trust more).
func ledgerCluster(t *testing.T, n int, opts ...nubetest.Option) *nubetest.C {
	t.Helper()
	c := nubetest.Cluster(t, n, append([]nubetest.Option{nubetest.TrustFirst(3), nubetest.WithConfig(fast)}, opts...)...)
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	in, err := c.Node(0).Ledger().Create(ctx, limit, c.Node(1).ID(), c.Node(2).ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Nodes) != 3 || in.Limit != limit || in.Sum != 0 || len(in.Founders) != 3 {
		t.Fatalf("new ledger: %+v", in)
	}
	vouched := map[peer.ID]bool{}
	for i := 3; i < n; i++ {
		if u := c.Node(i).UserID(); !vouched[u] {
			if _, err := c.Node(2-len(vouched)%3).Ledger().Vouch(ctx, u, limit); err != nil {
				t.Fatal(err)
			}
			vouched[u] = true
		}
	}
	return c
}

// balanced checks every ledger node's own copy: the balances and escrow
// sum to zero whenever it is looked at, and once the node has caught up
// with the leader no reserve is left open.
func balanced(t *testing.T, ctx context.Context, c *nubetest.C) {
	t.Helper()
	lead, err := c.Node(0).Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		var in ledger.Info
		nubetest.Eventually(t, ctx, func() bool {
			var err error
			in, err = c.Node(i).Ledger().LocalInfo(ctx)
			if err == nil && in.Sum != 0 {
				t.Fatalf("ledger node %d: balances and escrow sum to %d", i, in.Sum)
			}
			return err == nil && in.Seq >= lead.Seq && in.Escrow == 0 && in.Reserves == 0
		}, func() string { return fmt.Sprintf("ledger node %d: %+v (leader at %d)", i, in, lead.Seq) })
	}
}

func balance(t *testing.T, ctx context.Context, n *nube.Node, u peer.ID) int64 {
	t.Helper()
	a, err := n.Ledger().Account(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

// untickedLedger keeps the leader from writing ticks during a test that
// counts the log's writes: a tick is a write the ledger makes when its
// clock says something is due, which such a test would take for one it
// caused.
var untickedLedger = nubetest.WithConfig(func(i int, c *nube.Config) {
	fast(i, c)
	c.LedgerTick = time.Hour
})

// writes counts the writes ledger node i of c has applied, once it has
// applied every entry the ledger had committed when the call began: an
// entry committed by a majority that did not include node i yet (the
// Sync of a read, say) is counted now, not taken later for a new one.
func writes(t *testing.T, ctx context.Context, c *nubetest.C, i int) uint64 {
	t.Helper()
	open := func(n *nube.Node) *group.Group {
		g, err := n.Groups().Open(ctx, ledger.GroupName, group.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := open(c.Node(i))
	var commit uint64
	nubetest.Eventually(t, ctx, func() bool {
		lead := g.Leader()
		for j := range 3 {
			if n := c.Node(j); n != nil && n.ID() == lead {
				st, err := open(n).Status(ctx)
				commit = st.Commit
				return err == nil && st.State == "leader"
			}
		}
		return false
	}, func() string { return "the ledger has no leader" })
	var w uint64
	nubetest.Eventually(t, ctx, func() bool {
		st, err := g.Status(ctx)
		w = st.Writes
		return err == nil && st.Applied >= commit && st.Applied == st.LastIndex
	}, func() string {
		return fmt.Sprintf("ledger node %d never applied the ledger's entries up to %d", i, commit)
	})
	return w
}

// oneUser makes n data dirs that hold one user key: the nodes started on
// them are one user's.
func oneUser(t *testing.T, n int) []string {
	key := identity.Generate()
	var dirs []string
	for range n {
		d := t.TempDir()
		if err := identity.Save(filepath.Join(d, nube.UserKeyFile), key); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// TestTransfersAcrossNodes: nodes that are not ledger nodes find the
// ledger on the DHT and pay; two nodes of one user spending the same
// credit at once: exactly one wins.
func TestTransfersAcrossNodes(t *testing.T) {
	dirs := oneUser(t, 2)
	c := ledgerCluster(t, 5, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fast(i, cfg)
		if i >= 3 {
			cfg.DataDir = dirs[i-3]
		}
	}))
	ctx := nubetest.Context(t, 2*time.Minute)
	a, b := c.Node(3), c.Node(4) // one user, two nodes
	if a.UserID() != b.UserID() {
		t.Fatal("the two nodes do not share a user")
	}
	to := c.Node(0).UserID()
	if _, err := a.Ledger().Send(ctx, c.Node(0).ID(), 10_000, "first"); err != nil { // paid to the node's user
		t.Fatal(err)
	}
	// Both nodes of the user spend the 40 credits left at once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []*nube.Node{a, b} {
		wg.Go(func() { _, errs[i] = n.Ledger().Send(ctx, c.Node(1).ID(), 40_000, "all of it") })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ledger.ErrInsufficient):
			t.Fatalf("the losing spend failed with %v, want ErrInsufficient", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of two concurrent spends of the same credit succeeded: %v", ok, errs)
	}
	if got := balance(t, ctx, b, a.UserID()); got != -limit {
		t.Fatalf("the spending user has %d, want %d", got, -limit)
	}
	if got := balance(t, ctx, a, to); got != 10_000 {
		t.Fatalf("the payee has %d", got)
	}
	acct, err := a.Ledger().Account(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(acct.History) != 3 || acct.History[0].Kind != "vouch" || acct.History[1].Memo != "first" || acct.Available != 0 {
		t.Fatalf("history: %+v", acct)
	}
	balanced(t, ctx, c)
}

func publish(t *testing.T, n *nube.Node, name string, price service.Price) *service.Descriptor {
	t.Helper()
	d, err := n.Services().Publish(nubetest.Context(t, time.Minute), bytes.NewReader(wasmtest.Module(t, "upper")),
		service.PublishOptions{Name: name, Version: "1.0.0", Price: price})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPricedCall: a priced run is reserved, metered, receipted, settled
// once; the caller learns its cost and the provider what it earned.
func TestPricedCall(t *testing.T) {
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 6*time.Minute)
	caller, provider := c.Node(3), c.Node(2)
	price := service.Price{PerCall: 5, PerCPUSecond: 2_000}
	d := publish(t, provider, "shout-priced", price)

	var res service.Result
	for _, r := range caller.Service(d.ID().String()).On(provider.ID()).CallN(ctx, 1, []byte("pay me")) {
		res = r
	}
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if string(res.Output) != "PAY ME" {
		t.Fatalf("output %q", res.Output)
	}
	want := price.Cost(res.Usage.CPU)
	if res.Cost != want || want < int64(price.PerCall) {
		t.Fatalf("the call cost %d, its usage (%v of CPU) costs %d", res.Cost, res.Usage.CPU, want)
	}
	runs := provider.Services().Runs()
	if len(runs) == 0 || runs[len(runs)-1].Earned != want {
		t.Fatalf("the provider's run record: %+v", runs)
	}
	calls := caller.Services().Calls()
	if calls[len(calls)-1].Cost != want {
		t.Fatalf("the caller's call record: %+v", calls[len(calls)-1])
	}
	nubetest.Eventually(t, ctx, func() bool {
		return balance(t, ctx, caller, caller.UserID()) == -want && balance(t, ctx, caller, provider.UserID()) == want
	}, func() string {
		ctx := nubetest.Context(t, 30*time.Second) // the test's has ended
		return fmt.Sprintf("balances %d and %d, want %d each way", balance(t, ctx, caller, caller.UserID()), balance(t, ctx, caller, provider.UserID()), want)
	})
	balanced(t, ctx, c)

	// A call whose most possible cost passes the caller's limit fails
	// and moves nothing. The provider ran it while the ledger answered
	// (this payer's reserves had held), but gives no output and earns
	// nothing; the payer's next call waits for the ledger and never runs.
	dear := publish(t, provider, "dear", service.Price{PerCall: limit + 1})
	for try := range 2 {
		runsBefore := len(provider.Services().Runs())
		out, err := caller.Service(dear.ID().String()).On(provider.ID()).Call(ctx, []byte("x"))
		if !errors.Is(err, service.ErrPayment) || !errors.Is(err, ledger.ErrInsufficient) && !strings.Contains(err.Error(), "over the credit limit") || out != nil {
			t.Fatalf("call %d past the limit: %q, %v; want ErrPayment over the limit and no output", try, out, err)
		}
		runs := provider.Services().Runs()
		switch {
		case try == 0 && (len(runs) != runsBefore+1 || runs[len(runs)-1].Earned != 0 || runs[len(runs)-1].Error == ""):
			t.Fatalf("the unpaid run's record: %+v", runs[len(runs)-1])
		case try == 1 && len(runs) != runsBefore:
			t.Fatal("a payer whose reserve failed had its next call run before the ledger answered")
		}
		if got := balance(t, ctx, caller, caller.UserID()); got != -want {
			t.Fatalf("a refused call moved the balance to %d", got)
		}
	}
	balanced(t, ctx, c)
}

// TestDefaultOffer: a fresh node serves its own user's nodes, not
// strangers'; a node told to trust a user serves it.
func TestDefaultOffer(t *testing.T) {
	dirs := oneUser(t, 2)
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.Offer = nube.Offer{} // the default
		if i < 2 {
			cfg.DataDir = dirs[i]
		}
	}))
	ctx := nubetest.Context(t, 6*time.Minute)
	provider, mine, stranger := c.Node(0), c.Node(1), c.Node(2)
	d := publish(t, provider, "upper-own", service.Price{})
	if _, err := mine.Service(d.ID().String()).On(provider.ID()).Call(ctx, []byte("a")); err != nil {
		t.Fatalf("the user's own node: %v", err)
	}
	_, err := stranger.Service(d.ID().String()).On(provider.ID()).Call(ctx, []byte("a"))
	if !errors.Is(err, service.ErrNotOffered) {
		t.Fatalf("a stranger's node: %v, want ErrNotOffered", err)
	}
	// Nor can a stranger make the node a ledger node.
	if _, err := stranger.Ledger().Create(ctx, 0, provider.ID()); !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("a stranger making the node a ledger node: %v", err)
	}
}

// TestStoragePaid: the holder of another user's space is challenged for a
// random block and paid for each period; once it has lost the data it
// fails the challenge, is paid no more, and repair moves the copy.
func TestStoragePaid(t *testing.T) {
	c := ledgerCluster(t, 4, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fast(i, cfg)
		cfg.SpacePayInterval = 300 * time.Millisecond
		cfg.SpaceRepairInterval = 100 * time.Millisecond
		cfg.Offer.StoragePrice = 1_000_000 // 1000 credits per GiB-day: a small space earns something
		cfg.Offer.MaxStoragePrice = 1_000_000
	}))
	ctx := nubetest.Context(t, 2*time.Minute)
	owner := c.Node(0)
	sp, err := owner.Spaces().Create(ctx, "paid", space.Policy{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "big", bytes.Repeat([]byte("x"), 256<<10)); err != nil {
		t.Fatal(err)
	}
	info, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Holders) != 1 {
		t.Fatalf("holders: %+v", info.Holders)
	}
	var holder *nube.Node
	for _, n := range c.Nodes() {
		if n.ID() == info.Holders[0].Peer {
			holder = n
		}
	}
	// Paid at least twice: the period after the first is its own. (Its
	// history may also hold a trust line: ledgerCluster's.)
	paid := func(h []ledger.Entry) []ledger.Entry {
		return slices.DeleteFunc(slices.Clone(h), func(e ledger.Entry) bool { return e.Kind == "vouch" })
	}
	nubetest.Eventually(t, ctx, func() bool {
		a, err := owner.Ledger().Account(ctx, holder.UserID())
		return err == nil && len(paid(a.History)) >= 2 && a.Balance > 0
	}, func() string { return "the holder was never paid twice" })
	a, err := owner.Ledger().Account(ctx, holder.UserID())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range paid(a.History) {
		if e.Kind != "storage" || e.Peer != owner.UserID() || e.Amount <= 0 {
			t.Fatalf("holder's history: %+v", a.History)
		}
	}
	if got := balance(t, ctx, owner, owner.UserID()); got != -a.Balance {
		t.Fatalf("the owner paid %d, the holder got %d", -got, a.Balance)
	}

	// The holder loses the data behind the owner's back.
	pins, err := holder.Content().Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if err := holder.Content().Unpin(ctx, p.CID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := holder.Content().GC(ctx); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		info, err := sp.Info(ctx)
		return err == nil && len(info.Holders) == 1 && info.Holders[0].Peer != holder.ID()
	}, func() string { return "repair never moved the copy off the holder that lost it" })
	// Paid no more once it failed: its balance stays where it was then.
	paidThen := balance(t, ctx, owner, holder.UserID())
	for range 3 {
		if got, err := sp.GetBytes(ctx, "big"); err != nil || len(got) != 256<<10 {
			t.Fatalf("read after the move: %v", err)
		}
	}
	if got := balance(t, ctx, owner, holder.UserID()); got != paidThen {
		t.Fatalf("the failed holder was paid on: %d, then %d", paidThen, got)
	}
	balanced(t, ctx, c)
}

// TestReserveExpires: a reserve that nobody settles (its job never
// finished) goes back to its payer once it expires, on every ledger node.
func TestReserveExpires(t *testing.T) {
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, time.Minute)
	payer := c.Node(3)
	st, err := ledger.Sign(payer.Sys().UserKey(), ledger.Tx{Kind: ledger.Reserve, From: payer.UserID(),
		Provider: c.Node(1).ID(), Amount: 7_000, Price: service.Price{PerCall: 7_000}, Expires: time.Now().Add(300 * time.Millisecond).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payer.Ledger().Submit(ctx, st); err != nil {
		t.Fatal(err)
	}
	a, err := payer.Ledger().Account(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Reserved != 7_000 || a.Balance != -7_000 {
		t.Fatalf("after the reserve: %+v", a)
	}
	// A second submission of the same reserve is a replay.
	if _, err := payer.Ledger().Submit(ctx, st); !errors.Is(err, ledger.ErrReplay) {
		t.Fatalf("the same reserve again: %v", err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		a, err = payer.Ledger().Account(ctx, "")
		return err == nil && a.Balance == 0 && a.Reserved == 0
	}, func() string { return fmt.Sprintf("the reserve never came back: %+v", a) })
	if last := a.History[len(a.History)-1]; last.Kind != "expire" || last.Amount != 7_000 {
		t.Fatalf("the last entry: %+v", last)
	}
	balanced(t, ctx, c)
}

// TestForgedEntryInLog: a ledger node that puts a forged transfer straight
// into the log, past its own checks, moves nothing: every member checks
// the signatures itself as it applies.
func TestForgedEntryInLog(t *testing.T) {
	c := ledgerCluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	victim, thief := c.Node(1), c.Node(2)
	forged, err := ledger.Sign(thief.Sys().UserKey(), ledger.Tx{Kind: ledger.Transfer, From: victim.UserID(), To: thief.UserID(), Amount: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The ledger's log entry, as a member would propose it: op 2 (a
	// transaction), the proposer's clock, the transaction.
	entry, err := cbor.Marshal(map[int]any{1: 2, 2: time.Now().UnixNano(), 3: raw})
	if err != nil {
		t.Fatal(err)
	}
	g, err := thief.Groups().Open(ctx, ledger.GroupName, group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := g.Apply(ctx, entry)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("forged")) {
		t.Fatalf("the outcome of a forged entry: %q", out)
	}
	for i := range 3 {
		if got := balance(t, ctx, c.Node(i), thief.UserID()); got != 0 {
			t.Fatalf("node %d credits the thief with %d", i, got)
		}
	}
	balanced(t, ctx, c)
}

// TestJoinAndRestart: a fourth node joins the ledger through a ledger
// node and catches up; a ledger node that restarts reopens the ledger
// from its log and catches up with what it missed.
func TestJoinAndRestart(t *testing.T) {
	c := ledgerCluster(t, 4, nubetest.WithDataDirs(), nubetest.TrustFirst(4)) // the ledger's nodes trust the fourth
	ctx := nubetest.Context(t, 2*time.Minute)
	if _, err := c.Node(3).Ledger().Send(ctx, c.Node(0).ID(), 4_000, "before"); err != nil {
		t.Fatal(err)
	}
	in, err := c.Node(3).Ledger().Join(ctx, c.Node(0).ID())
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Nodes) != 4 || !c.Node(3).Ledger().IsNode() {
		t.Fatalf("after the join: %+v", in)
	}
	c.Kill(2)
	if _, err := c.Node(3).Ledger().Send(ctx, c.Node(0).UserID(), 1_000, "while 2 was down"); err != nil {
		t.Fatal(err)
	}
	n2, err := c.Restart(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !n2.Ledger().IsNode() {
		t.Fatal("a restarted ledger node no longer keeps the ledger")
	}
	lead, err := c.Node(0).Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*nube.Node{n2, c.Node(3)} {
		nubetest.Eventually(t, ctx, func() bool {
			local, err := n.Ledger().LocalInfo(ctx)
			return err == nil && local.Seq == lead.Seq && local.Sum == 0 && local.ID == lead.ID
		}, func() string { return "a ledger node never caught up" })
	}
	if got := balance(t, ctx, n2, c.Node(0).UserID()); got != 5_000 {
		t.Fatalf("after the restart the payee has %d, want 5000", got)
	}
}
