package ledger

import (
	"errors"
	"math/big"
	"testing"

	"github.com/nubecloud/nube/internal/wire"
)

// TestRestoreMintedSnapshot: a follower takes whatever snapshot the leader
// sends (raft's InstallSnapshot; any member can win an election) and
// restores it even when its own audit finds it unsound: "logged at error
// and restored all the same". A malicious member that leads once mints
// credit that way on every follower it sends a snapshot to, and the credit
// minted is then spendable through ordinary, checked entries (an entry
// "may mend, not worsen" only the accounts already past their limit; an
// account given a balance from nothing is not past anything).
func TestRestoreMintedSnapshot(t *testing.T) {
	b := newBook(t)
	mallory, bob := newParty(t), newParty(t)
	st := newState()
	if err := wire.Unmarshal(mustSnap(t, b), st); err != nil {
		t.Fatal(err)
	}
	const minted = 1 << 50
	st.Accounts[mallory.user] = &account{Balance: minted}
	hostile, err := wire.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	f := newFSM(nil)
	if err := f.Restore(hostile); err == nil {
		// Restored: is the minted credit spendable?
		b.m = f.m
		raw, _ := b.sign(mallory, Tx{Kind: Transfer, From: mallory.user, To: bob.user, Amount: minted}).Encode()
		c, _ := wire.Marshal(&command{Op: opTx, Time: b.now.UnixNano(), Tx: raw})
		out, _ := f.m.Apply(c)
		var o outcome
		wire.Unmarshal(out, &o)
		if err := errorOf(o.Code, o.Msg); err == nil || !errors.Is(err, ErrInvariant) && !errors.Is(err, ErrInsufficient) {
			sum := new(big.Int)
			for _, a := range f.m.s.Accounts {
				sum.Add(sum, big.NewInt(a.Balance))
			}
			sum.Add(sum, big.NewInt(f.m.s.Escrow))
			t.Fatalf("a snapshot that mints %d restored, and the minted credit was spent (%v): bob has %d, balances sum to %v",
				int64(minted), err, f.m.s.Accounts[bob.user].Balance, sum)
		}
	}
}

func mustSnap(t *testing.T, b *book) []byte {
	t.Helper()
	s, err := b.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
