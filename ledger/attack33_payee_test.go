package ledger_test

import (
	"testing"
	"time"

	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
)

// TestPayeeNodeAccountPlanted: Send resolves a node ID to its user only
// if the ledger has no account for the ID; but the door takes a transfer
// To any ed25519 ID, node IDs included. A stranger sends one millicredit
// to a provider's node ID, and from then on every payment named by that
// node's ID, made while the node is not connected to the payer (offline,
// behind a NAT, in another partition), lands in the node ID's own account,
// which no command spends (nube signs From the user only): credit sent to
// an unspendable account, issue 33's item 10 again.
func TestPayeeNodeAccountPlanted(t *testing.T) {
	c := ledgerCluster(t, 6)
	ctx := nubetest.Context(t, 2*time.Minute)
	payer, payee, stranger := c.Node(3), c.Node(4), c.Node(5)
	st, err := ledger.Sign(stranger.Sys().UserKey(), ledger.Tx{Kind: ledger.Transfer,
		From: stranger.UserID(), To: payee.ID(), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Ledger().Submit(ctx, st); err != nil {
		t.Fatalf("the stranger's plant: %v", err)
	}
	c.Partition([]int{3}, []int{4})
	o, err := payer.Ledger().Send(ctx, payee.ID(), 1_000, "for the node's user")
	if err != nil {
		return // refused: held
	}
	if o.Payee != payee.UserID() {
		t.Fatalf("a payment named by node %s was paid to the account %s (the node's own ID), not to its user %s",
			payee.ID(), o.Payee, payee.UserID())
	}
}
