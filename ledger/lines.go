package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Credit limits and trust lines. A fresh key's limit is zero: it earns a
// balance by serving, or users vouch for it. The genesis grants its limit
// to the founding users; a trust line moves part of a user's credit to
// another, and the voucher answers for it (RATIONALE.md says why, and
// what Ripple, Trustlines and HoloFuel do).

// Vouch sets the trust line from this node's user to user at amount
// millicredits: credit user may spend below zero, which this user answers
// for, as it counts against its own available credit while the line
// stands. Setting a line again replaces it; zero withdraws it. Raising a
// line past this user's available credit, or lowering it below what user
// has spent of it, is refused with ErrInsufficient; withdrawing a line
// that does not exist, with ErrNoLine.
func (m *Manager) Vouch(ctx context.Context, user peer.ID, amount int64) (Outcome, error) {
	st, err := Sign(m.cfg.UserKey, Tx{Kind: Vouch, From: m.user, To: user, Amount: amount})
	if err != nil {
		return Outcome{}, err
	}
	if err := st.checkWith(false); err != nil { // signed here just now: its shape only
		return Outcome{}, err
	}
	return m.submit(ctx, st, true)
}

// Sum returns the sum of every balance and the escrow, computed without
// wrapping: zero, always (a sum past int64 is given as its nearest end).
func (s *state) Sum() int64 {
	var sum wide
	sum.add(s.Escrow)
	for _, a := range s.Accounts {
		sum.add(a.Balance)
	}
	return sum.int64()
}

// grant is the limit the genesis gives u.
func (s *state) grant(u peer.ID) int64 {
	g := s.Genesis
	if g == nil {
		return 0
	}
	if g.legacy() {
		return g.Limit
	}
	if _, ok := slices.BinarySearch(g.Founders, u); ok {
		return g.Limit
	}
	return 0
}

// limitOf is how far below zero u's balance may go: what the genesis
// granted it, plus the lines extended to it, less the lines it extends.
// It may be negative: a user that vouches with credit it earned must keep
// that much.
func (s *state) limitOf(u peer.ID) wide {
	var l wide
	l.add(s.grant(u))
	if a := s.Accounts[u]; a != nil {
		l.add(a.In)
		l.sub(a.Out)
	}
	return l
}

// available is what u may spend: its balance plus its limit.
func (s *state) available(u peer.ID) wide {
	w := s.limitOf(u)
	if a := s.Accounts[u]; a != nil {
		w.add(a.Balance)
	}
	return w
}

// MaxLines bounds the trust lines an account extends, and those extended
// to it: so an account stays small (a few KiB), and the sum of its lines
// stays far inside an int64 (MaxLines × MaxAmount < 2^62). A community
// larger than that is vouched for through its members' lines.
const MaxLines = 256

// vouch sets the trust line from t.From to t.To at t.Amount. The voucher
// answers for the line: it counts against the voucher's own credit, so
// a line is credit moved from one user to another, never made; the sum of
// every account's available credit stays what the genesis granted, less
// what escrow holds. Raising a line needs the voucher to have the
// difference available; lowering it must leave its holder within its
// limit, so a line cannot be withdrawn from under credit already spent.
func (s *state) vouch(t *Tx, now int64) (outcome, error) {
	from, to := t.From, t.To
	var old int64
	if a := s.Accounts[from]; a != nil {
		old = a.Lines[to]
	}
	switch {
	case t.Amount == old && old == 0:
		return outcome{}, fmt.Errorf("%w: %s extends no line to %s", ErrNoLine, from, to)
	case t.Amount > old:
		d := t.Amount - old // both within [0, MaxAmount]: no wrap
		if err := s.canPay(from, d); err != nil {
			return outcome{}, fmt.Errorf("vouch %s more for %s: %w", Credits(d), to, err)
		}
	case t.Amount < old:
		d := old - t.Amount
		if avail := s.available(to); avail.less(d) {
			return outcome{}, fmt.Errorf("%w: %s uses all but %s of its limit: the line from %s can go no lower than %s, not %s",
				ErrInsufficient, to, Credits(avail.int64()), from, Credits(old-max(avail.int64(), 0)), Credits(t.Amount))
		}
	}
	if old == 0 {
		if a := s.Accounts[from]; a != nil && len(a.Lines) >= MaxLines {
			return outcome{}, fmt.Errorf("%w: %s extends %d lines already (at most %d)", ErrTooLarge, from, len(a.Lines), MaxLines)
		}
		if a := s.Accounts[to]; a != nil && len(a.Backers) >= MaxLines {
			return outcome{}, fmt.Errorf("%w: %s has %d lines already (at most %d)", ErrTooLarge, to, len(a.Backers), MaxLines)
		}
	}
	if err := s.setLine(from, to, old, t.Amount); err != nil {
		return outcome{}, err
	}
	at := time.Unix(0, now).UTC()
	memo := fmt.Sprintf("line of %s (was %s)", Credits(t.Amount), Credits(old))
	s.note(from, Entry{Time: at, Kind: "vouch", Peer: to, Memo: "extends a " + memo, Ref: t.ID()})
	s.note(to, Entry{Time: at, Kind: "vouch", Peer: from, Memo: "holds a " + memo, Ref: t.ID()})
	return outcome{Balance: s.Accounts[from].Balance}, nil
}

// setLine moves the line from→to from old to amount, and both ends' sums.
func (s *state) setLine(from, to peer.ID, old, amount int64) error {
	a, b := s.acct(from), s.acct(to)
	if err := s.addTo(&a.Out, amount-old, "the lines "+from.String()+" extends"); err != nil {
		return err
	}
	if err := s.addTo(&b.In, amount-old, "the lines extended to "+to.String()); err != nil {
		return err
	}
	setEntry(s, &a.Lines, to, amount)
	setEntry(s, &b.Backers, from, amount)
	s.j.lines = true
	return nil
}

// setEntry sets (*m)[k] to v, or deletes it for zero, undoably.
func setEntry(s *state, m *map[peer.ID]int64, k peer.ID, v int64) {
	if *m == nil {
		if v == 0 {
			return
		}
		s.j.push(func() { *m = nil })
		*m = map[peer.ID]int64{k: v}
		return
	}
	old, had := (*m)[k]
	s.j.push(func() {
		if had {
			(*m)[k] = old
		} else {
			delete(*m, k)
		}
	})
	if v == 0 {
		delete(*m, k)
		return
	}
	(*m)[k] = v
}

// Line is a trust line: From answers for Amount millicredits that To may
// spend below zero.
type Line struct {
	From   peer.ID `cbor:"1,keyasint" json:"from"`
	To     peer.ID `cbor:"2,keyasint" json:"to"`
	Amount int64   `cbor:"3,keyasint" json:"amount"`
}

// account describes u's account; ok is false before the genesis.
func (s *state) account(u peer.ID) (a Account, ok bool) {
	if s.Genesis == nil {
		return a, false
	}
	a = Account{User: u, Granted: s.grant(u), Limit: s.limitOf(u).int64(), Available: s.available(u).int64(), Ledger: s.Genesis.ID}
	if acc := s.Accounts[u]; acc != nil {
		a.Balance, a.Reserved, a.Vouched, a.Vouching = acc.Balance, acc.Reserved, acc.In, acc.Out
		a.History = slices.Clone(acc.History)
		for _, v := range slices.Sorted(maps.Keys(acc.Backers)) {
			a.Lines = append(a.Lines, Line{From: v, To: u, Amount: acc.Backers[v]})
		}
		for _, v := range slices.Sorted(maps.Keys(acc.Lines)) {
			a.Lines = append(a.Lines, Line{From: u, To: v, Amount: acc.Lines[v]})
		}
	}
	return a, true
}
