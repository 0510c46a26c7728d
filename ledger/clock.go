package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// The ledger's clock is its members' by quorum. An entry may carry time
// stamps: each a member's signature (node key) over the ledger's ID and
// the time its own clock says. Every member, as it applies the entry,
// keeps those of distinct members of the roster that verify, needs a
// majority of the roster, and takes as the quorum's time the stamp that
// as many members as may lie (a minority) cannot pass: the
// (n-majority(n)+1)-th latest. No minority of members, and no user's
// signature, moves it; RATIONALE.md says why the ledger needs it.

// MaxSkew is how far the clocks of the ledger's members and users may
// stray from one another. The ledger's clock never goes back, and never
// runs more than MaxSkew ahead of the latest quorum time; a ledger node
// refuses a transaction signed more than MaxSkew ahead of its own clock
// (checkClock); nonces are kept until the ledger's clock is Window +
// MaxSkew past their transaction's own time, when that transaction is
// stale anyway.
const MaxSkew = time.Minute

// timeDomain separates a member's time stamp from what else its key signs.
const timeDomain = "nube ledger time v1\n"

// timeStamp is a member's word of the time: By's node key signs the
// ledger's ID and Time.
type timeStamp struct {
	By   peer.ID `cbor:"1,keyasint"`
	Time int64   `cbor:"2,keyasint"`
	Sig  []byte  `cbor:"3,keyasint"`
}

// stampBody is what a time stamp signs.
type stampBody struct {
	Ledger string `cbor:"1,keyasint"`
	Time   int64  `cbor:"2,keyasint"`
}

func stampBytes(ledger string, t int64) []byte {
	b, _ := wire.Marshal(&stampBody{Ledger: ledger, Time: t}) // a struct of a string and an int always encodes
	return b
}

// quorumTime is the time the stamps of an entry of ledger give, the
// members being members (sorted): the (n-majority(n)+1)-th latest of the
// stamps that verify, one per member. Of the stamps above it and itself,
// n-majority(n)+1 in all, one at least is an honest member's, so a
// minority of members stamping ahead cannot move it ahead of every honest
// clock; and when every member stamps, a minority stamping behind cannot
// hold it back behind every honest clock either. Stamps of non-members,
// a member's second stamp, and stamps that do not verify count for
// nothing; fewer than a majority of the members is ErrForged.
func quorumTime(ledger string, stamps []timeStamp, members []peer.ID) (int64, error) {
	n := len(members)
	if n == 0 {
		return 0, fmt.Errorf("%w: the ledger has no roster whose members could stamp its time", ErrForged)
	}
	if len(stamps) > MaxMembers {
		return 0, fmt.Errorf("%w: an entry with %d time stamps (at most %d)", ErrMalformed, len(stamps), MaxMembers)
	}
	var by []peer.ID
	var times []int64
	for _, st := range stamps {
		if _, ok := slices.BinarySearch(members, st.By); !ok || slices.Contains(by, st.By) {
			continue
		}
		if identity.Verify(st.By, timeDomain, stampBytes(ledger, st.Time), st.Sig) != nil {
			continue
		}
		by = append(by, st.By)
		times = append(times, st.Time)
	}
	need := majority(n)
	if len(times) < need {
		return 0, fmt.Errorf("%w: the entry's time is stamped by %d of the %d members it needs", ErrForged, len(times), need)
	}
	slices.Sort(times)
	return times[len(times)-1-(n-need)], nil
}

// clockFor returns the ledger's time for a transaction's entry proposed
// at proposed: the proposer's clock, taken no earlier than the ledger's
// clock (which never goes back, so a member whose clock is behind cannot
// reopen a window the ledger has closed) and no later than MaxSkew past
// the latest quorum time, whatever the proposer or the transaction's
// signer says: neither can age the ledger.
func (s *state) clockFor(proposed int64) int64 {
	return max(s.Clock, min(proposed, sat(s.Quorum, int64(MaxSkew))))
}

// advance takes the time the stamps of c give, if c carries any, as the
// ledger's latest quorum time (which never goes back).
func (s *state) advance(c *command, members []peer.ID) error {
	if len(c.Stamps) == 0 {
		return nil
	}
	q, err := quorumTime(s.Genesis.ID, c.Stamps, members)
	if err != nil {
		return err
	}
	s.j.set(&s.Quorum, max(s.Quorum, q))
	return nil
}

// checkClock is the door's rule for time: a node refuses to propose a
// transaction signed at signed when its own clock says local and the two
// are more than MaxSkew apart (TestClock). The door applies it to the
// future side only (see machine.precheck): a transaction signed a while
// ago, such as a settlement tried again, is the ledger's window's to
// judge.
func checkClock(signed, local int64) error {
	d, ok := sub64(signed, local)
	if ok && d <= int64(MaxSkew) && d >= -int64(MaxSkew) {
		return nil
	}
	return fmt.Errorf("%w: signed at %s, this node's clock says %s (more than %v apart)", ErrStale,
		stamp(signed), stamp(local), MaxSkew)
}

// stampLag is how far the ledger's quorum time may lag a proposer's clock
// before the proposer asks the members for a fresh one with its entry.
const stampLag = MaxSkew / 2

// stampWait bounds how long a proposer waits for the members' stamps.
const stampWait = 2 * time.Second

type timeReq struct {
	Ledger string `cbor:"1,keyasint"`
}

var timeFn = remote.Declare[timeReq, timeStamp]("nube.ledger.time")

// stampNow is this member's time stamp for ledger.
func (m *Manager) stampNow(ledger string) timeStamp {
	t := time.Now().UnixNano()
	return timeStamp{By: m.self, Time: t, Sig: m.sign(timeDomain, stampBytes(ledger, t))}
}

// serveTime answers a member's question for the time: this member's
// stamp, for the ledger it keeps. Only members ask.
func (m *Manager) serveTime(ctx context.Context, req timeReq) (timeStamp, error) {
	_, bk := m.node()
	if bk == nil {
		return timeStamp{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	cur, _ := bk.next()
	switch from := remote.Caller(ctx); {
	case cur == nil || req.Ledger != cur.id():
		return timeStamp{}, fmt.Errorf("%w: %s keeps ledger %q, not %q", ErrImpostor, m.self, cur.id(), req.Ledger)
	case !cur.has(from):
		return timeStamp{}, fmt.Errorf("%w: %s is no member of ledger %s", ErrRefused, from, cur.id())
	}
	return m.stampNow(req.Ledger), nil
}

// stamps asks every member of bk's roster for its time stamp (this node
// stamps its own) and returns those that came within stampWait: nil if
// the roster is unknown. The state machine judges whether they suffice.
func (m *Manager) stamps(ctx context.Context, bk *fsm) []timeStamp {
	r, _ := bk.next()
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, stampWait)
	defer cancel()
	members := r.members()
	got := make(chan timeStamp, len(members))
	var wg sync.WaitGroup
	for _, p := range members {
		if p == m.self {
			got <- m.stampNow(r.id())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := timeFn.At(m.cfg.Remote, p).Call(ctx, timeReq{Ledger: r.id()})
			if err != nil || s.By != p {
				m.log.Debug("a member gave no time stamp", "peer", p, "err", err)
				return
			}
			got <- s
		}()
	}
	wg.Wait()
	close(got)
	var out []timeStamp
	for s := range got {
		out = append(out, s)
	}
	return out
}

// stampsIfLate returns the members' stamps when the ledger's quorum time
// lags this node's clock by more than stampLag (so that a transaction
// after a quiet spell is judged on the members' time, not the last
// one), else nil: on a busy ledger one entry in stampLag pays for them.
func (m *Manager) stampsIfLate(ctx context.Context, bk *fsm) []timeStamp {
	var q int64
	bk.m.view(func(s *state) { q = s.Quorum })
	if time.Now().UnixNano()-q <= int64(stampLag) {
		return nil
	}
	return m.stamps(ctx, bk)
}
