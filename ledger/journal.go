package ledger

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The ledger's arithmetic: every balance, escrow and sum moves through
// add64 (which reports a wrap instead of making one), and every sum of
// many is a wide, a 128-bit integer that cannot wrap at all.

// add64 returns a+b, and false if the sum wrapped.
func add64(a, b int64) (int64, bool) {
	s := a + b
	return s, (a^s)&(b^s) >= 0
}

// sub64 returns a-b, and false if the difference wrapped.
func sub64(a, b int64) (int64, bool) {
	d := a - b
	return d, (a^b)&(a^d) >= 0
}

// sat returns a+b, or the end of int64 it passed.
func sat(a, b int64) int64 {
	s, ok := add64(a, b)
	switch {
	case ok:
		return s
	case b > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}

// wide is a signed 128-bit integer: hi·2^64 + lo. A sum of fewer than 2^64
// int64s cannot wrap it.
type wide struct {
	hi int64
	lo uint64
}

func (w *wide) add(x int64) {
	lo, c := bits.Add64(w.lo, uint64(x), 0)
	w.hi += x>>63 + int64(c)
	w.lo = lo
}

func (w *wide) sub(x int64) {
	lo, b := bits.Sub64(w.lo, uint64(x), 0)
	w.hi -= x>>63 + int64(b)
	w.lo = lo
}

// minus returns w - v.
func (w wide) minus(v wide) wide {
	lo, b := bits.Sub64(w.lo, v.lo, 0)
	return wide{hi: w.hi - v.hi - int64(b), lo: lo}
}

func (w wide) neg() bool  { return w.hi < 0 }
func (w wide) zero() bool { return w.hi == 0 && w.lo == 0 }

// less reports whether w < x.
func (w wide) less(x int64) bool {
	w.sub(x)
	return w.neg()
}

// int64 returns w, or the end of int64 it is past.
func (w wide) int64() int64 {
	switch {
	case w.hi == 0 && w.lo <= math.MaxInt64, w.hi == -1 && w.lo > math.MaxInt64:
		return int64(w.lo)
	case w.neg():
		return math.MinInt64
	}
	return math.MaxInt64
}

// acct returns u's account for writing, making it if need be.
func (s *state) acct(u peer.ID) *account {
	s.j.touch(s, u)
	a := s.Accounts[u]
	if a == nil {
		a = &account{}
		s.Accounts[u] = a
		s.j.push(func() { delete(s.Accounts, u) })
	}
	return a
}

func (s *state) note(u peer.ID, e Entry) {
	a := s.acct(u)
	e.Seq = s.Seq
	s.j.record(undo{hist: &a.History, h: a.History})
	// Re-slice rather than shift: an entry undone restores the old slice,
	// whose elements the append did not touch.
	a.History = append(a.History, e)
	if len(a.History) > maxHistory {
		a.History = a.History[len(a.History)-maxHistory:]
	}
}

// move moves amount from one account's balance to another's.
func (s *state) move(from, to peer.ID, amount int64) error {
	if err := s.addBalance(from, -amount); err != nil {
		return err
	}
	return s.addBalance(to, amount)
}

// addBalance adds d (negative: takes) to u's balance.
// A balance that would pass the end of int64 is refused as too large: it
// is a real if far-fetched sum (many payments of MaxAmount), not a bug.
func (s *state) addBalance(u peer.ID, d int64) error {
	a := s.acct(u)
	v, ok := add64(a.Balance, d)
	if !ok {
		return fmt.Errorf("%w: %s's balance of %s cannot move by %s without wrapping", ErrTooLarge, u, Credits(a.Balance), Credits(d))
	}
	s.j.set(&a.Balance, v)
	return nil
}

// addTo adds d to *p, one of the state's sums (which are never negative),
// named what.
func (s *state) addTo(p *int64, d int64, what string) error {
	v, ok := add64(*p, d)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s of %s cannot move by %s without wrapping", ErrTooLarge, what, Credits(*p), Credits(d))
	case v < 0:
		return fmt.Errorf("%w: %s of %s cannot move by %s", ErrInvariant, what, Credits(*p), Credits(d))
	}
	s.j.set(p, v)
	return nil
}

func (s *state) setReserve(id string, r reserve) {
	old, had := s.Reserves[id]
	s.j.push(func() {
		if had {
			s.Reserves[id] = old
		} else {
			delete(s.Reserves, id)
		}
	})
	s.Reserves[id] = r
}

func (s *state) dropReserve(id string) {
	old, had := s.Reserves[id]
	if !had {
		return
	}
	s.j.push(func() { s.Reserves[id] = old })
	delete(s.Reserves, id)
}

func (s *state) setClosed(id string, t int64) { setTime(s, s.Closed, id, t) }
func (s *state) setNonce(id string, t int64)  { setTime(s, s.Nonces, id, t) }

// setTime sets m[id] to t, undoably.
func setTime(s *state, m map[string]int64, id string, t int64) {
	old, had := m[id]
	s.j.record(undo{m: m, k: id, v: old, had: had})
	m[id] = t
}

// forget deletes m[id], undoably.
func forget(s *state, m map[string]int64, id string) {
	old, had := m[id]
	if !had {
		return
	}
	s.j.record(undo{m: m, k: id, v: old, had: true})
	delete(m, id)
}

// journal records what the entry under way changes, so that an entry
// refused half-way is undone whole, and what each account it touched held
// before, so that what the entry did can be checked before it stands.
type journal struct {
	active  bool
	undos   []undo
	touched []touched
	index   map[peer.ID]struct{}
	escrow  int64
	seq     uint64
	// lines is set when the entry moved a trust line.
	lines bool
}

// touched is an account as it was before the entry changed it.
type touched struct {
	user              peer.ID
	balance, reserved int64
	avail             wide
	in, out           int64
}

func (j *journal) begin(s *state) {
	j.active, j.lines = true, false
	j.undos, j.touched = j.undos[:0], j.touched[:0]
	if j.index == nil {
		j.index = map[peer.ID]struct{}{}
	}
	clear(j.index)
	j.escrow, j.seq = s.Escrow, s.Seq
}

func (j *journal) end() {
	j.active = false
	clear(j.undos) // let what they point to go
	j.undos = j.undos[:0]
}

// undo is how to undo one change: set *p back to v, a history back to h,
// a time back in a map, or anything else f does. The common ones are
// values rather than closures, so an entry allocates little for them.
type undo struct {
	p    *int64
	v    int64
	hist *[]Entry
	h    []Entry
	m    map[string]int64
	k    string
	had  bool
	f    func()
}

func (u *undo) run() {
	switch {
	case u.p != nil:
		*u.p = u.v
	case u.hist != nil:
		*u.hist = u.h
	case u.m != nil && u.had:
		u.m[u.k] = u.v
	case u.m != nil:
		delete(u.m, u.k)
	default:
		u.f()
	}
}

// push records how to undo a change about to be made.
func (j *journal) push(f func()) { j.record(undo{f: f}) }

func (j *journal) record(u undo) {
	if j.active {
		j.undos = append(j.undos, u)
	}
}

// set sets *p to v, undoably.
func (j *journal) set(p *int64, v int64) {
	j.record(undo{p: p, v: *p})
	*p = v
}

// touch records u's account as it is, the first time the entry changes it.
func (j *journal) touch(s *state, u peer.ID) {
	if !j.active {
		return
	}
	if _, ok := j.index[u]; ok {
		return
	}
	j.index[u] = struct{}{}
	t := touched{user: u, avail: s.available(u)}
	if a := s.Accounts[u]; a != nil {
		t.balance, t.reserved, t.in, t.out = a.Balance, a.Reserved, a.In, a.Out
	}
	j.touched = append(j.touched, t)
}

// mark returns a point to undo back to.
func (j *journal) mark() int { return len(j.undos) }

// undo undoes every change made since mark.
func (j *journal) undo(s *state, mark int) {
	for i := len(j.undos) - 1; i >= mark; i-- {
		j.undos[i].run()
	}
	clear(j.undos[mark:])
	j.undos = j.undos[:mark]
}

// rollback undoes the whole entry.
func (j *journal) rollback(s *state) {
	j.undo(s, 0)
	s.Seq = j.seq
}

// check checks what the entry did, with arithmetic that cannot wrap: it
// made no credit from nothing (the accounts it touched and the escrow
// moved by a sum of zero), left no account it touched below its limit, no
// sum negative, and moved no trust line at one end only. What a ledger
// broken before (by the old rules) has wrong, an entry may leave as it is
// or mend, not make worse: so it can still be repaid. Accounts it did not touch did not change, so the whole
// ledger holds if it held before (audit checks that, whole).
func (j *journal) check(s *state) error {
	var delta, in, out wide
	delta.add(s.Escrow)
	delta.sub(j.escrow)
	if s.Escrow < 0 && s.Escrow < j.escrow {
		return fmt.Errorf("%w: the escrow would be %d", ErrInvariant, s.Escrow)
	}
	for _, t := range j.touched {
		var bal, ain, aout int64
		a := s.Accounts[t.user]
		if a != nil {
			if a.Reserved < 0 && a.Reserved < t.reserved || a.In < 0 && a.In < t.in || a.Out < 0 && a.Out < t.out {
				return fmt.Errorf("%w: %s would have reserved %d, lines of %d in and %d out", ErrInvariant, t.user, a.Reserved, a.In, a.Out)
			}
			bal, ain, aout = a.Balance, a.In, a.Out
		}
		delta.add(bal)
		delta.sub(t.balance)
		in.add(ain)
		in.sub(t.in)
		out.add(aout)
		out.sub(t.out)
		if avail := s.available(t.user); avail.neg() && avail.minus(t.avail).neg() {
			return fmt.Errorf("%w: %s would be %s past its limit", ErrInvariant, t.user, Credits(avail.int64()))
		}
		if j.lines && a != nil {
			if err := s.checkLines(t.user, a); err != nil {
				return err
			}
		}
	}
	if !delta.zero() {
		return fmt.Errorf("%w: the entry would move %s credits in from nothing", ErrInvariant, Credits(delta.int64()))
	}
	if in != out {
		return fmt.Errorf("%w: the lines held would move by %s, those extended by %s", ErrInvariant,
			Credits(in.int64()), Credits(out.int64()))
	}
	return nil
}

// checkLines checks that a's line sums are its lines', and that each line
// is held at its other end.
func (s *state) checkLines(u peer.ID, a *account) error {
	var in, out wide
	for v, x := range a.Lines {
		out.add(x)
		b := s.Accounts[v]
		if x <= 0 || x > MaxAmount || b == nil || b.Backers[u] != x {
			return fmt.Errorf("%w: the line from %s to %s of %d is not held at both ends", ErrInvariant, u, v, x)
		}
	}
	for v, x := range a.Backers {
		in.add(x)
		b := s.Accounts[v]
		if x <= 0 || x > MaxAmount || b == nil || b.Lines[u] != x {
			return fmt.Errorf("%w: the line from %s to %s of %d is not held at both ends", ErrInvariant, v, u, x)
		}
	}
	if in.int64() != a.In || out.int64() != a.Out {
		return fmt.Errorf("%w: %s's lines sum to %s in and %s out, its account says %s and %s", ErrInvariant, u,
			Credits(in.int64()), Credits(out.int64()), Credits(a.In), Credits(a.Out))
	}
	return nil
}

// audit checks the whole ledger with arithmetic that cannot wrap: every
// balance and the escrow sum to zero; every account is within its limit;
// the escrow is what the open reserves hold, and each payer's reserved
// sum its own; every line is held at both ends and summed right, so the
// credit available to all is what the genesis granted less the escrow.
// It costs a pass over every account: the ledger runs it on a snapshot
// (taken or restored), and each entry checks its own part (journal.check).
func (s *state) audit() error {
	var sum, escrow wide
	sum.add(s.Escrow)
	reserved := map[peer.ID]*wide{}
	for _, r := range s.Reserves {
		escrow.add(r.Max)
		w := reserved[r.Payer]
		if w == nil {
			w = &wide{}
			reserved[r.Payer] = w
		}
		w.add(r.Max)
	}
	if escrow.minus(wideOf(s.Escrow)) != (wide{}) {
		return fmt.Errorf("%w: the escrow is %s, its reserves hold %s", ErrInvariant, Credits(s.Escrow), Credits(escrow.int64()))
	}
	for u, a := range s.Accounts {
		sum.add(a.Balance)
		if avail := s.available(u); avail.neg() {
			return fmt.Errorf("%w: %s is %s past its limit", ErrInvariant, u, Credits(avail.int64()))
		}
		var want wide
		if w := reserved[u]; w != nil {
			want = *w
		}
		if want.minus(wideOf(a.Reserved)) != (wide{}) {
			return fmt.Errorf("%w: %s has %s reserved, its reserves hold %s", ErrInvariant, u, Credits(a.Reserved), Credits(want.int64()))
		}
		if err := s.checkLines(u, a); err != nil {
			return err
		}
	}
	if !sum.zero() {
		return fmt.Errorf("%w: balances and escrow sum to %s", ErrInvariant, Credits(sum.int64()))
	}
	return nil
}

func wideOf(x int64) wide {
	var w wide
	w.add(x)
	return w
}
