package ledger_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// silentPayer is a caller's Payments that signs reserves, as it must to
// be served, and does nothing else: it never countersigns, settles or
// answers for a receipt.
type silentPayer struct {
	key  ed25519.PrivateKey
	user peer.ID
}

func (p silentPayer) Reserve(provider peer.ID, price service.Price, most int64, ttl time.Duration) ([]byte, error) {
	st, err := ledger.Sign(p.key, ledger.Tx{Kind: ledger.Reserve, From: p.user, Provider: provider, Amount: most,
		Price: price, Expires: time.Now().Add(ttl).UnixNano()})
	if err != nil {
		return nil, err
	}
	return st.Encode()
}

var errNotProvider = errors.New("the silent payer serves no runs")

func (silentPayer) Hold(context.Context, []byte, service.Price, time.Duration) (service.Hold, error) {
	return service.Hold{}, errNotProvider
}
func (silentPayer) Bill(service.Hold, wasm.Usage) ([]byte, int64, error) {
	return nil, 0, errNotProvider
}
func (silentPayer) Collect(context.Context, []byte) error { return errNotProvider }
func (silentPayer) Release(service.Hold)                  {}

// Check takes the output and says nothing.
func (silentPayer) Check([]byte, peer.ID, []byte, wasm.Usage, time.Duration) (int64, error) {
	return 0, nil
}

// TestCallerNeverCountersigns: a caller that signs its reserves and
// nothing more (a bare host with the service layer and a payments of its
// own) has 50 runs priced 1000 each done on a node that keeps no ledger.
// The provider settles them itself: it is paid 50 × 1000, the caller is
// debited the same, nothing stays in escrow, and the balances sum to
// zero (summed here in math/big).
func TestCallerNeverCountersigns(t *testing.T) {
	const runs, price = 50, 1000
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 5*time.Minute)
	provider := c.Node(3)
	d := publish(t, provider, "priced-1000", service.Price{PerCall: price})

	h := hosttest.Hosts(t, 1)[0]
	if err := h.Connect(ctx, provider.Sys().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	st, err := content.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.New(ctx, content.Config{Host: h, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := remote.New(ctx, remote.Config{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	key := identity.Generate()
	user, err := identity.ID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh key has no credit: a founder vouches for the caller with
	// what its 50 runs cost.
	if _, err := c.Node(0).Ledger().Vouch(ctx, user, runs*price); err != nil {
		t.Fatal(err)
	}
	caller, err := service.New(ctx, service.Config{Host: h, Content: cs, Remote: ep, UserKey: key,
		Payments: silentPayer{key, user}, Interpreter: nubetest.TestConfig().ComputeInterpreter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caller.Close(); ep.Close(); cs.Close(); st.Close() })

	for i := range runs {
		out, err := caller.Service(d.ID().String()).On(provider.ID()).Call(ctx, []byte("free?"))
		if err != nil || string(out) != "FREE?" {
			t.Fatalf("run %d: %q, %v", i, out, err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool {
		return balance(t, ctx, provider, provider.UserID()) == runs*price && balance(t, ctx, provider, user) == -runs*price
	}, func() string {
		ctx := nubetest.Context(t, 30*time.Second) // the test's has ended
		return fmt.Sprintf("after %d runs priced %d, the provider has %d and the caller %d", runs, price,
			balance(t, ctx, provider, provider.UserID()), balance(t, ctx, provider, user))
	})
	in, err := c.Node(0).Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Four accounts: the caller's and the provider's, and those of the
	// founders who vouched for them (node 0's for the caller, node 2's for
	// the provider: ledgerCluster's), whose balances no line moves.
	if in.Accounts != 4 || in.Escrow != 0 || in.Reserves != 0 {
		t.Fatalf("the ledger: %+v; want the caller's, the provider's and their vouchers' accounts only, nothing in escrow", in)
	}
	sum := new(big.Int)
	for _, b := range []int64{balance(t, ctx, provider, provider.UserID()), balance(t, ctx, provider, user),
		balance(t, ctx, provider, c.Node(0).UserID()), balance(t, ctx, provider, c.Node(2).UserID()), in.Escrow} {
		sum.Add(sum, big.NewInt(b))
	}
	if sum.Sign() != 0 {
		t.Fatalf("the balances and the escrow sum to %s", sum)
	}
	balanced(t, ctx, c)
}
