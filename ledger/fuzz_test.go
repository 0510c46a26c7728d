package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
)

// seeds returns well-formed transactions of every kind, encoded.
func seeds(t testing.TB) [][]byte {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
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

// FuzzCommand feeds the state machine arbitrary commands, after a
// genesis: it must never panic, never return an error, and the ledger
// must stay sound (book.cmd checks it with math/big after each).
func FuzzCommand(f *testing.F) {
	for _, s := range seeds(f) {
		c, _ := wire.Marshal(&command{Op: opTx, Time: time.Unix(1_800_000_000, 0).UnixNano(), Tx: s})
		f.Add(c)
	}
	f.Add([]byte{0xa1, 0x01, 0x03})
	f.Fuzz(func(t *testing.T, c []byte) {
		b := newBook(t)
		out, err := b.m.Apply(c)
		if err != nil {
			t.Fatalf("Apply returned an error: %v", err)
		}
		var o outcome
		if err := wire.Unmarshal(out, &o); err != nil || o.Code == "invariant" {
			t.Fatalf("outcome %+v, %v", o, err)
		}
		if err := sound(b.m.s); err != nil {
			t.Fatal(err)
		}
	})
}

// fuzzParties are the keys FuzzApply signs with, the same on every run:
// 0 and 1 found the ledger, the others start with nothing.
func fuzzParties(t testing.TB) []party {
	var ps []party
	for i := range 6 {
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize))
		nodeKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 101)}, ed25519.SeedSize))
		user, err := identity.ID(key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		node, err := identity.ID(nodeKey.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := nodecert.New(key, node)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, party{key, user, node, cert, nodeKey})
	}
	return ps
}

// fuzzRecord is the size of one step of FuzzApply's input.
const fuzzRecord = 12

// FuzzApply drives the state machine with signed transactions: each 12
// bytes of input describe one step (what to do, who signs, to whom, an
// amount among the extremes or any int64, the signed time and the
// proposing member's clock, each skewed either way, and which earlier
// transaction or reserve to reuse). After every step the ledger must be
// sound, checked with math/big apart from the ledger's own arithmetic
// (book.cmd): balances and escrow sum to zero, no balance is past its
// limit, and the credit available to all is what the genesis granted.
func FuzzApply(f *testing.F) {
	f.Add([]byte{
		4, 0, 2, 6, 100, 0, 0, 0, 0, 0, 0, 0, // the founder vouches 100 for 2
		0, 2, 3, 6, 50, 0, 0, 0, 0, 0, 0, 0, // 2 pays 3 50
		0, 2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, // 2 pays 3 MaxInt64
		1, 0, 3, 6, 90, 0, 0, 0, 0, 10, 1, 5, // the founder reserves 90 for a run on 3
		3, 0, 3, 6, 10, 0, 0, 0, 0, 5, 1, 0, // 3 bills it, the founder settles
		6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, // a replay
		5, 0, 0, 0, 0, 0, 25, 0, 0, 0, 0, 0, // a tick 25 minutes ahead
	})
	f.Add([]byte{
		0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, // founder 0 pays founder 1 MaxAmount
		0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, // and back
		4, 1, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, // founder 1 vouches MaxAmount for 5
		4, 0, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, // founder 0 too
		0, 5, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, // 5 pays 4 MaxAmount
		4, 1, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0, // founder 1 withdraws its line
		1, 5, 4, 7, 0, 0, 0, 0, 0, 0, 0, 5, // 5 reserves MaxAmount+1
		1, 1, 4, 3, 0, 0, 0, 0, 0, 0, 0, 5, // founder 1 reserves MaxAmount
		7, 5, 4, 6, 1, 0, 0, 0, 0, 0, 64, 1, // a storage receipt
		2, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, // a release
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		ps := fuzzParties(t)
		b := &book{t: t, m: newMachine(nil), now: time.Unix(1_800_000_000, 0), bank: ps[0]}
		if _, err := b.cmd(&command{Op: opGenesis, Genesis: &Genesis{ID: "fuzz", Created: b.now.UnixNano(), Limit: MaxAmount,
			Founders: []peer.ID{ps[0].user, ps[1].user}}}); err != nil {
			t.Fatal(err)
		}
		type held struct {
			tx       *SignedTx
			provider party
		}
		var sent []*SignedTx
		var reserves []held
		for len(in) >= fuzzRecord {
			r := in[:fuzzRecord]
			in = in[fuzzRecord:]
			from, to := ps[int(r[1])%len(ps)], ps[int(r[2])%len(ps)]
			amount := fuzzAmount(r)
			signed := b.now.Add(time.Duration(int8(r[5])) * time.Minute).UnixNano()
			at := b.now.Add(time.Duration(int8(r[6])) * time.Minute).UnixNano()
			b.now = b.now.Add(time.Duration(r[7]%4) * time.Minute)
			pick := int(r[8])
			var st *SignedTx
			switch r[0] % 8 {
			case 0:
				st = b.sign(from, Tx{Kind: Transfer, From: from.user, To: to.user, Amount: amount, Time: signed})
			case 1:
				st = b.sign(from, Tx{Kind: Reserve, From: from.user, Provider: to.node, Amount: amount, Time: signed,
					Price: Price{PerCall: uint64(r[9]), PerCPUSecond: uint64(r[10]) * 1000}, Expires: signed + int64(r[11]%16)*int64(time.Minute)})
				reserves = append(reserves, held{st, to})
			case 2:
				if len(reserves) == 0 {
					continue
				}
				h := reserves[pick%len(reserves)]
				st = b.sign(h.provider, Tx{Kind: Release, From: h.provider.user, Provider: h.provider.node, Ref: h.tx.tx.Nonce, Time: signed})
				st.Cert = &h.provider.cert
			case 3:
				if len(reserves) == 0 {
					continue
				}
				h := reserves[pick%len(reserves)]
				payer := ps[0]
				for _, p := range ps {
					if p.user == h.tx.tx.From {
						payer = p
					}
				}
				cpu := time.Duration(r[9]) * time.Millisecond
				if r[10]&1 != 0 {
					amount = h.tx.tx.Price.Cost(cpu)
				}
				st = b.settleAs(payer, h.provider, Receipt{Kind: Compute, ID: h.tx.tx.Nonce, Amount: amount, CPU: int64(cpu), Time: signed}, r[10]&2 == 0, r[10]&4 != 0)
			case 4:
				st = b.sign(from, Tx{Kind: Vouch, From: from.user, To: to.user, Amount: amount, Time: signed})
			case 5:
				b.tickBy(at)
				continue
			case 6:
				if len(sent) == 0 {
					continue
				}
				st = sent[pick%len(sent)]
			case 7:
				period := time.Duration(r[9]%48+1) * time.Hour
				size := int64(r[10]) << 24
				if r[11]&1 != 0 {
					amount = StorageCost(size, period, 50)
				}
				rc := Receipt{Kind: Storage, ID: storageID("o/s", to.node, int64(pick)), Space: "o/s", Bytes: size,
					From: signed - int64(period), Until: signed, PerGiBDay: 50, Amount: amount, Time: signed}
				st = b.settleAs(from, to, rc, r[11]&2 == 0, r[11]&4 != 0)
			}
			b.txAt(st, at)
			sent = append(sent, st)
		}
	})
}

// fuzzAmount picks a step's amount: an extreme, or the int64 its bytes
// spell.
func fuzzAmount(r []byte) int64 {
	switch r[3] % 8 {
	case 0:
		return int64(binary.BigEndian.Uint64(r[4:12]))
	case 1:
		return math.MaxInt64
	case 2:
		return math.MinInt64
	case 3:
		return MaxAmount
	case 4:
		return 0
	case 5:
		return -1
	case 6:
		return int64(r[4])
	}
	return MaxAmount + 1
}

// settleAs signs a settlement of r between payer and payee: countersigned
// if agreed, and submitted by the payee if byPayee, else by the payer.
func (b *book) settleAs(payer, payee party, r Receipt, agreed, byPayee bool) *SignedTx {
	b.t.Helper()
	r.Payer, r.Payee, r.Node = payer.user, payee.user, payee.node
	sr, err := NewReceipt(payee.key, payee.cert, r)
	if err != nil {
		b.t.Fatal(err)
	}
	if agreed {
		sr.Countersign(payer.key)
	}
	by := payer
	if byPayee {
		by = payee
	}
	return b.sign(by, Tx{Kind: Settle, From: by.user, Receipt: sr, Time: r.Time})
}
