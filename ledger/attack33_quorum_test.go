package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

var (
	impAccount = remote.Declare[map[int]any, map[int]any]("nube.ledger.account")
	impConfirm = remote.Declare[map[int]any, map[int]any]("nube.ledger.confirm")
)

// TestMinorityMemberAnswer: one member of three goes bad. It holds its
// node key, so every answer it signs checks; it says a transfer the ledger
// never saw was applied, and that an account holds a fortune. A node that
// keeps no ledger believes neither: what changes what it believes needs a
// majority of the members to sign the same answer, and the two honest
// members never applied what the bad one claims. Issue 33: "answers that
// change what a node believes are verifiable: signed by the ledger's
// members (a quorum)".
func TestMinorityMemberAnswer(t *testing.T) {
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer := c.Node(3)
	in, err := payer.Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := balance(t, ctx, payer, payer.UserID())

	// The member the payer asks first (the leader it last heard of) goes
	// bad: its node stops, and a host with its key answers in its place.
	bad := in.Leader
	if bad == "" {
		bad = in.Nodes[0]
	}
	victim := -1
	for i := range 3 {
		if c.Node(i).ID() == bad {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("the leader %s is none of the ledger's nodes", bad)
	}
	payee := c.Node((victim + 1) % 3).UserID()
	key, h, ep := impersonate(t, ctx, c, victim)
	if err := h.Connect(ctx, payer.Sys().AddrInfo()); err != nil {
		t.Fatal(err)
	}

	// sign answers the question req of kind with body, as the bad member:
	// for the ledger the node knows, at its epoch, a signature that checks.
	sign := func(kind string, req []byte, body map[int]any) map[int]any {
		bb, err := wire.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		hash := sha256.Sum256(req)
		ab, err := wire.Marshal(map[int]any{1: in.ID, 2: uint64(0), 3: uint64(1 << 20), 4: kind, 5: hash[:], 6: bb})
		if err != nil {
			t.Fatal(err)
		}
		return map[int]any{1: ab, 2: []byte(bad), 3: signAs(key, "nube ledger answer v1\n", ab), 4: []byte(bad)}
	}
	var asked atomic.Int32
	remote.Handle(ep, impSubmit, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		asked.Add(1)
		tx, _ := req[1].([]byte)
		return sign("submit", tx, map[int]any{3: uint64(1 << 20), 4: int64(1 << 40)}), nil // applied
	})
	remote.Handle(ep, impAccount, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		asked.Add(1)
		rb, err := wire.Marshal(req)
		if err != nil {
			return nil, err
		}
		user, _ := req[1].([]byte)
		return sign("account", rb, map[int]any{1: user, 2: int64(1 << 40), 5: int64(1 << 40), 7: in.ID, 8: true}), nil
	})
	remote.Handle(ep, impConfirm, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		return nil, errors.New("no")
	})

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := ledger.Sign(payer.Sys().UserKey(), ledger.Tx{Kind: ledger.Transfer, From: payer.UserID(), To: payee, Amount: 1_000})
	if err != nil {
		t.Fatal(err)
	}
	if o, err := payer.Ledger().Submit(short, st); err == nil {
		t.Fatalf("one bad member's word made the node believe a transfer was applied: %+v", o)
	}
	if a, err := payer.Ledger().Account(short, payer.UserID()); err == nil && a.Balance == 1<<40 {
		t.Fatalf("one bad member's word made the node believe its balance is %d", a.Balance)
	}
	if asked.Load() == 0 {
		t.Fatal("the bad member was never asked: the test proves nothing")
	}
	// The honest majority goes on, and never applied the transfer.
	nubetest.Eventually(t, ctx, func() bool {
		for i := range 3 {
			if i == victim {
				continue
			}
			a, err := c.Node(i).Ledger().Account(ctx, payer.UserID())
			if err != nil || a.Balance != before {
				return false
			}
		}
		return true
	}, func() string { return "the honest members do not agree on the payer's untouched balance" })
}

// impersonate stops ledger node victim and starts, in its place, a bare
// host with its node key and a remote endpoint of its own: a member gone
// bad, whose signatures check. It returns the key, the host and the
// endpoint to serve the ledger's calls on.
func impersonate(t *testing.T, ctx context.Context, c *nubetest.C, victim int) (ed25519.PrivateKey, host.Host, *remote.Endpoint) {
	t.Helper()
	id := c.Node(victim).ID()
	priv := c.Node(victim).Sys().Host().Peerstore().PrivKey(id)
	raw, err := priv.Raw()
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(victim)
	h, err := libp2p.New(libp2p.Identity(priv), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ep, err := remote.New(ctx, remote.Config{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ed25519.PrivateKey(raw), h, ep
}
