package ledger_test

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
)

// TestCreditAcrossNodes: the attacks on credit, through a node that keeps
// no ledger, as any key can send them: 100 fresh keys paying one account
// give it nothing; amounts at the end of int64 are refused at the door; a
// user vouches with what it has and no more, its line is spent up to its
// amount and no further, and cannot be withdrawn from under what was
// spent.
func TestCreditAcrossNodes(t *testing.T) {
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 2*time.Minute)
	door, voucher := c.Node(3), c.Node(3).Ledger() // node 3's user is vouched for with limit
	target := c.Node(0).UserID()
	submit := func(key crypto.Signer, tx ledger.Tx) error {
		t.Helper()
		st, err := ledger.Sign(key, tx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = door.Ledger().Submit(ctx, st)
		return err
	}
	fresh := func() (ed25519.PrivateKey, peer.ID) {
		key := identity.Generate()
		u, err := identity.ID(key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		return key, u
	}

	before := balance(t, ctx, door, target)
	for i := range 100 {
		key, u := fresh()
		if err := submit(key, ledger.Tx{Kind: ledger.Transfer, From: u, To: target, Amount: limit}); !errors.Is(err, ledger.ErrInsufficient) {
			t.Fatalf("fresh key %d paying: %v, want ErrInsufficient", i, err)
		}
	}
	if got := balance(t, ctx, door, target); got != before {
		t.Fatalf("100 fresh keys moved the target's balance from %d to %d", before, got)
	}

	userKey := door.Sys().UserKey()
	for _, amount := range []int64{math.MaxInt64, math.MinInt64, ledger.MaxAmount + 1} {
		if err := submit(userKey, ledger.Tx{Kind: ledger.Transfer, From: door.UserID(), To: target, Amount: amount}); !errors.Is(err, ledger.ErrMalformed) {
			t.Fatalf("a transfer of %d: %v, want ErrMalformed", amount, err)
		}
		if _, err := voucher.Vouch(ctx, target, amount); !errors.Is(err, ledger.ErrMalformed) {
			t.Fatalf("a line of %d: %v, want ErrMalformed", amount, err)
		}
	}

	key, holder := fresh()
	if _, err := voucher.Vouch(ctx, holder, limit+1); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("vouching more than the voucher has: %v", err)
	}
	if _, err := voucher.Vouch(ctx, holder, 20_000); err != nil {
		t.Fatal(err)
	}
	if err := submit(key, ledger.Tx{Kind: ledger.Transfer, From: holder, To: target, Amount: 20_000}); err != nil {
		t.Fatalf("spending the line: %v", err)
	}
	if err := submit(key, ledger.Tx{Kind: ledger.Transfer, From: holder, To: target, Amount: 1}); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("spending past the line: %v", err)
	}
	if _, err := voucher.Vouch(ctx, holder, 0); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("withdrawing a spent line: %v", err)
	}
	a, err := voucher.Account(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Granted != 0 || a.Vouched != limit || a.Vouching != 20_000 || a.Available != limit-20_000 || len(a.Lines) != 2 {
		t.Fatalf("the voucher's account: %+v", a)
	}
	h, err := voucher.Account(ctx, holder)
	if err != nil {
		t.Fatal(err)
	}
	if h.Limit != 20_000 || h.Balance != -20_000 || len(h.Lines) != 1 || h.Lines[0].From != door.UserID() {
		t.Fatalf("the holder's account: %+v", h)
	}
	balanced(t, ctx, c)
}
