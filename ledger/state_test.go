package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// party is a user with one node.
type party struct {
	key     ed25519.PrivateKey
	user    peer.ID
	node    peer.ID
	cert    nodecert.Cert
	nodeKey ed25519.PrivateKey
}

func newParty(t testing.TB) party {
	t.Helper()
	key := identity.Generate()
	user, err := identity.ID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	nodeKey := identity.Generate()
	node, err := identity.ID(nodeKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := nodecert.New(key, node)
	if err != nil {
		t.Fatal(err)
	}
	return party{key, user, node, cert, nodeKey}
}

// book is a ledger's state machine driven directly, with a clock of its
// own and a founding user (bank) whose grant vouches for the parties that
// pay, checking after every command, with arithmetic of its own
// (math/big), that the ledger is sound (sound), and that a refused
// command changed nothing.
type book struct {
	t    testing.TB
	m    *machine
	now  time.Time
	bank party
	// members are the ledger's members, whose node keys stamp its time
	// (made at the first tick).
	members []party
}

const (
	testLimit = 1000
	bankLimit = 1_000_000_000
)

func newBook(t testing.TB) *book {
	b := &book{t: t, m: newMachine(nil), now: time.Unix(1_800_000_000, 0), bank: newParty(t)}
	if _, err := b.cmd(&command{Op: opGenesis, Genesis: &Genesis{ID: "test", Created: b.now.UnixNano(), Limit: bankLimit, Founders: []peer.ID{b.bank.user}}}); err != nil {
		t.Fatal(err)
	}
	return b
}

// vouched returns a new party whom the bank vouches for with limit.
func (b *book) vouched(limit int64) party {
	b.t.Helper()
	p := newParty(b.t)
	if _, err := b.tx(b.sign(b.bank, Tx{Kind: Vouch, From: b.bank.user, To: p.user, Amount: limit})); err != nil {
		b.t.Fatal(err)
	}
	return p
}

func (b *book) cmd(c *command) (outcome, error) {
	b.t.Helper()
	if c.Time == 0 {
		c.Time = b.now.UnixNano()
	}
	switch {
	case c.Op == opTick && c.Stamps == nil:
		// Every member's clock says c.Time.
		c.Stamps = b.stamps(c.Time, c.Time, c.Time)
	case c.Op == opTx && c.Stamps == nil && b.m.s.Genesis != nil && b.now.UnixNano()-b.m.s.Quorum > int64(stampLag):
		// The proposer finds the quorum's time late, as propose does
		// (stampsIfLate), and asks the members.
		now := b.now.UnixNano()
		c.Stamps = b.stamps(c.Time, now, now)
	}
	before, _ := b.m.Snapshot()
	raw, err := wire.Marshal(c)
	if err != nil {
		b.t.Fatal(err)
	}
	out, err := b.m.Apply(raw)
	if err != nil {
		b.t.Fatalf("Apply returned an error: %v", err)
	}
	var o outcome
	if err := wire.Unmarshal(out, &o); err != nil {
		b.t.Fatal(err)
	}
	if err := sound(b.m.s); err != nil {
		b.t.Fatalf("after %+v: %v", o, err)
	}
	if o.Code == "invariant" {
		b.t.Fatalf("an entry tripped the ledger's own invariant check: %s", o.Msg)
	}
	err = errorOf(o.Code, o.Msg)
	if err != nil {
		after, _ := b.m.Snapshot()
		if string(before) != string(after) {
			b.t.Fatalf("a refused command (%v) changed the ledger", err)
		}
	}
	return o, err
}

// quorum returns the ledger's three members, making them (and telling
// the machine) the first time.
func (b *book) quorum() []party {
	if b.members == nil {
		b.members = []party{newParty(b.t), newParty(b.t), newParty(b.t)}
		b.m.setMembers([]peer.ID{b.members[0].node, b.members[1].node, b.members[2].node})
	}
	return b.members
}

// stamps returns the time stamps of the members whose clocks say times,
// one each, in the members' order.
func (b *book) stamps(times ...int64) []timeStamp {
	var out []timeStamp
	for i, t := range times {
		p := b.quorum()[i]
		out = append(out, stampBy(p, b.m.s.Genesis.ID, t))
	}
	return out
}

// stampBy is p's node's stamp of t for ledger.
func stampBy(p party, ledger string, t int64) timeStamp {
	return timeStamp{By: p.node, Time: t, Sig: ed25519.Sign(p.nodeKey, append([]byte(timeDomain), stampBytes(ledger, t)...))}
}

// tickBy applies a tick proposed by a member whose clock says at: its
// stamp, and the others' at the book's clock.
func (b *book) tickBy(at int64) (outcome, error) {
	b.t.Helper()
	now := b.now.UnixNano()
	return b.cmd(&command{Op: opTick, Time: at, Stamps: b.stamps(at, now, now)})
}

// sound checks the ledger's invariants with math/big, apart from the
// state machine's own arithmetic: balances and escrow sum to zero; the
// escrow is what the reserves hold; every line is held at both ends;
// every balance is at least minus its limit (what the genesis granted
// plus the lines to it less the lines from it); and the credit available
// to all is what the genesis granted, less the escrow. It also asks the
// state's own audit, which must agree.
func sound(s *state) error {
	if s.Genesis == nil {
		return nil
	}
	n := func(x int64) *big.Int { return big.NewInt(x) }
	sum, escrow := n(s.Escrow), n(0)
	for _, r := range s.Reserves {
		escrow.Add(escrow, n(r.Max))
	}
	if escrow.Cmp(n(s.Escrow)) != 0 {
		return fmt.Errorf("escrow %d, reserves hold %v", s.Escrow, escrow)
	}
	grant := func(u peer.ID) *big.Int {
		if len(s.Genesis.Founders) == 0 || slices.Contains(s.Genesis.Founders, u) {
			return n(s.Genesis.Limit)
		}
		return n(0)
	}
	granted := new(big.Int).Mul(n(s.Genesis.Limit), n(int64(len(s.Genesis.Founders))))
	avail := new(big.Int).Set(n(s.Escrow))
	for u, a := range s.Accounts {
		sum.Add(sum, n(a.Balance))
		limit := grant(u)
		for v, x := range a.Backers {
			if s.Accounts[v] == nil || s.Accounts[v].Lines[u] != x || x <= 0 {
				return fmt.Errorf("the line %s→%s of %d is held at one end", v, u, x)
			}
			limit.Add(limit, n(x))
		}
		for v, x := range a.Lines {
			if s.Accounts[v] == nil || s.Accounts[v].Backers[u] != x || x <= 0 {
				return fmt.Errorf("the line %s→%s of %d is held at one end", u, v, x)
			}
			limit.Sub(limit, n(x))
		}
		a := new(big.Int).Add(n(a.Balance), limit)
		if a.Sign() < 0 {
			return fmt.Errorf("%s is %v past its limit of %v", u, a, limit)
		}
		avail.Add(avail, a)
		if slices.Contains(s.Genesis.Founders, u) {
			granted.Sub(granted, n(s.Genesis.Limit))
		}
	}
	avail.Add(avail, granted) // founders with no account yet have theirs whole
	if sum.Sign() != 0 {
		return fmt.Errorf("balances and escrow sum to %v", sum)
	}
	total := new(big.Int).Mul(n(s.Genesis.Limit), n(int64(len(s.Genesis.Founders))))
	if len(s.Genesis.Founders) > 0 && avail.Cmp(total) != 0 {
		return fmt.Errorf("the credit available to all (and in escrow) is %v, the genesis granted %v", avail, total)
	}
	if err := s.audit(); err != nil {
		return fmt.Errorf("the state's own audit: %v", err)
	}
	return nil
}

func (b *book) tx(st *SignedTx) (outcome, error) {
	b.t.Helper()
	raw, err := st.Encode()
	if err != nil {
		b.t.Fatal(err)
	}
	return b.cmd(&command{Op: opTx, Tx: raw})
}

// txAt applies st in an entry stamped at (a member's clock).
func (b *book) txAt(st *SignedTx, at int64) (outcome, error) {
	b.t.Helper()
	raw, err := st.Encode()
	if err != nil {
		b.t.Fatal(err)
	}
	return b.cmd(&command{Op: opTx, Time: at, Tx: raw})
}

func (b *book) sign(p party, tx Tx) *SignedTx {
	b.t.Helper()
	if tx.Time == 0 {
		tx.Time = b.now.UnixNano()
	}
	st, err := Sign(p.key, tx)
	if err != nil {
		b.t.Fatal(err)
	}
	return st
}

func (b *book) balance(p party) int64 {
	if a := b.m.s.Accounts[p.user]; a != nil {
		return a.Balance
	}
	return 0
}

func (b *book) want(err error, target error) {
	b.t.Helper()
	if !errors.Is(err, target) {
		b.t.Fatalf("got %v, want %v", err, target)
	}
}

func TestTransfer(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 300, Memo: "lunch"})); err != nil {
		t.Fatal(err)
	}
	if b.balance(alice) != -300 || b.balance(bob) != 300 {
		t.Fatalf("balances %d and %d, want -300 and 300", b.balance(alice), b.balance(bob))
	}
	h := b.m.s.Accounts[bob.user].History
	if len(h) != 1 || h[0].Amount != 300 || h[0].Peer != alice.user || h[0].Memo != "lunch" {
		t.Fatalf("bob's history: %+v", h)
	}
}

func TestRefusedTransactions(t *testing.T) {
	b := newBook(t)
	alice, bob, eve := b.vouched(testLimit), newParty(t), newParty(t)

	t.Run("signed by someone else", func(t *testing.T) {
		st := b.sign(eve, Tx{Kind: Transfer, From: alice.user, To: eve.user, Amount: 10})
		_, err := b.tx(st)
		b.want(err, ErrForged)
	})
	t.Run("altered after signing", func(t *testing.T) {
		st := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})
		var body Tx
		if err := wire.Unmarshal(st.Body, &body); err != nil {
			t.Fatal(err)
		}
		body.To, body.Amount = eve.user, 900
		st.Body, _ = wire.Marshal(&body)
		_, err := b.tx(st)
		b.want(err, ErrForged)
	})
	t.Run("replayed", func(t *testing.T) {
		st := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 5})
		if _, err := b.tx(st); err != nil {
			t.Fatal(err)
		}
		_, err := b.tx(st)
		b.want(err, ErrReplay)
		if b.balance(bob) != 5 {
			t.Fatalf("bob has %d after a replay, want 5", b.balance(bob))
		}
	})
	t.Run("beyond the limit", func(t *testing.T) {
		_, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: testLimit}))
		b.want(err, ErrInsufficient)
		// Exactly down to the limit is allowed.
		if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: testLimit - 5})); err != nil {
			t.Fatal(err)
		}
		_, err = b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1}))
		b.want(err, ErrInsufficient)
	})
	t.Run("old", func(t *testing.T) {
		_, err := b.tx(b.sign(bob, Tx{Kind: Transfer, From: bob.user, To: alice.user, Amount: 1, Time: b.now.Add(-Window - time.Second).UnixNano()}))
		b.want(err, ErrStale)
	})
	t.Run("malformed", func(t *testing.T) {
		for name, tx := range map[string]Tx{
			"to itself":   {Kind: Transfer, From: bob.user, To: bob.user, Amount: 1},
			"zero":        {Kind: Transfer, From: bob.user, To: alice.user},
			"negative":    {Kind: Transfer, From: bob.user, To: alice.user, Amount: -50},
			"unknown":     {Kind: 99, From: bob.user},
			"long memo":   {Kind: Transfer, From: bob.user, To: alice.user, Amount: 1, Memo: string(make([]byte, MaxMemo+1))},
			"no provider": {Kind: Reserve, From: bob.user, Amount: 1, Expires: b.now.Add(time.Minute).UnixNano()},
		} {
			_, err := b.tx(b.sign(bob, tx))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: got %v, want ErrMalformed", name, err)
			}
		}
	})
}

// run is one priced run: alice calls a service on bob's node.
func reserveRun(b *book, payer, provider party, most int64, ttl time.Duration) *SignedTx {
	b.t.Helper()
	st := b.sign(payer, Tx{Kind: Reserve, From: payer.user, Provider: provider.node, Amount: most,
		Price: service.Price{PerCall: 10, PerCPUSecond: 1000}, Expires: b.now.Add(ttl).UnixNano()})
	if _, err := b.tx(st); err != nil {
		b.t.Fatal(err)
	}
	return st
}

// receipt makes the settlement of r, a receipt payee signs, as its
// settler makes it: the payee (through its node) for a compute receipt,
// the payer for a storage one, countersigned if countersign is set.
func (b *book) receipt(payer, payee party, r Receipt, countersign bool) *SignedTx {
	b.t.Helper()
	if r.Time == 0 {
		r.Time = b.now.UnixNano()
	}
	r.Payer, r.Payee, r.Node = payer.user, payee.user, payee.node
	sr, err := NewReceipt(payee.key, payee.cert, r)
	if err != nil {
		b.t.Fatal(err)
	}
	if r.Kind == Compute {
		st := b.sign(payee, Tx{Kind: Settle, From: payee.user, Receipt: sr})
		st.SignNode(payee.nodeKey)
		return st
	}
	if countersign {
		sr.Countersign(payer.key)
	}
	return b.sign(payer, Tx{Kind: Settle, From: payer.user, Receipt: sr})
}

func TestEscrow(t *testing.T) {
	b := newBook(t)
	alice, bob, eve := b.vouched(testLimit), newParty(t), newParty(t)
	res := reserveRun(b, alice, bob, 500, time.Minute)
	if b.balance(alice) != -500 || b.m.s.Escrow != 500 {
		t.Fatalf("after the reserve: alice %d, escrow %d", b.balance(alice), b.m.s.Escrow)
	}
	usage := wasm.Usage{CPU: 150 * time.Millisecond, Wall: 200 * time.Millisecond}
	cost := service.Price{PerCall: 10, PerCPUSecond: 1000}.Cost(usage.CPU) // 10 + 150
	good := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: cost, CPU: int64(usage.CPU), Wall: int64(usage.Wall)}

	t.Run("settled by the payer", func(t *testing.T) {
		st := b.receipt(alice, bob, good, true)
		st.tx.Receipt.Countersign(alice.key)
		_, err := b.tx(b.sign(alice, Tx{Kind: Settle, From: alice.user, Receipt: st.tx.Receipt}))
		b.want(err, ErrForged)
	})
	t.Run("more than the usage costs", func(t *testing.T) {
		r := good
		r.Amount = cost + 1
		_, err := b.tx(b.receipt(alice, bob, r, true))
		b.want(err, ErrBadReceipt)
	})
	t.Run("from another node", func(t *testing.T) {
		_, err := b.tx(b.receipt(alice, eve, good, true))
		b.want(err, ErrBadReceipt)
	})
	t.Run("for a job never reserved", func(t *testing.T) {
		r := good
		r.ID = newNonce()
		_, err := b.tx(b.receipt(alice, bob, r, true))
		b.want(err, ErrNoReserve)
	})
	t.Run("altered after signing", func(t *testing.T) {
		st := b.receipt(alice, bob, good, true)
		var r Receipt
		if err := wire.Unmarshal(st.tx.Receipt.Body, &r); err != nil {
			t.Fatal(err)
		}
		r.Amount, r.CPU = 500, int64(time.Second)
		st.tx.Receipt.Body, _ = wire.Marshal(&r)
		st = b.sign(bob, *st.tx)
		st.SignNode(bob.nodeKey)
		_, err := b.tx(st)
		b.want(err, ErrForged)
	})
	t.Run("settles once", func(t *testing.T) {
		st := b.receipt(alice, bob, good, true)
		o, err := b.tx(st)
		if err != nil {
			t.Fatal(err)
		}
		if o.Amount != cost || b.balance(bob) != cost || b.balance(alice) != -cost || b.m.s.Escrow != 0 {
			t.Fatalf("after settling: paid %d, bob %d, alice %d, escrow %d; want %d each way and no escrow", o.Amount, b.balance(bob), b.balance(alice), b.m.s.Escrow, cost)
		}
		_, err = b.tx(st)
		b.want(err, ErrReplay) // the same settlement again
		_, err = b.tx(b.receipt(alice, bob, good, true))
		b.want(err, ErrSettled) // the same receipt, settled anew
	})
	t.Run("CPU past the reserve is capped", func(t *testing.T) {
		res := reserveRun(b, alice, bob, 100, time.Minute)
		r := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 100, CPU: int64(time.Hour)}
		if _, err := b.tx(b.receipt(alice, bob, r, true)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestReserveExpiresAndReleases(t *testing.T) {
	b := newBook(t)
	alice, bob, eve := b.vouched(testLimit), newParty(t), newParty(t)
	res := reserveRun(b, alice, bob, 400, time.Minute)
	b.cmd(&command{Op: opTick, Time: b.now.Add(30 * time.Second).UnixNano()})
	if b.balance(alice) != -400 {
		t.Fatalf("a tick before expiry returned the reserve")
	}
	b.cmd(&command{Op: opTick, Time: b.now.Add(time.Minute).UnixNano()})
	if b.balance(alice) != 0 || b.m.s.Escrow != 0 || len(b.m.s.Reserves) != 0 {
		t.Fatalf("after expiry: alice %d, escrow %d, %d reserves", b.balance(alice), b.m.s.Escrow, len(b.m.s.Reserves))
	}
	r := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10}
	_, err := b.tx(b.receipt(alice, bob, r, true))
	b.want(err, ErrSettled) // closed by expiry: nothing to settle

	res = reserveRun(b, alice, bob, 400, time.Minute)
	rel := func(by party) *SignedTx {
		st := b.sign(by, Tx{Kind: Release, From: by.user, Provider: bob.node, Ref: res.tx.Nonce})
		st.Cert = &by.cert
		st.SignNode(by.nodeKey)
		return st
	}
	// Eve cannot release a reserve made for bob's node: her cert is for
	// her own node.
	_, err = b.tx(rel(eve))
	b.want(err, ErrForged)
	if _, err := b.tx(rel(bob)); err != nil {
		t.Fatal(err)
	}
	if b.balance(alice) != 0 || b.balance(bob) != 0 {
		t.Fatalf("after release: alice %d, bob %d", b.balance(alice), b.balance(bob))
	}
}

func TestStorageReceipts(t *testing.T) {
	b := newBook(t)
	owner, holder := b.vouched(testLimit), newParty(t)
	from := b.now.Add(-24 * time.Hour)
	r := Receipt{Kind: Storage, ID: storageID("o/s", holder.node, from.UnixNano()), Space: "o/s", Bytes: 2 << 30,
		From: from.UnixNano(), Until: b.now.UnixNano(), PerGiBDay: 50, Amount: 100}
	if _, err := b.tx(b.receipt(owner, holder, r, true)); err != nil {
		t.Fatal(err)
	}
	if b.balance(holder) != 100 {
		t.Fatalf("holder has %d, want 100 (2 GiB for a day at 50)", b.balance(holder))
	}
	_, err := b.tx(b.receipt(owner, holder, r, true))
	b.want(err, ErrSettled)
	r.ID, r.Amount = storageID("o/s", holder.node, from.UnixNano()+1), 101
	_, err = b.tx(b.receipt(owner, holder, r, true))
	b.want(err, ErrBadReceipt)
}

func TestSnapshotRestore(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), b.vouched(testLimit)
	b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 7}))
	reserveRun(b, bob, alice, 30, time.Minute)
	snap, err := b.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2 := newMachine(nil)
	if err := m2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !sameState(b.m.s, m2.s) {
		t.Fatal("the restored state differs")
	}
	if err := m2.Restore([]byte{0xff}); err == nil {
		t.Fatal("restored garbage")
	}
}

func TestCredits(t *testing.T) {
	for in, want := range map[string]int64{"12": 12000, "0.5": 500, "0.001": 1, "1.25": 1250, "3.": 3000} {
		got, err := ParseCredits(in)
		if err != nil || got != want {
			t.Errorf("ParseCredits(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.2345", "1e3", "abc", "99999999999999999999"} {
		if _, err := ParseCredits(bad); err == nil {
			t.Errorf("ParseCredits(%q) accepted", bad)
		}
	}
	if Credits(-1500) != "-1.500" || Credits(7) != "0.007" {
		t.Errorf("Credits: %s, %s", Credits(-1500), Credits(7))
	}
}

func TestCheckComputeCatchesInflatedCPU(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	res := reserveRun(b, alice, bob, 500, time.Minute)
	metered := wasm.Usage{CPU: 100 * time.Millisecond, Wall: 120 * time.Millisecond}
	price := service.Price{PerCall: 10, PerCPUSecond: 1000}
	claimed := Receipt{Kind: Compute, ID: res.tx.Nonce, Payer: alice.user, Payee: bob.user, Node: bob.node,
		CPU: int64(300 * time.Millisecond), Wall: int64(metered.Wall), Amount: price.Cost(300 * time.Millisecond)}
	if err := checkCompute(&claimed, res.tx, alice.user, bob.node, metered, 0); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("a receipt claiming 300ms for a run metered at 100ms: %v", err)
	}
	honest := claimed
	honest.CPU, honest.Amount = int64(metered.CPU), price.Cost(metered.CPU)
	if err := checkCompute(&honest, res.tx, alice.user, bob.node, metered, 0); err != nil {
		t.Fatal(err)
	}
}

// TestHoldRefuses: a provider puts on the ledger only a reserve made for
// it, at the service's price, covering the run's limit and lasting until
// the run can be settled; it refuses the others before asking the ledger.
func TestHoldRefuses(t *testing.T) {
	b := newBook(t)
	alice, bob := newParty(t), newParty(t)
	pay := computePay{&Manager{self: bob.node}}
	price := service.Price{PerCall: 10, PerCPUSecond: 1000}
	run := 10 * time.Second
	for name, tx := range map[string]Tx{
		"another node":  {Kind: Reserve, From: alice.user, Provider: alice.node, Amount: price.Most(run), Price: price, Expires: time.Now().Add(time.Hour).UnixNano()},
		"another price": {Kind: Reserve, From: alice.user, Provider: bob.node, Amount: price.Most(run), Price: service.Price{PerCall: 1}, Expires: time.Now().Add(time.Hour).UnixNano()},
		"too little":    {Kind: Reserve, From: alice.user, Provider: bob.node, Amount: price.Most(run) - 1, Price: price, Expires: time.Now().Add(time.Hour).UnixNano()},
		"too short":     {Kind: Reserve, From: alice.user, Provider: bob.node, Amount: price.Most(run), Price: price, Expires: time.Now().Add(run).UnixNano()},
		"not a reserve": {Kind: Transfer, From: alice.user, To: bob.user, Amount: 5},
	} {
		tx.Time = time.Now().UnixNano()
		raw, err := b.sign(alice, tx).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pay.Hold(t.Context(), raw, price, run); !errors.Is(err, ErrBadReceipt) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// sameState reports whether two states are equal, for tests of
// determinism and snapshots.
func sameState(a, b *state) bool {
	x, err1 := wire.Marshal(a)
	y, err2 := wire.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// TestRestoreOldSnapshot: a snapshot made before trust lines and the
// ledger's clock restores. Every account keeps the genesis's limit, as it
// had; the clock starts from the latest time the snapshot remembers; and
// a nonce it kept (by the time it was applied, then) is not forgotten
// while its transaction could still be replayed.
func TestRestoreOldSnapshot(t *testing.T) {
	type oldGenesis struct {
		ID      string `cbor:"1,keyasint"`
		Created int64  `cbor:"2,keyasint"`
		Limit   int64  `cbor:"3,keyasint"`
	}
	type oldAccount struct {
		Balance  int64   `cbor:"1,keyasint"`
		Reserved int64   `cbor:"2,keyasint,omitempty"`
		History  []Entry `cbor:"3,keyasint,omitempty"`
	}
	type oldState struct {
		Genesis  *oldGenesis             `cbor:"1,keyasint,omitempty"`
		Accounts map[peer.ID]*oldAccount `cbor:"2,keyasint"`
		Escrow   int64                   `cbor:"3,keyasint"`
		Reserves map[string]reserve      `cbor:"4,keyasint"`
		Closed   map[string]int64        `cbor:"5,keyasint"`
		Nonces   map[string]int64        `cbor:"6,keyasint"`
		Seq      uint64                  `cbor:"7,keyasint"`
	}
	now := time.Unix(1_800_000_000, 0)
	alice, bob, fresh := newParty(t), newParty(t), newParty(t)
	// Signed 5 minutes ago, applied by a member 4 minutes behind that.
	paid, err := Sign(alice.key, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 300, Time: now.Add(-5 * time.Minute).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := wire.Marshal(&oldState{
		Genesis:  &oldGenesis{ID: "old", Created: now.Add(-time.Hour).UnixNano(), Limit: testLimit},
		Accounts: map[peer.ID]*oldAccount{alice.user: {Balance: -300}, bob.user: {Balance: 300}},
		Reserves: map[string]reserve{}, Closed: map[string]int64{},
		Nonces: map[string]int64{paid.tx.ID(): now.Add(-9 * time.Minute).UnixNano()}, Seq: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := &book{t: t, m: newMachine(nil), now: now}
	if err := b.m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if err := sound(b.m.s); err != nil {
		t.Fatal(err)
	}
	if got := b.m.s.Clock; got != now.Add(-9*time.Minute).UnixNano() {
		t.Fatalf("the clock starts at %v", time.Unix(0, got))
	}
	// The ledger's rule stays the old one: every key has the limit.
	for _, c := range []struct {
		from, to party
		amount   int64
		want     error
	}{
		{alice, bob, testLimit - 300 + 1, ErrInsufficient},
		{alice, bob, testLimit - 300, nil},
		{fresh, bob, testLimit, nil},
	} {
		if _, err := b.tx(b.sign(c.from, Tx{Kind: Transfer, From: c.from.user, To: c.to.user, Amount: c.amount})); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Fatalf("a transfer of %d: %v, want %v", c.amount, err, c.want)
		}
	}
	// Three minutes on, the old nonce (applied at -9 minutes) is kept: its
	// transaction (signed at -5) is still in the window.
	b.now = now.Add(3 * time.Minute)
	if _, err := b.tx(b.sign(bob, Tx{Kind: Transfer, From: bob.user, To: alice.user, Amount: 1})); err != nil {
		t.Fatal(err)
	}
	b.cmd(&command{Op: opTick})
	_, err = b.tx(paid)
	b.want(err, ErrReplay)
}

// TestBrokenSnapshot: a ledger broken by the old rules (an overflow that
// wrapped two balances) restores, says so at error, and can still be
// mended: a payment to the account past its limit is applied, a spend
// from it is refused.
func TestBrokenSnapshot(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	alice, bob := newParty(t), newParty(t)
	broken := newState()
	broken.Genesis = &Genesis{ID: "old", Created: now.UnixNano(), Limit: testLimit}
	broken.Accounts[alice.user] = &account{Balance: math.MaxInt64 - 1}
	broken.Accounts[bob.user] = &account{Balance: math.MinInt64 + 1}
	snap, err := wire.Marshal(broken)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := &book{t: t, m: newMachine(slog.New(slog.NewTextHandler(&logs, nil))), now: now}
	if err := b.m.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "past its limit") {
		t.Fatalf("restoring a broken ledger logged %q", logs.String())
	}
	apply := func(from, to party, amount int64) error {
		st := b.sign(from, Tx{Kind: Transfer, From: from.user, To: to.user, Amount: amount})
		raw, _ := st.Encode()
		c, _ := wire.Marshal(&command{Op: opTx, Time: now.UnixNano(), Tx: raw})
		out, _ := b.m.Apply(c)
		var o outcome
		wire.Unmarshal(out, &o)
		return errorOf(o.Code, o.Msg)
	}
	if err := apply(alice, bob, 1000); err != nil {
		t.Fatalf("mending the broken account: %v", err)
	}
	if err := apply(bob, alice, 1); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("a spend from the broken account: %v", err)
	}
	if got := b.balance(bob); got != math.MinInt64+1001 {
		t.Fatalf("the broken account has %d", got)
	}
}
