package ledger

import (
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/wire"
)

// seeds returns well-formed transactions of every kind, encoded.
func seeds(t testing.TB) [][]byte {
	b := newBook(t)
	alice, bob := newParty(t), newParty(t)
	res := reserveRun(b, alice, bob, 100, time.Minute)
	rel := b.sign(bob, Tx{Kind: Release, From: bob.user, Provider: bob.node, Ref: res.tx.Nonce})
	rel.Cert = &bob.cert
	rel.SignNode(bob.nodeKey)
	var out [][]byte
	for _, st := range []*SignedTx{
		b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 3, Memo: "hi"}),
		res, rel,
		b.receipt(alice, bob, Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10}, true),
	} {
		raw, err := st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// FuzzTx feeds the transaction decoder arbitrary bytes: it must return a
// transaction that passed its checks or an error, never panic.
func FuzzTx(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeTx(b)
		if err != nil {
			return
		}
		if st.Tx() == nil || len(st.Tx().Nonce) != nonceSize {
			t.Fatalf("decoded a transaction without its checks: %+v", st.Tx())
		}
	})
}

// FuzzReceipt feeds the receipt decoder arbitrary bytes.
func FuzzReceipt(f *testing.F) {
	b := newBook(f)
	alice, bob := newParty(f), newParty(f)
	st := b.receipt(alice, bob, Receipt{Kind: Storage, ID: storageID("s", bob.node, 1), Space: "s", From: 1, Until: 2, Bytes: 1}, true)
	raw, _ := st.tx.Receipt.Encode()
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, both := range []bool{false, true} {
			if r, err := DecodeReceipt(b, both); err == nil && r.Receipt() == nil {
				t.Fatal("decoded a receipt with no body")
			}
		}
	})
}

// FuzzApply feeds the state machine arbitrary commands, after a few good
// ones: it must never panic, never return an error, and the balances must
// still sum to zero.
func FuzzApply(f *testing.F) {
	for _, s := range seeds(f) {
		c, _ := wire.Marshal(&command{Op: opTx, Time: time.Unix(1_800_000_000, 0).UnixNano(), Tx: s})
		f.Add(c)
	}
	f.Add([]byte{0xa1, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, c []byte) {
		b := newBook(t)
		if _, err := b.m.Apply(c); err != nil {
			t.Fatalf("Apply returned an error: %v", err)
		}
		if sum := b.m.s.Sum(); sum != 0 {
			t.Fatalf("balances sum to %d", sum)
		}
	})
}
