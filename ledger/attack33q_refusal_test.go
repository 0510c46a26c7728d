package ledger_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// TestMinorityReplayRefusalSettles: a refusal is believed on one member's
// signature ("it makes the node believe nothing"), but a refusal that says
// "replay" is not nothing: submitUntil (Collect, Release) counts a
// transaction the ledger says it applied already as applied. One bad
// member of three, with its real key, answers a provider's settlement
// with a signed "replay" refusal; Collect returns nil, the service layer
// takes the run as paid, and the honest majority never saw the
// settlement: the provider is never paid.
func TestMinorityReplayRefusalSettles(t *testing.T) {
	if testing.Short() {
		t.Skip("short: a five-node cluster")
	}
	c := ledgerCluster(t, 5)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer, provider := c.Node(3), c.Node(4)

	// An honest reserve and hold, as a priced run makes them.
	price := service.Price{PerCall: 1_000}
	run := 10 * time.Second
	reserve, err := pay(payer).Reserve(provider.ID(), price, price.Most(run), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := pay(provider).Hold(ctx, reserve, price, run)
	if err != nil {
		t.Fatal(err)
	}
	receipt, cost, err := pay(provider).Bill(hold, wasm.Usage{CPU: time.Millisecond, Wall: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if cost <= 0 {
		t.Fatalf("the run costs %d", cost)
	}

	// The member the provider asks first goes bad, with its real key.
	in, err := provider.Ledger().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := in.Leader
	if bad == "" {
		bad = in.Nodes[0]
	}
	victim, honest := -1, -1
	for i := range 3 {
		if c.Node(i).ID() == bad {
			victim = i
		} else {
			honest = i
		}
	}
	if victim < 0 {
		t.Fatalf("the leader %s is none of the ledger's nodes", bad)
	}
	before := balance(t, ctx, c.Node(honest), provider.UserID())
	key, h, ep := impersonate(t, ctx, c, victim)

	var asked atomic.Int32
	remote.Handle(ep, impSubmit, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		asked.Add(1)
		tx, _ := req[1].([]byte)
		// A refusal: outcome{Code: "replay"}, signed with the member's
		// real key, for this very question.
		body, _ := wire.Marshal(map[int]any{1: "replay", 2: "ledger transaction already applied"})
		hash := sha256.Sum256(tx)
		ab, _ := wire.Marshal(map[int]any{1: in.ID, 2: uint64(0), 3: uint64(1), 4: "submit", 5: hash[:], 6: body})
		return map[int]any{1: ab, 2: []byte(bad), 3: signAs(key, "nube ledger answer v1\n", ab)}, nil
	})
	remote.Handle(ep, impConfirm, func(ctx context.Context, req map[int]any) (map[int]any, error) {
		return nil, errors.New("no")
	})
	if err := h.Connect(ctx, provider.Sys().AddrInfo()); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	collected := pay(provider).Collect(short, receipt)
	if asked.Load() == 0 {
		t.Fatalf("the bad member was never asked (Collect: %v): the test proves nothing", collected)
	}
	// The honest majority never saw the settlement.
	after := balance(t, ctx, c.Node(honest), provider.UserID())
	if collected == nil && after == before {
		t.Fatalf("one bad member's signed \"replay\" made the provider believe its settlement of %d was applied "+
			"(Collect returned nil): the honest members still hold the provider's balance at %d", cost, after)
	}
}

// pay is node n's payments, as the service layer holds them.
func pay(n *nube.Node) service.Payments {
	return n.Ledger().(interface{ Compute() service.Payments }).Compute()
}
