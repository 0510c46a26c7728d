package ledger

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/service"
)

// The attacks of issue 33 on the ledger's rules, each as a table of what
// an attacker sends and what the ledger must answer. book.cmd checks
// after every command, with math/big, that the ledger is sound.

// TestOverflow: amounts at the ends of int64 mint nothing, through any
// kind of transaction; each is refused before it moves anything.
func TestOverflow(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 2})); err != nil {
		t.Fatal(err)
	}
	later := b.now.Add(time.Minute).UnixNano()
	for _, c := range []struct {
		name string
		tx   Tx
		want error
	}{
		{"transfer of MaxInt64 from -2", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: math.MaxInt64}, ErrMalformed},
		{"transfer of MinInt64", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: math.MinInt64}, ErrMalformed},
		{"transfer of -1", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: -1}, ErrMalformed},
		{"transfer of MaxAmount+1", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: MaxAmount + 1}, ErrMalformed},
		{"transfer of MaxAmount", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: MaxAmount}, ErrInsufficient},
		{"transfer of its limit +1", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: testLimit - 1}, ErrInsufficient},
		{"reserve of MaxInt64", Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: math.MaxInt64, Expires: later}, ErrMalformed},
		{"reserve of MinInt64", Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: math.MinInt64, Expires: later}, ErrMalformed},
		{"reserve of MaxAmount", Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: MaxAmount, Expires: later}, ErrInsufficient},
		{"reserve priced at MaxUint64", Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: 1, Expires: later,
			Price: service.Price{PerCall: math.MaxUint64}}, ErrMalformed},
		{"reserve for ever", Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: 1, Expires: math.MaxInt64}, ErrMalformed},
		{"line of MaxInt64", Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: math.MaxInt64}, ErrMalformed},
		{"line of MinInt64", Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: math.MinInt64}, ErrMalformed},
		{"line of -1", Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: -1}, ErrMalformed},
		{"line of MaxAmount", Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: MaxAmount}, ErrInsufficient},
		{"a time at the end of int64", Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1, Time: math.MaxInt64}, ErrMalformed},
	} {
		_, err := b.tx(b.sign(alice, c.tx))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	res := reserveRun(b, alice, bob, 10, time.Minute)
	for _, amount := range []int64{math.MaxInt64, MaxAmount + 1} {
		r := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: amount, CPU: math.MaxInt64}
		if _, err := b.tx(b.receipt(alice, bob, r, true)); !errors.Is(err, ErrMalformed) {
			t.Errorf("a receipt of %d: %v", amount, err)
		}
	}
	if got := b.balance(alice); got != -12 {
		t.Fatalf("alice has %d after the attempts, want -12", got)
	}
	for name, g := range map[string]*Genesis{
		"limit MaxInt64": {ID: "x", Created: 1, Limit: math.MaxInt64},
		"limit -1":       {ID: "x", Created: 1, Limit: -1},
	} {
		if _, err := checkGenesis(g); !errors.Is(err, ErrMalformed) {
			t.Errorf("genesis with %s: %v", name, err)
		}
	}
}

// TestOverflowAcrossEntries: on a ledger from before trust lines (where
// every key has the limit), 1030 keys each pay MaxAmount to one account,
// and 1030 others each reserve MaxAmount: the payee's balance and the
// escrow reach the end of int64 and stop there; the entries past it are
// refused as too large, and nothing wraps.
func TestOverflowAcrossEntries(t *testing.T) {
	if testing.Short() {
		t.Skip("signs two thousand transactions; skipped in -short mode")
	}
	b := &book{t: t, m: newMachine(nil), now: time.Unix(1_800_000_000, 0)}
	if _, err := b.cmd(&command{Op: opGenesis, Genesis: &Genesis{ID: "old", Created: b.now.UnixNano(), Limit: MaxAmount}}); err != nil {
		t.Fatal(err)
	}
	rich, provider := newParty(t), newParty(t)
	// Applied straight to the machine, as book.cmd's snapshot of every
	// step would cost too much here; sound checks the end.
	apply := func(tx Tx) error {
		key := identity.Generate()
		tx.From, _ = identity.ID(key.Public().(ed25519.PublicKey))
		tx.Time = b.now.UnixNano()
		st, err := Sign(key, tx)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := st.Encode()
		c, _ := wire.Marshal(&command{Op: opTx, Time: tx.Time, Tx: raw})
		out, _ := b.m.Apply(c)
		var o outcome
		wire.Unmarshal(out, &o)
		return errorOf(o.Code, o.Msg)
	}
	count := func(tx Tx) (ok, tooLarge int) {
		for range 1030 {
			switch err := apply(tx); {
			case err == nil:
				ok++
			case errors.Is(err, ErrTooLarge):
				tooLarge++
			default:
				t.Fatal(err)
			}
		}
		return ok, tooLarge
	}
	paid, refused := count(Tx{Kind: Transfer, To: rich.user, Amount: MaxAmount})
	held, full := count(Tx{Kind: Reserve, Provider: provider.node, Amount: MaxAmount, Expires: b.now.Add(time.Minute).UnixNano()})
	if err := sound(b.m.s); err != nil {
		t.Fatal(err)
	}
	want := new(big.Int).Mul(big.NewInt(MaxAmount), big.NewInt(1024))
	if paid != 1024 || refused != 6 || big.NewInt(b.balance(rich)).Cmp(want) != 0 {
		t.Fatalf("%d paid, %d refused, the payee has %d; want 1024, 6 and %v", paid, refused, b.balance(rich), want)
	}
	if held != 1024 || full != 6 || big.NewInt(b.m.s.Escrow).Cmp(want) != 0 {
		t.Fatalf("%d reserves held, %d refused, escrow %d; want 1024, 6 and %v", held, full, b.m.s.Escrow, want)
	}
}

// TestWideArithmetic: the ledger's checked and 128-bit arithmetic agree
// with math/big at the ends of int64.
func TestWideArithmetic(t *testing.T) {
	edge := []int64{0, 1, -1, 2, -2, MaxAmount, -MaxAmount, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	fits := func(x *big.Int) bool { return x.IsInt64() }
	for _, a := range edge {
		for _, c := range edge {
			sum := new(big.Int).Add(big.NewInt(a), big.NewInt(c))
			if s, ok := add64(a, c); ok != fits(sum) || ok && s != sum.Int64() {
				t.Errorf("add64(%d, %d) = %d, %v; want %v", a, c, s, ok, sum)
			}
			diff := new(big.Int).Sub(big.NewInt(a), big.NewInt(c))
			if d, ok := sub64(a, c); ok != fits(diff) || ok && d != diff.Int64() {
				t.Errorf("sub64(%d, %d) = %d, %v; want %v", a, c, d, ok, diff)
			}
		}
	}
	var w wide
	ref := new(big.Int)
	for i := range 1000 {
		x := edge[i%len(edge)]
		if i%3 == 0 {
			w.sub(x)
			ref.Sub(ref, big.NewInt(x))
		} else {
			w.add(x)
			ref.Add(ref, big.NewInt(x))
		}
		got := new(big.Int).Lsh(big.NewInt(w.hi), 64)
		got.Add(got, new(big.Int).SetUint64(w.lo))
		if got.Cmp(ref) != 0 || w.neg() != (ref.Sign() < 0) || w.zero() != (ref.Sign() == 0) {
			t.Fatalf("step %d: wide %v, big %v", i, got, ref)
		}
		want := ref.Int64()
		switch {
		case ref.Cmp(big.NewInt(math.MaxInt64)) > 0:
			want = math.MaxInt64
		case ref.Cmp(big.NewInt(math.MinInt64)) < 0:
			want = math.MinInt64
		}
		if w.int64() != want {
			t.Fatalf("step %d: int64() = %d, want %d", i, w.int64(), want)
		}
	}
}

// TestSybil: fresh keys have no credit: 100 of them paying, reserving or
// vouching for one account give it nothing. A user with credit can split
// it among 100 keys, and they can pass on to one account exactly what it
// vouched, no more.
func TestSybil(t *testing.T) {
	b := newBook(t)
	target, provider := newParty(t), newParty(t)
	var sybils []party
	for range 100 {
		k := newParty(t)
		sybils = append(sybils, k)
		for _, tx := range []Tx{
			{Kind: Transfer, From: k.user, To: target.user, Amount: testLimit},
			{Kind: Transfer, From: k.user, To: target.user, Amount: 1},
			{Kind: Reserve, From: k.user, Provider: provider.node, Amount: 1, Expires: b.now.Add(time.Minute).UnixNano()},
			{Kind: Vouch, From: k.user, To: target.user, Amount: 1},
		} {
			if _, err := b.tx(b.sign(k, tx)); !errors.Is(err, ErrInsufficient) {
				t.Fatalf("a fresh key's %s: %v, want ErrInsufficient", tx.Kind, err)
			}
		}
	}
	if a, _ := b.m.s.account(target.user); a.Balance != 0 || a.Limit != 0 || len(b.m.s.Reserves) != 0 {
		t.Fatalf("100 fresh keys gave the target %+v", a)
	}

	const line = 500
	voucher := b.vouched(line)
	for i, k := range sybils {
		_, err := b.tx(b.sign(voucher, Tx{Kind: Vouch, From: voucher.user, To: k.user, Amount: line / 100}))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	extra := newParty(t)
	_, err := b.tx(b.sign(voucher, Tx{Kind: Vouch, From: voucher.user, To: extra.user, Amount: 1}))
	b.want(err, ErrInsufficient)
	for _, k := range sybils {
		if _, err := b.tx(b.sign(k, Tx{Kind: Transfer, From: k.user, To: target.user, Amount: line / 100})); err != nil {
			t.Fatal(err)
		}
		_, err := b.tx(b.sign(k, Tx{Kind: Transfer, From: k.user, To: target.user, Amount: 1}))
		b.want(err, ErrInsufficient)
	}
	if got := b.balance(target); got != line {
		t.Fatalf("the target got %d through 100 keys vouched with %d", got, line)
	}
	if a, _ := b.m.s.account(voucher.user); a.Available != 0 {
		t.Fatalf("the voucher has %d available after vouching all it had", a.Available)
	}
}

// TestTrustLines: a line lets its holder spend up to it and no further;
// it can be withdrawn down to what the holder uses and no lower; a voucher
// extends only what it has; lines are capped in number.
func TestTrustLines(t *testing.T) {
	b := newBook(t)
	u := b.vouched(1000)
	v, shop, w := newParty(t), newParty(t), newParty(t)
	line := func(from, to party, amount int64) error {
		b.t.Helper()
		_, err := b.tx(b.sign(from, Tx{Kind: Vouch, From: from.user, To: to.user, Amount: amount}))
		return err
	}
	pay := func(from, to party, amount int64) error {
		b.t.Helper()
		_, err := b.tx(b.sign(from, Tx{Kind: Transfer, From: from.user, To: to.user, Amount: amount}))
		return err
	}
	avail := func(p party) int64 {
		a, _ := b.m.s.account(p.user)
		return a.Available
	}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"more than the voucher has", func() error { return line(u, v, 1001) }, ErrInsufficient},
		{"a line to itself", func() error { return line(u, u, 1) }, ErrMalformed},
		{"a withdrawal of no line", func() error { return line(u, v, 0) }, ErrNoLine},
		{"a line of 500", func() error { return line(u, v, 500) }, nil},
		{"spend up to the line", func() error { return pay(v, shop, 300) }, nil},
		{"spend past the line", func() error { return pay(v, shop, 201) }, ErrInsufficient},
		{"the voucher spends what it did not vouch", func() error { return pay(u, shop, 500) }, nil},
		{"and no more", func() error { return pay(u, shop, 1) }, ErrInsufficient},
		{"withdraw under what is spent", func() error { return line(u, v, 299) }, ErrInsufficient},
		{"withdraw all of it", func() error { return line(u, v, 0) }, ErrInsufficient},
		{"withdraw down to what is spent", func() error { return line(u, v, 300) }, nil},
		{"the holder is repaid", func() error { return pay(shop, v, 300) }, nil},
		{"withdraw the rest", func() error { return line(u, v, 0) }, nil},
		{"the holder spends on no line", func() error { return pay(v, shop, 1) }, ErrInsufficient},
		{"the holder earns and vouches what it earned", func() error {
			if err := pay(shop, v, 200); err != nil {
				return err
			}
			return line(v, w, 200)
		}, nil},
		{"it cannot spend what it vouched", func() error { return pay(v, shop, 1) }, ErrInsufficient},
		{"its holder spends it", func() error { return pay(w, shop, 200) }, nil},
		{"a cycle of lines makes nothing", func() error {
			if err := line(w, u, 0); !errors.Is(err, ErrNoLine) {
				return fmt.Errorf("withdrawing a line never made: %v", err)
			}
			x := b.vouched(100)
			if err := line(x, u, 100); err != nil {
				return err
			}
			if err := line(u, x, 100); err != nil {
				return err
			}
			return pay(x, shop, 101)
		}, ErrInsufficient},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
	}
	if avail(v) != 0 || avail(w) != 0 || b.balance(w) != -200 || b.balance(v) != 200 {
		t.Fatalf("v: %d available, %d balance; w: %d available, %d balance", avail(v), b.balance(v), avail(w), b.balance(w))
	}
	a, _ := b.m.s.account(v.user)
	if len(a.Lines) != 1 || a.Lines[0] != (Line{From: v.user, To: w.user, Amount: 200}) || a.Vouching != 200 || a.Limit != -200 {
		t.Fatalf("v's account: %+v", a)
	}
}

// TestLinesCapped: an account extends at most MaxLines lines, and holds at
// most as many.
func TestLinesCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("signs a few hundred transactions; skipped in -short mode")
	}
	b := newBook(t)
	target := newParty(t)
	for i := range MaxLines + 1 {
		k := newParty(t)
		_, err := b.tx(b.sign(b.bank, Tx{Kind: Vouch, From: b.bank.user, To: k.user, Amount: 1}))
		if i < MaxLines && err != nil || i == MaxLines && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("line %d from one account: %v", i, err)
		}
		// The key earns 1 from the bank, and vouches with it.
		if _, err := b.tx(b.sign(b.bank, Tx{Kind: Transfer, From: b.bank.user, To: k.user, Amount: 1})); err != nil {
			t.Fatal(err)
		}
		_, err = b.tx(b.sign(k, Tx{Kind: Vouch, From: k.user, To: target.user, Amount: 1}))
		if i < MaxLines && err != nil || i == MaxLines && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("line %d to one account: %v", i, err)
		}
	}
	if a, _ := b.m.s.account(target.user); a.Limit != MaxLines || len(a.Lines) != MaxLines {
		t.Fatalf("the target holds %d lines, a limit of %d", len(a.Lines), a.Limit)
	}
}

// skewed is a ledger member whose clock is off by skew.
type skewed struct {
	name string
	skew time.Duration
}

// TestReplayUnderSkew: two members, 6 minutes behind and 6 minutes
// ahead, propose the ledger's entries and ticks in turn for 40 minutes; a
// user pays through each every minute, and a thief replays every payment
// through each every minute: none applies twice, and the ledger forgets
// nonces as they go stale.
func TestReplayUnderSkew(t *testing.T) {
	if testing.Short() {
		t.Skip("replays thousands of transactions; skipped in -short mode")
	}
	b := newBook(t)
	alice := b.vouched(testLimit)
	start := b.now
	members := []skewed{{"behind", -6 * time.Minute}, {"ahead", 6 * time.Minute}}
	var sent []*SignedTx
	var payees []peer.ID
	for minute := range 40 {
		real := start.Add(time.Duration(minute) * time.Minute)
		b.now = real
		for _, m := range members {
			at := real.Add(m.skew).UnixNano()
			payee := newParty(t)
			st := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: payee.user, Amount: 1, Time: real.UnixNano()})
			if _, err := b.txAt(st, at); err != nil {
				t.Fatalf("minute %d, through the member %s: %v", minute, m.name, err)
			}
			sent = append(sent, st)
			payees = append(payees, payee.user)
			b.tickBy(at)
			for _, st := range sent {
				if _, err := b.txAt(st, at); !errors.Is(err, ErrReplay) && !errors.Is(err, ErrStale) {
					t.Fatalf("minute %d: a replay through the member %s: %v", minute, m.name, err)
				}
			}
		}
		// The ledger remembers no more than the nonces still replayable.
		if n, most := len(b.m.s.Nonces), 2*int((Window+MaxSkew)/time.Minute+2)+1; n > most {
			t.Fatalf("minute %d: %d nonces remembered, want at most %d", minute, n, most)
		}
	}
	for _, u := range payees {
		if got := b.m.s.Accounts[u].Balance; got != 1 {
			t.Fatalf("a payee has %d, want 1", got)
		}
	}
}

// TestFarTick: a member whose clock is 25 minutes ahead proposes a tick.
// Its stamp is one of three: the ledger's clock goes to the quorum's
// time, the honest members', so no reserve due later expires, no nonce
// still replayable is forgotten, and honest transactions are not made
// stale. The door of an honest node refuses a transaction signed that
// far ahead (checkClock).
func TestFarTick(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	reserveRun(b, alice, bob, 100, 5*time.Minute)
	paid := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 5})
	if _, err := b.tx(paid); err != nil {
		t.Fatal(err)
	}
	far := b.now.Add(25 * time.Minute).UnixNano()
	if err := checkClock(far, b.now.UnixNano()); !errors.Is(err, ErrStale) {
		t.Fatalf("the door let a tick 25 minutes ahead through: %v", err)
	}
	b.tickBy(far)
	if got := b.m.s.Clock; got != b.now.UnixNano() {
		t.Fatalf("after a far tick the clock is %v past the honest members' time", time.Duration(got-b.now.UnixNano()))
	}
	if len(b.m.s.Reserves) != 1 || len(b.m.s.Nonces) != 3 {
		t.Fatalf("a far tick left %d reserves and %d nonces, want 1 and 3", len(b.m.s.Reserves), len(b.m.s.Nonces))
	}
	_, err := b.txAt(paid, b.now.Add(time.Minute).UnixNano())
	b.want(err, ErrReplay)
	if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})); err != nil {
		t.Fatalf("an honest transfer after a far tick: %v", err)
	}
	// As signed time passes, ticks expire the reserve when it is due.
	b.now = b.now.Add(5 * time.Minute)
	if _, err := b.tx(b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})); err != nil {
		t.Fatal(err)
	}
	b.cmd(&command{Op: opTick, Time: b.now.UnixNano()})
	if len(b.m.s.Reserves) != 0 {
		t.Fatal("the reserve did not expire when it was due")
	}
}

// TestClock: the ledger's clock for a transaction's entry, a table of
// entries as members propose them: it never goes back, and never runs
// more than MaxSkew past the latest quorum time (what the transaction's
// signer says has no say in it).
func TestClock(t *testing.T) {
	const m = int64(time.Minute)
	for _, c := range []struct {
		name                   string
		clock, quorum, propose int64
		now                    int64
	}{
		{"on time", 100 * m, 100 * m, 100*m + 1, 100*m + 1},
		{"through a member behind", 100 * m, 100 * m, 90 * m, 100 * m},
		{"through a member far ahead", 100 * m, 100 * m, 125 * m, 101 * m},
		{"through a member ahead, the quorum lagging", 100 * m, 98 * m, 102 * m, 100 * m},
		{"the quorum at the end of time", 100 * m, math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"proposed at the start of time", 100 * m, 100 * m, math.MinInt64, 100 * m},
	} {
		s := &state{Clock: c.clock, Quorum: c.quorum}
		if now := s.clockFor(c.propose); now != c.now {
			t.Errorf("%s: now %d, want %d", c.name, now, c.now)
		}
	}
	for _, c := range []struct {
		proposed, local int64
		ok              bool
	}{
		{100 * m, 100 * m, true},
		{101 * m, 100 * m, true},
		{99 * m, 100 * m, true},
		{101*m + 1, 100 * m, false},
		{99*m - 1, 100 * m, false},
		{math.MaxInt64, 100 * m, false},
		{math.MinInt64, 100 * m, false},
	} {
		if err := checkClock(c.proposed, c.local); (err == nil) != c.ok {
			t.Errorf("checkClock(%d, %d) = %v", c.proposed, c.local, err)
		}
	}
}

// TestPrecheck: what the door checks before it proposes, without
// changing the ledger: a table of transactions and the error the ledger
// would give each.
func TestPrecheck(t *testing.T) {
	b := newBook(t)
	alice, bob, carol := b.vouched(testLimit), newParty(t), newParty(t)
	seen := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})
	if _, err := b.tx(seen); err != nil {
		t.Fatal(err)
	}
	res := reserveRun(b, alice, bob, 100, time.Minute)
	line := b.sign(alice, Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: 10})
	if _, err := b.tx(line); err != nil {
		t.Fatal(err)
	}
	if _, err := b.tx(b.sign(bob, Tx{Kind: Transfer, From: bob.user, To: alice.user, Amount: 10})); err != nil {
		t.Fatal(err)
	}
	release := func(by party, ref []byte) *SignedTx {
		st := b.sign(by, Tx{Kind: Release, From: by.user, Provider: bob.node, Ref: ref})
		st.Cert = &by.cert
		return st
	}
	for _, c := range []struct {
		name string
		st   *SignedTx
		want error
	}{
		{"a good transfer", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1}), nil},
		{"a transfer seen", seen, ErrReplay},
		{"a transfer signed long ago", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1, Time: b.now.Add(-Window - time.Second).UnixNano()}), ErrStale},
		{"a transfer signed far ahead", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1, Time: b.now.Add(Window + time.Second).UnixNano()}), ErrStale},
		{"a transfer past the limit", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: testLimit}), ErrInsufficient},
		{"a fresh key's transfer", b.sign(carol, Tx{Kind: Transfer, From: carol.user, To: alice.user, Amount: 1}), ErrInsufficient},
		{"a reserve seen", res, ErrReplay},
		{"a release of that reserve", release(bob, res.tx.Nonce), nil},
		{"a release of no reserve", release(bob, newNonce()), ErrNoReserve},
		{"a line withdrawn from under its use", b.sign(alice, Tx{Kind: Vouch, From: alice.user, To: bob.user}), ErrInsufficient},
		{"a line never made, withdrawn", b.sign(bob, Tx{Kind: Vouch, From: bob.user, To: alice.user}), ErrNoLine},
		{"a line seen", line, ErrReplay},
		{"a transfer altered after the door decoded it", func() *SignedTx {
			st := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})
			st.tx.To = alice.user // the door decoded it; its shape is checked again
			return st
		}(), ErrMalformed},
	} {
		before, _ := b.m.Snapshot()
		err := b.m.precheck(c.st, b.now.UnixNano())
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if after, _ := b.m.Snapshot(); string(before) != string(after) {
			t.Fatalf("%s: the precheck changed the ledger", c.name)
		}
	}
	if err := newMachine(nil).precheck(seen, b.now.UnixNano()); !errors.Is(err, ErrNoLedger) {
		t.Fatalf("a precheck before the genesis: %v", err)
	}
}

// TestDoorShape: every field of every kind is checked against its cap,
// and every account must be an ed25519 user or node ID, before the ledger
// uses any of it: a table of hostile transactions, each refused by
// DecodeTx, as any node's door decodes them.
func TestDoorShape(t *testing.T) {
	b := newBook(t)
	alice, bob := b.vouched(testLimit), newParty(t)
	junk, _ := mh.Sum([]byte(strings.Repeat("x", 3000)), mh.IDENTITY, -1)
	hashed, _ := mh.Sum([]byte("x"), mh.SHA2_256, -1)
	long := strings.Repeat("m", MaxMemo+1)
	later := b.now.Add(time.Minute).UnixNano()
	res := reserveRun(b, alice, bob, 100, time.Minute)
	good := Receipt{Kind: Compute, ID: res.tx.Nonce, Amount: 10}
	settle := func(r Receipt, signer party, strip bool) *SignedTx {
		st := b.receipt(alice, bob, r, true)
		st = b.sign(signer, Tx{Kind: Settle, From: signer.user, Receipt: st.tx.Receipt})
		if strip {
			st.Sig = nil
		}
		return st
	}
	for _, c := range []struct {
		name string
		st   *SignedTx
		want error
	}{
		{"a payee of 3000 junk bytes", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: peer.ID(junk), Amount: 1}), ErrMalformed},
		{"a payee that is a hash, not a key", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: peer.ID(hashed), Amount: 1}), ErrMalformed},
		{"no payee", b.sign(alice, Tx{Kind: Transfer, From: alice.user, Amount: 1}), ErrMalformed},
		{"a line to junk", b.sign(alice, Tx{Kind: Vouch, From: alice.user, To: peer.ID(junk), Amount: 1}), ErrMalformed},
		{"a provider of junk", b.sign(alice, Tx{Kind: Reserve, From: alice.user, Provider: peer.ID(hashed), Amount: 1, Expires: later}), ErrMalformed},
		{"a long memo on a reserve", b.sign(alice, Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: 1, Expires: later, Memo: long}), ErrMalformed},
		{"a long memo on a line", b.sign(alice, Tx{Kind: Vouch, From: alice.user, To: bob.user, Amount: 1, Memo: long}), ErrMalformed},
		{"a reference of 3 bytes", b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1, Ref: []byte{1, 2, 3}}), ErrMalformed},
		{"a reserve for two days", b.sign(alice, Tx{Kind: Reserve, From: alice.user, Provider: bob.node, Amount: 1, Expires: b.now.Add(48 * time.Hour).UnixNano()}), ErrMalformed},
		{"a time of zero", func() *SignedTx {
			st := b.sign(alice, Tx{Kind: Transfer, From: alice.user, To: bob.user, Amount: 1})
			var tx Tx
			wire.Unmarshal(st.Body, &tx)
			tx.Time = -1
			st, _ = Sign(alice.key, tx)
			return st
		}(), ErrMalformed},
		{"a receipt for a space named 4 KiB", settle(Receipt{Kind: Storage, ID: newNonce(), Space: strings.Repeat("s", 300), From: 1, Until: 2, Bytes: 1}, alice, false), ErrMalformed},
		{"a receipt of negative memory", settle(Receipt{Kind: Compute, ID: res.tx.Nonce, Memory: -1}, alice, false), ErrMalformed},
		{"a settlement with no signature", settle(good, alice, true), ErrForged},
		{"a settlement signed by a third party", settle(good, newParty(t), false), ErrForged},
	} {
		raw, err := c.st.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeTx(raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if _, err := b.tx(c.st); !errors.Is(err, c.want) {
			t.Errorf("%s, as an entry: %v, want %v", c.name, err, c.want)
		}
	}
	// The payee settles a compute receipt, through the node its reserve
	// names.
	byBob := settle(good, bob, false)
	byBob.SignNode(bob.nodeKey)
	if _, err := b.tx(byBob); err != nil {
		t.Fatalf("a settlement signed by its payee: %v", err)
	}
}

// TestValidID: validID takes exactly the IDs libp2p decodes to an ed25519
// key and writes back the same.
func TestValidID(t *testing.T) {
	junk, _ := mh.Sum([]byte(strings.Repeat("x", 3000)), mh.IDENTITY, -1)
	hashed, _ := mh.Sum([]byte("x"), mh.SHA2_256, -1)
	ids := []peer.ID{"", peer.ID(junk), peer.ID(hashed), "\x00\x24\x08\x01\x12\x20short"}
	for range 50 {
		p := newParty(t)
		ids = append(ids, p.user, p.node, p.user+"x", p.user[:len(p.user)-1])
		alt := []byte(p.user)
		alt[3] = 2 // another key type, same length
		ids = append(ids, peer.ID(alt))
	}
	for _, id := range ids {
		want := false
		if pub, err := identity.PublicKey(id); err == nil {
			canon, err := identity.ID(pub)
			want = err == nil && canon == id
		}
		if got := validID(id) == nil; got != want {
			t.Errorf("validID(%x) = %v, libp2p says %v", []byte(id), got, want)
		}
	}
}
