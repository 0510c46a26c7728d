package ledger

import (
	"errors"
	"testing"
	"time"
)

// TestSignedFutureAgesLedger: the clamp of clockFor holds the ledger's
// clock to MaxSkew past the latest *signed* time, but the signed time is
// the signer's to choose. A member whose clock (and so its user's Sign)
// runs 25 minutes ahead — or a malicious member that signs its own
// transfer at any time it likes and proposes it at that time — moves the
// ledger's clock there in one entry: a reserve due in 20 minutes expires at
// the next tick (the provider's run goes unpaid), every honest transaction
// signed at the real time is refused as stale, and since the clock never
// goes back, a far enough jump bricks the ledger for good.
//
// RATIONALE for the test: ARCHITECTURE and clockFor's comment promise "a
// member whose clock is ahead (or a far-future tick) cannot age the ledger
// at once, forgetting nonces, expiring reserves early and making every
// honest transaction stale"; checkClock, the door's rule that would refuse
// such an entry, is called by no production code.
func TestSignedFutureAgesLedger(t *testing.T) {
	for _, ahead := range []time.Duration{25 * time.Minute, 80 * 365 * 24 * time.Hour} {
		t.Run(ahead.String(), func(t *testing.T) {
			b := newBook(t)
			alice, bob, mallory := b.vouched(testLimit), newParty(t), b.vouched(testLimit)
			res := reserveRun(b, alice, bob, 100, 20*time.Minute)

			// Mallory, a ledger member (or its clock), signs a transfer of
			// one millicredit at its own time and proposes it at that time.
			far := b.now.Add(ahead).UnixNano()
			st := b.sign(mallory, Tx{Kind: Transfer, From: mallory.user, To: bob.user, Amount: 1, Time: far})
			// An honest door refuses it (it is signed past its clock);
			// Mallory's own door lets it through, and the ledger refuses
			// it as stale: its clock follows the members' quorum, not a
			// signer.
			if err := b.m.precheck(st, b.now.UnixNano()); !errors.Is(err, ErrStale) {
				t.Errorf("an honest door let through a transfer signed %v ahead: %v", ahead, err)
			}
			if _, err := b.txAt(st, far); err != nil && !errors.Is(err, ErrStale) {
				t.Fatalf("the member's own transfer: %v", err)
			}
			if got := time.Duration(b.m.s.Clock - b.now.UnixNano()); got > MaxSkew {
				t.Errorf("one entry moved the ledger's clock %v ahead of every other signer (MaxSkew is %v)", got, MaxSkew)
			}
			// The next tick, proposed by an honest leader on time.
			b.cmd(&command{Op: opTick, Time: b.now.UnixNano()})
			if len(b.m.s.Reserves) != 1 {
				t.Errorf("a reserve due in 20 minutes expired at once (%d open)", len(b.m.s.Reserves))
			}
			// The provider settles its run, on time.
			r := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10}
			if _, err := b.tx(b.receipt(alice, bob, r, false)); err != nil {
				t.Errorf("the provider's settlement of a run reserved for 20 minutes: %v", err)
			}
			// Honest users, on time.
			if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})); err != nil {
				if errors.Is(err, ErrStale) {
					t.Errorf("an honest transfer signed on time is stale: %v", err)
				} else {
					t.Errorf("an honest transfer: %v", err)
				}
			}
		})
	}
}
