package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// TestSettleByStrangers: a compute receipt is settled by its payee
// through the node its reserve names, and by nobody else: not the payer,
// not a stranger who saw the receipt, not a user who claims the node with
// a cert it made itself, not the payee from another of its nodes, and
// not without the transaction's own signature. Each is refused and moves
// nothing; the provider's own settlement then pays.
func TestSettleByStrangers(t *testing.T) {
	b := newBook(t)
	alice, bob, eve := b.vouched(testLimit), newParty(t), newParty(t)
	res := reserveRun(b, alice, bob, 500, time.Minute)
	good := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10, Time: b.now.UnixNano()}
	honest := b.receipt(alice, bob, good, false)

	// bob's second node, which his cert makes his: not the reserve's.
	bob2 := newParty(t)
	bob2.key, bob2.user = bob.key, bob.user
	var err error
	if bob2.cert, err = nodecert.New(bob.key, bob2.node); err != nil {
		t.Fatal(err)
	}
	// eve's cert claims bob's node: a user's cert is only its word.
	claimed, err := nodecert.New(eve.key, bob.node)
	if err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]struct {
		st   func() *SignedTx
		want error
	}{
		"the payer, countersigned": {func() *SignedTx {
			sr := *honest.tx.Receipt
			sr.Countersign(alice.key)
			return b.sign(alice, Tx{Kind: Settle, From: alice.user, Receipt: &sr})
		}, ErrForged},
		"a stranger with the provider's receipt": {func() *SignedTx {
			st := b.sign(eve, Tx{Kind: Settle, From: eve.user, Receipt: honest.tx.Receipt})
			st.SignNode(eve.nodeKey)
			return st
		}, ErrForged},
		"a stranger claiming the provider's node": {func() *SignedTx {
			r := good
			r.Payer, r.Payee, r.Node = alice.user, eve.user, bob.node
			sr, err := NewReceipt(eve.key, claimed, r)
			if err != nil {
				t.Fatal(err)
			}
			st := b.sign(eve, Tx{Kind: Settle, From: eve.user, Receipt: sr})
			st.SignNode(eve.nodeKey) // eve has no key of bob's node
			return st
		}, ErrForged},
		"the payee without its node's signature": {func() *SignedTx {
			st := b.sign(bob, Tx{Kind: Settle, From: bob.user, Receipt: honest.tx.Receipt})
			return st
		}, ErrForged},
		"the payee through another of its nodes": {func() *SignedTx {
			return b.receipt(alice, bob2, good, false)
		}, ErrBadReceipt},
		"no transaction signature": {func() *SignedTx {
			st := b.receipt(alice, bob, good, false)
			st.Sig = nil
			return st
		}, ErrForged},
		"a transaction signature by someone else": {func() *SignedTx {
			st := b.receipt(alice, bob, good, false)
			st.Sig = signAs(eve.key, txDomain, st.Body)
			return st
		}, ErrForged},
	} {
		_, err := b.tx(c.st())
		if !errors.Is(err, c.want) {
			t.Errorf("settled by %s: %v, want %v", name, err, c.want)
		}
	}
	if b.balance(eve) != 0 || b.balance(bob) != 0 || b.balance(alice) != -500 {
		t.Fatalf("refused settlements moved credit: alice %d, bob %d, eve %d", b.balance(alice), b.balance(bob), b.balance(eve))
	}
	if _, err := b.tx(honest); err != nil {
		t.Fatalf("the provider's own settlement: %v", err)
	}
	if b.balance(bob) != 10 || b.balance(alice) != -10 {
		t.Fatalf("after the provider settled: alice %d, bob %d", b.balance(alice), b.balance(bob))
	}
}

// TestSettleAmounts: the provider settles what the receipt's CPU costs at
// the reserve's price, capped at the reserve's most, and only that; once.
func TestSettleAmounts(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	price := service.Price{PerCall: 10, PerCPUSecond: 1000} // reserveRun's
	cpu := 150 * time.Millisecond
	cost := price.Cost(cpu) // 160
	res := reserveRun(b, alice, bob, 500, time.Minute)
	r := Receipt{Kind: Compute, ID: res.tx.Nonce, CPU: int64(cpu)}
	for name, amount := range map[string]int64{
		"more than its usage costs": cost + 1,
		"less than its usage costs": cost - 1,
		"more than the reserve":     501,
		"far more than the reserve": MaxAmount, // more than that is malformed (TestOverflow)
	} {
		r := r
		r.Amount = amount
		if _, err := b.tx(b.receipt(alice, bob, r, false)); !errors.Is(err, ErrBadReceipt) {
			t.Errorf("a receipt for %s: %v, want ErrBadReceipt", name, err)
		}
	}
	r.Amount = cost
	st := b.receipt(alice, bob, r, false)
	if _, err := b.tx(st); err != nil {
		t.Fatal(err)
	}
	if b.balance(bob) != cost || b.balance(alice) != -cost {
		t.Fatalf("after settling: alice %d, bob %d; want %d each way", b.balance(alice), b.balance(bob), cost)
	}
	// The same settlement again, and the same receipt in a new one.
	_, err := b.tx(st)
	b.want(err, ErrReplay)
	_, err = b.tx(b.receipt(alice, bob, r, false))
	b.want(err, ErrSettled)
	// Long after, when the ledger has forgotten the nonce and the
	// settled ID: still refused.
	b.now = b.now.Add(3 * Window)
	b.cmd(&command{Op: opTick})
	if _, err := b.tx(st); err == nil {
		t.Fatal("a settlement replayed after its nonce was forgotten was applied")
	}
	if b.balance(bob) != cost {
		t.Fatalf("replays paid bob %d, want %d", b.balance(bob), cost)
	}

	// CPU that costs more than the reserve holds: the reserve, no more.
	res = reserveRun(b, alice, bob, 300, time.Minute)
	r = Receipt{Kind: Compute, ID: res.tx.Nonce, CPU: int64(time.Hour), Amount: 301}
	_, err = b.tx(b.receipt(alice, bob, r, false))
	b.want(err, ErrBadReceipt)
	r.Amount = 300
	if _, err := b.tx(b.receipt(alice, bob, r, false)); err != nil {
		t.Fatal(err)
	}
	if b.balance(bob) != cost+300 {
		t.Fatalf("a capped settlement paid bob %d in all, want %d", b.balance(bob), cost+300)
	}
}

// TestReleaseByStrangers: only the node a reserve names can give it back;
// a user whose cert claims that node cannot, so nobody can void a
// provider's pay by releasing the reserve of a run it is doing.
func TestReleaseByStrangers(t *testing.T) {
	b := newBook(t)
	alice, bob, eve := b.vouched(testLimit), newParty(t), newParty(t)
	res := reserveRun(b, alice, bob, 400, time.Minute)
	claimed, err := nodecert.New(eve.key, bob.node)
	if err != nil {
		t.Fatal(err)
	}
	st := b.sign(eve, Tx{Kind: Release, From: eve.user, Provider: bob.node, Ref: res.tx.Nonce})
	st.Cert = &claimed
	st.SignNode(eve.nodeKey)
	_, err = b.tx(st)
	b.want(err, ErrForged)
	// Without the node's signature, not even bob.
	st = b.sign(bob, Tx{Kind: Release, From: bob.user, Provider: bob.node, Ref: res.tx.Nonce})
	st.Cert = &bob.cert
	_, err = b.tx(st)
	b.want(err, ErrForged)
	st.SignNode(bob.nodeKey)
	if _, err := b.tx(st); err != nil {
		t.Fatal(err)
	}
	if b.balance(alice) != 0 {
		t.Fatalf("alice has %d after the release, want 0", b.balance(alice))
	}
}

// TestStorageSettledByPayer: a storage receipt is paid from the payer's
// balance, so only the payer settles it, countersigned.
func TestStorageSettledByPayer(t *testing.T) {
	b := newBook(t)
	owner, holder := b.vouched(testLimit), newParty(t)
	from := b.now.Add(-24 * time.Hour)
	r := Receipt{Kind: Storage, ID: storageID("o/s", holder.node, from.UnixNano()), Space: "o/s", Bytes: 1 << 30,
		From: from.UnixNano(), Until: b.now.UnixNano(), PerGiBDay: 50, Amount: 50}
	st := b.receipt(owner, holder, r, true)
	byHolder := b.sign(holder, Tx{Kind: Settle, From: holder.user, Receipt: st.tx.Receipt})
	byHolder.SignNode(holder.nodeKey)
	_, err := b.tx(byHolder)
	b.want(err, ErrForged)
	_, err = b.tx(b.receipt(owner, holder, r, false))
	b.want(err, ErrForged)
	if _, err := b.tx(st); err != nil {
		t.Fatal(err)
	}
	if b.balance(holder) != 50 {
		t.Fatalf("the holder has %d, want 50", b.balance(holder))
	}
}

// TestCheckComputeElapsed: a receipt that claims more CPU than the whole
// call took on the caller's clock is flagged, though it agrees with the
// usage the provider reported: a module runs on one thread.
func TestCheckComputeElapsed(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	res := reserveRun(b, alice, bob, 500, time.Minute)
	price := service.Price{PerCall: 10, PerCPUSecond: 1000}
	u := wasm.Usage{CPU: 300 * time.Millisecond, Wall: 300 * time.Millisecond}
	r := Receipt{Kind: Compute, ID: res.tx.Nonce, Payer: alice.user, Payee: bob.user, Node: bob.node,
		CPU: int64(u.CPU), Wall: int64(u.Wall), Amount: price.Cost(u.CPU)}
	if err := checkCompute(&r, res.tx, alice.user, bob.node, u, 100*time.Millisecond); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("300ms of CPU in a call of 100ms: %v", err)
	}
	if err := checkCompute(&r, res.tx, alice.user, bob.node, u, time.Second); err != nil {
		t.Fatalf("300ms of CPU in a call of 1s: %v", err)
	}
}
