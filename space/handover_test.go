package space_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// joinedNode starts a node that joins a's user without its key.
func joinedNode(t *testing.T, c *nubetest.C, a *nube.Node) *nube.Node {
	t.Helper()
	ctx := nubetest.Context(t, time.Minute)
	inv, err := a.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.JoinUser = inv.String()
	for _, ad := range a.Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, ad.String()+"/p2p/"+a.ID().String())
	}
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for _, n := range c.Nodes() {
		if n != nil && n != a {
			if err := b.Sys().Host().Connect(ctx, n.Sys().AddrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b.UserID() != a.UserID() {
		t.Fatalf("joined node's user %s, not %s", b.UserID(), a.UserID())
	}
	return b
}

// TestHomeMovesUnderWriters: a writer on A writes in a loop while the
// home of its space moves from A (which holds the user key) to B (which
// joined the user without it, and so signs heads under A's delegation)
// and back. No acknowledged write is lost, none is applied twice (every
// head but the two handovers is one write: the sequence numbers add up),
// and C, another user's holder and reader, takes and reads every head.
func TestHomeMovesUnderWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("short: a writer loop across two handovers")
	}
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 2*time.Minute)
	a, cn := c.Node(0), c.Node(1)
	b := joinedNode(t, c, a)
	sp, err := a.Spaces().Create(ctx, "log", space.Policy{On: []peer.ID{cn.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, cn.UserID(), space.Read|space.Write, time.Time{}); err != nil {
		t.Fatal(err)
	}
	cs, err := cn.Spaces().Open(ctx, a.UserID(), "log")
	if err != nil {
		t.Fatal(err)
	}
	start, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two writers: the owner on A (the old home, then not), and C, a
	// grantee whose writes cross the network to whichever is home.
	writers := []struct {
		prefix string
		sp     *space.Space
	}{{"w", sp}, {"c", cs}}
	acked := make([]atomic.Int64, len(writers)) // PREFIX/0 .. PREFIX/(acked-1) are acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writeErrs := make([]error, len(writers))
	took := make([][]time.Duration, len(writers))
	for j, w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				began := time.Now()
				if err := w.sp.PutBytes(ctx, fmt.Sprintf("%s/%d", w.prefix, i), []byte(fmt.Sprint(i))); err != nil {
					writeErrs[j] = fmt.Errorf("write %s/%d: %w", w.prefix, i, err)
					return
				}
				took[j] = append(took[j], time.Since(began)) // for the log only
				acked[j].Add(1)
			}
		})
	}
	total := func() int64 { return acked[0].Load() + acked[1].Load() }
	failed := func() bool { return writeErrs[0] != nil || writeErrs[1] != nil }
	waitWrites := func(n int64) {
		t.Helper()
		want := [2]int64{acked[0].Load() + n, acked[1].Load() + n}
		nubetest.Eventually(t, ctx, func() bool { return acked[0].Load() >= want[0] && acked[1].Load() >= want[1] || failed() },
			func() string {
				return fmt.Sprintf("%d and %d writes acked, want %v", acked[0].Load(), acked[1].Load(), want)
			})
	}
	waitWrites(5)
	if err := sp.Home(ctx, b.ID()); err != nil {
		t.Fatalf("hand the home to B: %v", err)
	}
	waitWrites(5)
	bs, err := b.Spaces().Open(ctx, "", "log")
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Home(ctx, b.ID()); !errors.Is(err, space.ErrNotHome) {
		t.Fatalf("A hands over a home it no longer has: %v", err)
	}
	info, err := bs.Info(ctx)
	if err != nil || info.Home != b.ID() {
		t.Fatalf("after the handover the home is %s (%v), want B %s", info.Home, err, b.ID())
	}
	if err := bs.Home(ctx, a.ID()); err != nil {
		t.Fatalf("hand the home back to A: %v", err)
	}
	waitWrites(5)
	close(stop)
	wg.Wait()
	if err := errors.Join(writeErrs...); err != nil {
		t.Fatal(err)
	}
	n := total()
	end, err := sp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end.Home != a.ID() {
		t.Fatalf("home at the end %s, want A", end.Home)
	}
	if got, want := end.Seq-start.Seq, uint64(n)+2; got != want {
		t.Fatalf("%d heads after %d acked writes and 2 handovers, want %d: a write lost or doubled", got, n, want)
	}
	if end.Keys != uint64(n) {
		t.Fatalf("%d keys after %d acked writes", end.Keys, n)
	}
	for j, w := range writers {
		for i := range acked[j].Load() {
			got, err := cs.GetBytes(ctx, fmt.Sprintf("%s/%d", w.prefix, i))
			if err != nil || string(got) != fmt.Sprint(i) {
				t.Fatalf("C reads %s/%d: %q, %v", w.prefix, i, got, err)
			}
		}
	}
	for j, w := range writers {
		slices.Sort(took[j])
		t.Logf("writer %s: %d writes across two handovers, p50 %v, slowest %v", w.prefix, len(took[j]), took[j][len(took[j])/2], took[j][len(took[j])-1])
	}
}

// TestHandedHomeRestarts: a home handed to a node without the user key
// keeps its delegation and keys across a restart: it loads the space,
// applies writes, and other nodes take its heads.
func TestHandedHomeRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("short: restarts a node")
	}
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, 2*time.Minute)
	a := c.Node(0)
	inv, err := a.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.JoinUser = inv.String()
	for _, ad := range a.Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, ad.String()+"/p2p/"+a.ID().String())
	}
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := a.Spaces().Create(ctx, "notes", space.Policy{Local: true})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "before", []byte("1")); err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := sp.Home(ctx, b.ID()); err != nil {
		b.Close()
		t.Fatal(err)
	}
	b.Close()
	cfg.JoinUser = ""
	b, err = nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Sys().Host().Connect(ctx, a.Sys().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	bs, err := b.Spaces().Open(ctx, "", "notes")
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.PutBytes(ctx, "after", []byte("2")); err != nil {
		t.Fatalf("the restarted home writes: %v", err)
	}
	// A writes through B, and reads B's heads, signed under the
	// delegation.
	if err := sp.PutBytes(ctx, "from-a", []byte("3")); err != nil {
		t.Fatalf("A writes at the restarted home: %v", err)
	}
	for k, want := range map[string]string{"before": "1", "after": "2", "from-a": "3"} {
		got, err := sp.GetBytes(ctx, k)
		if err != nil || string(got) != want {
			t.Fatalf("A reads %s: %q, %v", k, got, err)
		}
	}
	// The owner grants from A, which holds the user key; B, which
	// cannot sign the owner's link, files it.
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	lk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := peer.IDFromPublicKey(lk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, reader, space.Read, time.Time{}); err != nil {
		t.Fatalf("the owner grants on A while B is home: %v", err)
	}
	info, err := sp.Info(ctx)
	if err != nil || info.Home != b.ID() || !slices.Contains(info.Readers, reader) {
		t.Fatalf("home %s, readers %v (%v), want B and the new reader", info.Home, info.Readers, err)
	}
}
