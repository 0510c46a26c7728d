package ledger

import (
	"testing"
	"time"
)

// TestIdleLedgerNeverExpires: the clamp that stops a far tick also stops
// every honest tick on a quiet ledger: the clock never passes MaxSkew
// beyond the latest signed time, so a reserve due later never returns
// until somebody else's transaction is applied. A payer whose whole
// credit is reserved cannot make one itself (each kind it may sign needs
// credit): a provider that takes a reserve and never settles or releases
// it freezes the payer's credit for as long as the ledger stays quiet — a
// day here, with the leader ticking on time all along.
func TestIdleLedgerNeverExpires(t *testing.T) {
	b := newBook(t)
	alice, bob, carol := b.vouched(testLimit), newParty(t), newParty(t)
	reserveRun(b, alice, bob, testLimit, 5*time.Minute)
	start := b.now
	for _, d := range []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour} {
		b.now = start.Add(d)
		b.cmd(&command{Op: opTick, Time: b.now.UnixNano()})
	}
	if len(b.m.s.Reserves) != 0 {
		t.Errorf("a reserve due 5 minutes in is still open a day later, after the leader ticked on time (ledger clock %v past it)",
			time.Duration(b.m.s.Clock-start.UnixNano()))
	}
	// The payer tries to get its credit back by itself.
	if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: carol.user, Amount: 1})); err != nil {
		t.Errorf("a day later the payer still cannot spend: %v", err)
	}
}
