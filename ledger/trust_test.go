package ledger_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// bare is a libp2p host that is no nube node, with a remote endpoint of
// its own: what an attacker runs.
func bare(t *testing.T, ctx context.Context, to ...*nube.Node) (host.Host, *remote.Endpoint) {
	t.Helper()
	h := hosttest.Hosts(t, 1)[0]
	ep, err := remote.New(ctx, remote.Config{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	for _, n := range to {
		if err := h.Connect(ctx, n.Sys().AddrInfo()); err != nil {
			t.Fatal(err)
		}
	}
	return h, ep
}

// The ledger's calls as an attacker declares them: any shape it likes.
var (
	impInfo   = remote.Declare[map[int]any, map[int]any]("nube.ledger.info")
	impSubmit = remote.Declare[map[int]any, map[int]any]("nube.ledger.submit")
	impAdd    = remote.Declare[map[int]any, map[int]any]("nube.ledger.add")
	impForm   = remote.Declare[map[int]any, map[int]any]("nube.ledger.form")
)

// forgedLedger is what an impostor says the ledger is: a ledger of its
// own, itself its only member, every signature its own and sound, and its
// node cert from a user key of its own.
func forgedLedger(t *testing.T, h host.Host) map[int]any {
	t.Helper()
	raw, err := h.Peerstore().PrivKey(h.ID()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.PrivateKey(raw)
	gen, _ := wire.Marshal(map[int]any{1: "f00dfeedf00dfeed", 2: time.Now().UnixNano(), 3: int64(1 << 40)})
	// Peer IDs travel as their bytes.
	body, _ := wire.Marshal(map[int]any{1: "f00dfeedf00dfeed", 2: 0, 3: [][]byte{[]byte(h.ID())}, 4: gen})
	entry := map[int]any{1: body, 2: []map[int]any{{1: []byte(h.ID()), 2: signAs(key, "nube ledger roster v1\n", body)}}}
	cert, err := nodecert.New(identity.Generate(), h.ID())
	if err != nil {
		t.Fatal(err)
	}
	return map[int]any{1: []map[int]any{entry}, 2: map[int]any{1: []byte(cert.User), 2: cert.Sig}}
}

// TestImpostorDuringPartition: cut off from the ledger, a node that knows
// it meets a bare libp2p host answering the ledger's calls as the ledger.
// The node believes none of it: its calls fail, ledger.json is unchanged,
// and a node that has not learned the ledger yet refuses the impostor's
// word and says so.
func TestImpostorDuringPartition(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	c := ledgerCluster(t, 5, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fast(i, cfg)
		if i >= 3 {
			cfg.DataDir = dirs[i-3]
		}
	}))
	ctx := nubetest.Context(t, 3*time.Minute)
	knows, fresh := c.Node(3), c.Node(4)
	real, err := knows.Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(dirs[0], nube.LedgerDir, "ledger.json")
	before, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	c.Partition([]int{0, 1, 2}, []int{3, 4})

	h, ep := bare(t, ctx, knows, fresh)
	var asked atomic.Int32
	forged := forgedLedger(t, h)
	remote.Handle(ep, impInfo, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		asked.Add(1)
		if len(req) > 1 { // the node asks for the ledger's identity: give a forged one
			return forged, nil
		}
		return map[int]any{1: "f00dfeedf00dfeed", 2: [][]byte{[]byte(h.ID())}, 3: []byte(h.ID()), 4: int64(1 << 40)}, nil
	})
	remote.Handle(ep, impSubmit, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		asked.Add(1)
		return map[int]any{3: 1, 4: 1 << 40}, nil // applied: any hold holds
	})

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	in, err := knows.Ledger().Info(short)
	if err == nil || in.ID != "" && in.ID != real.ID {
		t.Fatalf("cut off from the ledger, the node got info %+v, %v", in, err)
	}
	payer := knows.Sys().UserKey()
	st, err := ledger.Sign(payer, ledger.Tx{Kind: ledger.Transfer, From: knows.UserID(), To: c.Node(0).UserID(), Amount: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := knows.Ledger().Submit(short, st); err == nil {
		t.Fatal("cut off from the ledger, a transfer was applied")
	}
	after, err := os.ReadFile(known)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("ledger.json changed while the ledger was cut off:\n%s\n%s", before, after)
	}

	// A node that never learned the ledger refuses the impostor's word.
	_, err = fresh.Ledger().Info(short)
	if !errors.Is(err, ledger.ErrNoLedger) || !strings.Contains(err.Error(), h.ID().String()) || !strings.Contains(err.Error(), "trust") {
		t.Fatalf("a fresh node meeting only an impostor: %v (want ErrNoLedger naming the untrusted %s)", err, h.ID())
	}
	if _, err := os.Stat(filepath.Join(dirs[1], nube.LedgerDir, "ledger.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a fresh node wrote ledger.json from an impostor's word: %v", err)
	}

	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		in, err := knows.Ledger().Info(ctx)
		return err == nil && in.ID == real.ID
	}, func() string { return "the node never reached the real ledger again" })
	t.Logf("the impostor was asked %d times", asked.Load())
}

// TestStrangerCannotJoin: under --offer-to anyone a node serves strangers
// compute and storage, but the ledger's members admit none of them: not a
// node none of them trusts, nor one that only the member it asks trusts.
func TestStrangerCannotJoin(t *testing.T) {
	c := ledgerCluster(t, 5, nubetest.TrustFirst(4), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fast(i, cfg)
		if i == 1 || i == 2 {
			cfg.Offer.Users = cfg.Offer.Users[:3] // 1 and 2 do not trust node 3's user
		}
	}))
	ctx := nubetest.Context(t, 2*time.Minute)
	if c.Node(0).Config().Offer.To != nube.OfferAnyone {
		t.Fatal("the ledger nodes do not offer to anyone")
	}
	for _, i := range []int{4, 3} {
		_, err := c.Node(i).Ledger().Join(ctx, c.Node(0).ID())
		if !errors.Is(err, ledger.ErrRefused) {
			t.Fatalf("node %d joining: %v, want ErrRefused", i, err)
		}
		if c.Node(i).Ledger().IsNode() || slices.Contains(c.Node(i).Groups().List(), ledger.GroupName) {
			t.Fatalf("node %d was refused but keeps the ledger's group", i)
		}
	}
	in, err := c.Node(0).Ledger().Info(ctx)
	if err != nil || len(in.Nodes) != 3 {
		t.Fatalf("after the refusals the ledger has nodes %v (%v)", in.Nodes, err)
	}
	g, err := c.Node(0).Groups().Open(ctx, ledger.GroupName, group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.Status(ctx)
	if err != nil || len(st.Members) != 3 {
		t.Fatalf("the ledger's group has members %+v (%v)", st.Members, err)
	}
	// Nor does a stranger make a ledger node of one.
	if _, err := c.Node(4).Ledger().Create(ctx, 0, c.Node(3).ID()); !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("a stranger making a ledger with node 3: %v", err)
	}
}

// TestRefusedCreateLeavesNothing: a create that a peer refuses opens no
// group anywhere, neither on the node that asked nor on a peer that
// agreed; the node can then create a ledger after all; and a join through
// a node that keeps none is refused at once, not after its deadline.
func TestRefusedCreateLeavesNothing(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.TrustFirst(2), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		fast(i, cfg)
		if i == 2 {
			cfg.Offer.Users = nil // a stranger to the others, who trusts nobody
		}
	}))
	ctx := nubetest.Context(t, 2*time.Minute)
	a, friend, stranger := c.Node(0), c.Node(1), c.Node(2)
	_, err := a.Ledger().Create(ctx, 0, friend.ID(), stranger.ID())
	if !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("a create the stranger refuses: %v", err)
	}
	for i, n := range c.Nodes() {
		if n.Ledger().IsNode() || slices.Contains(n.Groups().List(), ledger.GroupName) {
			t.Fatalf("node %d keeps the ledger's group after a refused create", i)
		}
	}
	jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = friend.Ledger().Join(jctx, a.ID())
	if !errors.Is(err, ledger.ErrNoLedger) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a join through a node that keeps no ledger: %v", err)
	}
	in, err := a.Ledger().Create(ctx, 0, friend.ID())
	if err != nil || len(in.Nodes) != 2 {
		t.Fatalf("the create after a refused one: %+v, %v", in, err)
	}
}

// TestCreateAbortedMidway: a peer signs the founding and then fails to
// open its group; the creator gives up, and the peer that had opened its
// group drops it: no group is left anywhere.
func TestCreateAbortedMidway(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.TrustFirst(2), nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, time.Minute)
	a, friend := c.Node(0), c.Node(1)
	h, ep := bare(t, ctx, a)
	raw, err := h.Peerstore().PrivKey(h.ID()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := nodecert.New(identity.Generate(), h.ID())
	if err != nil {
		t.Fatal(err)
	}
	remote.Handle(ep, impForm, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		if step, _ := req[1].(uint64); step == 4 { // asked for its user: names one
			return map[int]any{2: cert}, nil
		}
		if step, _ := req[1].(uint64); step == 1 { // asked to agree: it does
			body, _ := req[2].([]byte)
			return map[int]any{1: signAs(ed25519.PrivateKey(raw), "nube ledger roster v1\n", body)}, nil
		}
		if step, _ := req[1].(uint64); step == 2 {
			return nil, errors.New("this node's disk is full") // asked to open: it fails
		}
		return map[int]any{}, nil
	})
	_, err = a.Ledger().Create(ctx, 0, friend.ID(), h.ID())
	if err == nil || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("a create one peer failed to open: %v", err)
	}
	for i, n := range c.Nodes() {
		nubetest.Eventually(t, ctx, func() bool {
			return !n.Ledger().IsNode() && !slices.Contains(n.Groups().List(), ledger.GroupName)
		}, func() string { return fmt.Sprintf("node %d keeps the ledger's group after an aborted create", i) })
	}
	if _, err := a.Ledger().Create(ctx, 0, friend.ID()); err != nil {
		t.Fatalf("the create after an aborted one: %v", err)
	}
}

// TestJoinDeadline: a join through a node that never answers ends at the
// caller's deadline with an error that says what it was waiting for, and
// leaves nothing behind.
func TestJoinDeadline(t *testing.T) {
	c := nubetest.Cluster(t, 1, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, time.Minute)
	n := c.Node(0)
	h, ep := bare(t, ctx, n)
	remote.Handle(ep, impAdd, func(ctx context.Context, _ map[int]any) (map[int]any, error) {
		<-ctx.Done() // a ledger node that hangs
		return nil, ctx.Err()
	})
	jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := n.Ledger().Join(jctx, h.ID())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for") || !strings.Contains(err.Error(), h.ID().String()) {
		t.Fatalf("a join through a node that hangs: %v (want the deadline, and what it waited for)", err)
	}
	if n.Ledger().IsNode() || slices.Contains(n.Groups().List(), ledger.GroupName) {
		t.Fatal("a join that timed out left the ledger's group behind")
	}
}

// TestStrangerResubmits: a stranger with no key re-submits every
// transaction it has seen to every ledger node; each is refused at the
// door, and no entry reaches any node's log.
func TestStrangerResubmits(t *testing.T) {
	c := ledgerCluster(t, 4, untickedLedger)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer := c.Node(3)
	key := payer.Sys().UserKey()
	var seen [][]byte
	for range 5 {
		st, err := ledger.Sign(key, ledger.Tx{Kind: ledger.Transfer, From: payer.UserID(), To: c.Node(0).UserID(), Amount: 100})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := payer.Ledger().Submit(ctx, st); err != nil {
			t.Fatal(err)
		}
		b, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, b)
	}
	balanced(t, ctx, c) // every member has applied them all
	last := func(i int) uint64 { return writes(t, ctx, c, i) }
	var before []uint64
	for i := range 3 {
		before = append(before, last(i))
	}
	_, ep := bare(t, ctx, c.Node(0), c.Node(1), c.Node(2))
	for i := range 3 {
		for _, tx := range seen {
			impSubmit.At(ep, c.Node(i).ID()).Call(ctx, map[int]any{1: tx}) // refused, one way or another
		}
	}
	for i := range 3 {
		if got := last(i); got != before[i] {
			t.Fatalf("ledger node %d: its log went from %d to %d entries on a stranger's re-submissions", i, before[i], got)
		}
	}
}

// TestSendToNodeID: a payee named by one of its nodes' peer IDs is paid
// as that node's user, and the outcome says so; an ID that is neither an
// account nor a node that answers is refused; no account is made for
// either.
func TestSendToNodeID(t *testing.T) {
	c := ledgerCluster(t, 5)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer, payee := c.Node(3), c.Node(4)
	o, err := payer.Ledger().Send(ctx, payee.ID(), 1_000, "to a node")
	if err != nil {
		t.Fatal(err)
	}
	if o.Payee != payee.UserID() || o.Node != payee.ID() {
		t.Fatalf("sent to node %s: paid %s through %s, want its user %s", payee.ID(), o.Payee, o.Node, payee.UserID())
	}
	if got := balance(t, ctx, payer, payee.UserID()); got != 1_000 {
		t.Fatalf("the node's user has %d", got)
	}
	a, err := payer.Ledger().Account(ctx, payee.ID())
	if err != nil || a.Known || a.Balance != 0 {
		t.Fatalf("the node's own ID has an account: %+v, %v", a, err)
	}
	nobody, err := identity.ID(identity.Generate().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := payer.Ledger().Send(ctx, nobody, 1_000, "to nobody"); !errors.Is(err, ledger.ErrUnknownPayee) {
		t.Fatalf("sent to an ID nobody answers for: %v, want ErrUnknownPayee", err)
	}
	// Paid, the user is not known yet as a payee: an account that was
	// only paid may be any ID's (TestPayeeNodeAccountPlanted). Once it
	// has signed a transaction, it is, and is paid as named.
	if _, err := payer.Ledger().Send(ctx, payee.UserID(), 500, "to the user"); !errors.Is(err, ledger.ErrUnknownPayee) {
		t.Fatalf("sent to a user that has signed nothing: %v, want ErrUnknownPayee", err)
	}
	if _, err := payee.Ledger().Send(ctx, payer.UserID(), 1, "hello"); err != nil {
		t.Fatal(err)
	}
	o, err = payer.Ledger().Send(ctx, payee.UserID(), 500, "to the user")
	if err != nil || o.Payee != payee.UserID() || o.Node != "" {
		t.Fatalf("sent to a known user: %+v, %v", o, err)
	}
	if a, err := payer.Ledger().Account(ctx, nobody); err != nil || a.Known {
		t.Fatalf("the refused payee has an account: %+v, %v", a, err)
	}
}

// signAs signs body under domain with key, as identity.Sign does; an
// ed25519 key always can.
func signAs(key crypto.Signer, domain string, body []byte) []byte {
	sig, err := identity.Sign(key, domain, body)
	if err != nil {
		panic(err)
	}
	return sig
}
