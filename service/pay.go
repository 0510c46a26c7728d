package service

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/wasm"
)

// Run kinds of payments and offers.
const (
	kindPayment    = "payment"
	kindUnsettled  = "unsettled"
	kindNotOffered = "not-offered"
)

// Payments pays for priced runs and is paid for them; the ledger provides
// it. A node without Payments runs only free services for others, and
// calls priced ones only on its own user's nodes.
//
// The caller's signed reserve is its consent to pay for the run: the
// provider settles the run's receipt itself, within the reserve's most
// and at its price, so a caller cannot skip paying by keeping quiet.
type Payments interface {
	// Reserve, on the caller, signs a reserve of most millicredits for a
	// run on provider at price, returned to the caller after ttl if
	// nobody settles it. The bytes travel with the run request; nothing
	// reaches the ledger yet.
	Reserve(provider peer.ID, price Price, most int64, ttl time.Duration) ([]byte, error)
	// Hold, on the provider, puts a caller's reserve on the ledger and
	// returns once the ledger holds it. The reserve must be for this node
	// at price, cover a run of up to run, and last until it can be
	// settled.
	Hold(ctx context.Context, reserve []byte, price Price, run time.Duration) (Hold, error)
	// Bill, on the provider, signs the receipt of a held run that used u,
	// and returns it with what it costs.
	Bill(h Hold, u wasm.Usage) (receipt []byte, cost int64, err error)
	// Collect, on the provider, has the ledger settle a receipt that Bill
	// signed, from its reserve: no word from the caller is needed. It
	// tries again while the ledger cannot be reached, and returns nil once
	// the receipt is settled, or the error that ended its tries (the
	// ledger's refusal, or ctx's end).
	Collect(ctx context.Context, receipt []byte) error
	// Release, on the provider, gives a hold back when its run never
	// started.
	Release(h Hold)
	// Check, on the caller, checks a provider's receipt against the
	// reserve it sent, the usage the run reported and the time the call
	// took here (elapsed; zero: not known), and returns what the provider
	// may take for it: the receipt's amount, at most the reserve. An error
	// (ErrPayment) says the receipt does not hold: the provider overbilled,
	// though never past the reserve.
	Check(reserve []byte, provider peer.ID, receipt []byte, u wasm.Usage, elapsed time.Duration) (cost int64, err error)
}

// Hold is a reserve the ledger holds for a run on this node.
type Hold struct {
	ID    []byte
	Payer peer.ID
	Price Price
	Most  int64
	// Expires is when the reserve returns to its payer if nobody settled
	// it: a settlement after it is refused.
	Expires time.Time
}

// Admit says whether this node runs d for the node caller of user (empty
// if the caller showed no cert), paying or not. A nil Admit runs anything
// for anyone.
type Admit func(caller, user peer.ID, d *Descriptor, paying bool) error

// IsZero reports whether runs at this price are free.
func (p Price) IsZero() bool { return p.PerCall == 0 && p.PerCPUSecond == 0 }

// Most is the most a run may cost at p when its CPU time is bounded by
// limit: what a caller reserves.
func (p Price) Most(limit time.Duration) int64 { return p.Cost(limit) }

// Cost is what a run that took cpu costs at p: the price per call and the
// price per CPU second, rounded up to the next millicredit, and at most
// math.MaxInt64.
func (p Price) Cost(cpu time.Duration) int64 {
	if cpu < 0 {
		cpu = 0
	}
	hi, lo := bits.Mul64(p.PerCPUSecond, uint64(cpu))
	if hi >= uint64(time.Second) {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, uint64(time.Second))
	if r != 0 {
		q++
	}
	total := q + p.PerCall
	if total < q || total > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(total)
}

// callerUser returns the user of the node from, as its cert says; "" if
// it sent none.
func callerUser(from peer.ID, cert *nodecert.Cert) (peer.ID, error) {
	if cert == nil {
		return "", nil
	}
	if err := cert.Check(from); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotOffered, err)
	}
	return cert.User, nil
}

// maxCerts caps the callers' certs a node remembers as checked.
const maxCerts = 4096

// callerUser is callerUser with a memory of the certs checked: a cert
// names one node under one user's signature for good, so a warm call
// need not check the same signature again.
func (m *Manager) callerUser(from peer.ID, cert *nodecert.Cert) (peer.ID, error) {
	if cert == nil {
		return "", nil
	}
	key := string(from) + "\x00" + string(cert.User) + "\x00" + string(cert.Sig)
	m.mu.Lock()
	_, ok := m.certs[key]
	m.mu.Unlock()
	if ok {
		return cert.User, m.removed(from, cert.User)
	}
	user, err := callerUser(from, cert)
	if err != nil {
		return "", err
	}
	if err := m.removed(from, user); err != nil {
		return "", err
	}
	m.mu.Lock()
	if len(m.certs) >= maxCerts {
		clear(m.certs)
	}
	m.certs[key] = struct{}{}
	m.mu.Unlock()
	return user, nil
}

// removed refuses a node of this user that the user removed: its cert is
// good, but counts for nothing now.
func (m *Manager) removed(from, user peer.ID) error {
	if user == m.user && m.cfg.Revoked != nil && m.cfg.Revoked(from) {
		return fmt.Errorf("%w: %s (%w)", ErrNotOffered, from, nodecert.ErrRevoked)
	}
	return nil
}

// reserveTTL is how long a caller's reserve lasts: the run's limit, time
// to fetch and compile, and a minute to settle.
func reserveTTL(run time.Duration) time.Duration { return run + fetchAllowance + time.Minute }

// payPlan says whether a run must be paid for.
type payPlan struct {
	priced bool
	other  bool    // the caller is another user's node (or shows no user)
	user   peer.ID // the caller's user, from its cert
	pay    Payments
}

// admit checks a run request against the node's offer and says whether
// the run must be paid for: a priced service, for another user.
func (m *Manager) admit(from peer.ID, req runRequest, d *Descriptor) (payPlan, error) {
	user, err := m.callerUser(from, req.Cert)
	if err != nil {
		return payPlan{}, err
	}
	other := user != m.user && from != m.self
	priced := !d.Price.IsZero() && other
	if m.cfg.Admit != nil {
		if err := m.cfg.Admit(from, user, d, priced); err != nil {
			return payPlan{}, err
		}
	}
	if !priced {
		return payPlan{other: other, user: user}, nil
	}
	switch {
	case m.cfg.Payments == nil:
		return payPlan{}, fmt.Errorf("%w: %s is priced and this node takes no payments (it knows no ledger)", ErrPayment, d.Label())
	case len(req.Reserve) == 0:
		return payPlan{}, fmt.Errorf("%w: %s is priced and the call carried no reserve", ErrPayment, d.Label())
	case user == "":
		// The node keeps account of its payers by user.
		return payPlan{}, fmt.Errorf("%w: %s is priced and the call carried no cert of the caller's user", ErrPayment, d.Label())
	}
	return payPlan{priced: true, other: true, user: user, pay: m.cfg.Payments}, nil
}

type holdResult struct {
	h   Hold
	err error
}

// hold starts putting the reserve on the ledger; nil if the run is free.
func (p payPlan) hold(ctx context.Context, reserve []byte, price Price, run time.Duration) <-chan holdResult {
	if !p.priced {
		return nil
	}
	ch := make(chan holdResult, 1)
	go func() {
		h, err := p.pay.Hold(ctx, reserve, price, run)
		ch <- holdResult{h, err}
	}()
	return ch
}

// wait waits for the ledger to hold the reserve; nil if the run is free.
func (p payPlan) wait(ctx context.Context, ch <-chan holdResult) (*Hold, error) {
	if ch == nil {
		return nil, nil
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPayment, r.err)
		}
		if r.h.Payer != p.user {
			// Whoever pays, the node keeps account by the caller's
			// user: a reserve must be its own.
			p.pay.Release(r.h)
			return nil, fmt.Errorf("%w: the reserve is %s's, the calling node is %s's", ErrPayment, r.h.Payer, p.user)
		}
		return &r.h, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				// The ledger holds it after all: give it back.
				p.pay.Release(r.h)
			}
		}()
		return nil, ctx.Err()
	}
}

// abandon gives back a hold whose run will not start, once the ledger
// answers, and returns reply.
func (p payPlan) abandon(ch <-chan holdResult, reply runReply) runReply {
	if ch != nil {
		go func() {
			if r := <-ch; r.err == nil {
				p.pay.Release(r.h)
			}
		}()
	}
	return reply
}

// collect settles a billed run's receipt in the background, trying until
// its reserve expires, and ends the run in the payers' book: a payer
// whose settlement failed is refused for unpaidFor. A settlement cut
// short by Close is not held against the payer.
func (m *Manager) collect(user peer.ID, h Hold, receipt []byte) {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		if err := m.keepUnsettled(user, h, receipt); err != nil {
			m.log.Warn("the node is closing: a run goes unsettled", "payer", user, "err", err)
		} else {
			m.log.Warn("the node is closing: a run is settled when it starts again", "payer", user)
		}
		m.payers.end(user, nil)
		return
	}
	m.settles.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.settles.Done()
		if err := m.keepUnsettled(user, h, receipt); err != nil {
			m.log.Warn("could not keep a receipt on disk until it is settled: a crash now would leave the run unpaid", "payer", user, "err", err)
		}
		ctx, cancel := context.WithDeadline(m.settleCtx, h.Expires)
		defer cancel()
		err := m.cfg.Payments.Collect(ctx, receipt)
		switch {
		case err == nil:
			m.dropUnsettled(h.ID)
		case m.settleCtx.Err() != nil:
			// Kept on disk: the node settles it when it starts again,
			// if the reserve has not expired by then.
			m.log.Warn("the node closed before a run was settled: it is settled when the node starts again", "payer", user, "err", err)
			err = nil
		default:
			m.dropUnsettled(h.ID)
			m.log.Warn("a run could not be settled: its payer is refused for now", "payer", user, "err", err)
		}
		m.payers.end(user, err)
	}()
}
