package service

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A provider's limits on its payers.
const (
	// MaxOpenRuns is how many runs one payer may have open on a node at
	// once: admitted, and not yet settled by the ledger (or given up). A
	// payer past it is refused (ErrUnsettled) until its runs settle.
	MaxOpenRuns = 16
	// maxOpenRuns bounds the open runs of all payers together: each one
	// that is settling is a goroutine until the ledger answers.
	maxOpenRuns = 1024
	// payingFor is how long a payer whose reserve held may have its next
	// run start before the ledger answers.
	payingFor = time.Hour
	// unpaidFor is how long a payer is refused after a settlement of one
	// of its runs failed.
	unpaidFor = time.Hour
	// maxPayers bounds the payers remembered.
	maxPayers = 4096
)

// payers is a provider's book of the users that pay it for runs: whose
// reserves held lately (their runs start before the ledger answers), how
// many runs each has open here, and whose settlement failed (refused for
// a while). It is safe for concurrent use.
type payers struct {
	now func() time.Time

	mu   sync.Mutex
	m    map[peer.ID]*payer
	open int // open runs, all payers together
}

type payer struct {
	held   time.Time // its reserves held lately: runs start at once until then
	unpaid time.Time // a settlement of its runs failed: refused until then
	why    string    // what that settlement failed with
	open   int       // its runs admitted and not yet settled or given up
}

func newPayers(now func() time.Time) *payers {
	return &payers{now: now, m: map[peer.ID]*payer{}}
}

// idle reports whether p may be forgotten at now: nothing open, nothing
// to remember.
func (p *payer) idle(now time.Time) bool {
	return p.open == 0 && !now.Before(p.held) && !now.Before(p.unpaid)
}

// admit opens a run for user, or says why it may not have one: a
// settlement of its runs failed lately, or it has MaxOpenRuns open
// (ErrUnsettled), or the node has too many runs awaiting the ledger
// (ErrBusy). Every run admitted is ended with end, once.
func (b *payers) admit(user peer.ID) error {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[user]
	switch {
	case p != nil && now.Before(p.unpaid):
		return fmt.Errorf("%w: a settlement of %s's runs here failed (%s); this node runs nothing more for it until %s",
			ErrUnsettled, user, p.why, p.unpaid.UTC().Format(time.RFC3339))
	case p != nil && p.open >= MaxOpenRuns:
		return fmt.Errorf("%w: %s has %d runs here that the ledger has not settled yet (at most %d)", ErrUnsettled, user, p.open, MaxOpenRuns)
	case b.open >= maxOpenRuns:
		return fmt.Errorf("%w: %d priced runs here await the ledger", ErrBusy, b.open)
	}
	if p == nil {
		if len(b.m) >= maxPayers && !b.forgetOne(now) {
			return fmt.Errorf("%w: %d payers have runs open here", ErrBusy, len(b.m))
		}
		p = &payer{}
		b.m[user] = p
	}
	p.open++
	b.open++
	return nil
}

// resume opens again a run that a previous life of the node left
// unsettled: it was admitted then, and is not refused now.
func (b *payers) resume(user peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[user]
	if p == nil {
		p = &payer{}
		b.m[user] = p
	}
	p.open++
	b.open++
}

// forgetOne makes room for a payer: it forgets one with nothing open,
// one with nothing to remember if there is such. b.mu is held.
func (b *payers) forgetOne(now time.Time) bool {
	var some peer.ID
	found := false
	for u, p := range b.m {
		if p.idle(now) {
			delete(b.m, u)
			return true
		}
		if p.open == 0 && !found {
			some, found = u, true
		}
	}
	if found {
		delete(b.m, some)
	}
	return found
}

// end ends a run admitted for user: unpaid is the error its settlement
// failed with, or nil if it was settled or had nothing to settle.
func (b *payers) end(user peer.ID, unpaid error) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[user]
	if p == nil || p.open == 0 {
		return // cannot happen: every end has its admit
	}
	p.open--
	b.open--
	if unpaid != nil {
		p.unpaid, p.why, p.held = now.Add(unpaidFor), unpaid.Error(), time.Time{}
	}
	if p.idle(now) {
		delete(b.m, user)
	}
}

// held records how user's last reserve fared: a payer whose reserve held
// has its runs start before the ledger answers for payingFor; one whose
// reserve failed waits for the ledger again.
func (b *payers) held(user peer.ID, ok bool) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[user]
	switch {
	case p == nil:
	case ok && !now.Before(p.unpaid):
		p.held = now.Add(payingFor)
	default:
		p.held = time.Time{}
	}
}

// paying reports whether user's reserves held here lately: its runs may
// start before the ledger answers. A payer never seen, or whose last
// reserve or settlement failed, waits for the ledger, so that new keys
// cannot make the node work for nothing.
func (b *payers) paying(user peer.ID) bool {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[user]
	return p != nil && now.Before(p.held)
}
