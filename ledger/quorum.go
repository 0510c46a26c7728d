package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// Answers by quorum. A node that keeps no ledger believes what the ledger
// did (a transaction applied, an account, the ledger's state) only when a
// majority of the members signed the very same answer: no one member, even
// one that went bad, can make it believe a hold that the ledger never took.
//
// Every such answer is the outcome of a log entry: a transaction, or a
// read (opRead) that a member proposes for a question it was asked. Each
// member, as it applies the entry, records the answer it would give (which
// ledger, epoch, count of transactions, question, outcome): the same bytes
// on every member, since they apply the same log. The member asked
// answers with its record, signed; the node then asks the other members to
// confirm, and each signs its own record of the same question once it has
// applied the entry. A refusal needs no quorum: it makes the node believe
// nothing.

// opRead is a log entry that reads the ledger: it changes nothing, and
// every member records its answer to the question it carries.
const opRead = 65

// readCmd is the question an opRead entry carries: its kind and its
// request, encoded, as the node that asked sent it.
type readCmd struct {
	Kind string `cbor:"1,keyasint"`
	Req  []byte `cbor:"2,keyasint"`
}

type confirmReq struct {
	Kind string `cbor:"1,keyasint"`
	Req  []byte `cbor:"2,keyasint"` // the question's hash
}

var confirmFn = remote.Declare[confirmReq, signedAnswer]("nube.ledger.confirm")

// maxQuestion caps a question a read entry carries: an ID and a nonce.
const maxQuestion = 256

// maxRecorded is how many answers a member remembers: at the ledger's
// rate (a few thousand transactions a second) a few seconds' worth, while
// confirmations come within milliseconds.
const maxRecorded = 8192

// maxAwaiting bounds the confirmations a member waits to give at once.
const maxAwaiting = 4096

// recorder keeps a member's latest answers, by question, and wakes those
// waiting to confirm one.
type recorder struct {
	mu     sync.Mutex
	got    map[string][]byte // kind and question hash → the encoded answer
	ring   []string
	next   int
	await  map[string]chan struct{}
	nAwait int
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]byte{}, ring: make([]string, maxRecorded), await: map[string]chan struct{}{}}
}

func recordKey(kind string, reqHash []byte) string { return kind + "\x00" + string(reqHash) }

// put records ans as the answer to key, forgetting the oldest.
func (r *recorder) put(key string, ans []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.got[key]; !dup {
		if old := r.ring[r.next]; old != "" {
			delete(r.got, old)
		}
		r.ring[r.next] = key
		r.next = (r.next + 1) % len(r.ring)
	}
	r.got[key] = ans
	if ch, ok := r.await[key]; ok {
		close(ch)
		delete(r.await, key)
	}
}

// lookup returns the answer recorded for key.
func (r *recorder) lookup(key string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.got[key]
	return a, ok
}

// wait returns the answer to key once it is recorded.
func (r *recorder) wait(ctx context.Context, key string) ([]byte, error) {
	r.mu.Lock()
	if a, ok := r.got[key]; ok {
		r.mu.Unlock()
		return a, nil
	}
	if r.nAwait >= maxAwaiting {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %d confirmations awaited on this ledger node", errcode.ErrBusy, maxAwaiting)
	}
	ch, ok := r.await[key]
	if !ok {
		ch = make(chan struct{})
		r.await[key] = ch
	}
	r.nAwait++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.nAwait--
		r.mu.Unlock()
	}()
	select {
	case <-ch:
		a, _ := r.lookup(key)
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// record notes, as this member applies an entry, the answer it gives to
// the question of kind req (encoded); b.mu is held.
func (b *fsm) record(kind string, req, body []byte) {
	if b.roster == nil {
		return // a ledger from before rosters: nobody can check an answer
	}
	var seq uint64
	b.m.view(func(s *state) { seq = s.Seq })
	h := reqHash(req)
	ab, err := wire.Marshal(&answer{Ledger: b.roster.id(), Epoch: b.roster.epoch(), Seq: seq, Kind: kind, Req: h, Body: body})
	if err == nil {
		b.rec.put(recordKey(kind, h), ab)
	}
}

// read applies an opRead entry: the answer to its question, recorded;
// b.mu is held. The result is the answer's body, or a refusal.
func (b *fsm) read(rc *readCmd) ([]byte, error) {
	var body any
	var err error
	switch {
	case rc == nil:
		err = fmt.Errorf("%w: a read with no question", ErrMalformed)
	case len(rc.Req) > maxQuestion:
		err = fmt.Errorf("%w: a question of %d bytes", ErrTooLarge, len(rc.Req))
	case rc.Kind == kindAccount:
		var req accountReq
		if err = wire.Unmarshal(rc.Req, &req); err == nil {
			a, ok := localAccount(b, req.User)
			if !ok {
				err = fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
			}
			body = a
		}
	case rc.Kind == kindInfo:
		var in Info
		ok := false
		b.m.view(func(s *state) { in, ok = infoOf(s, b.roster) })
		if !ok {
			err = fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
		}
		body = in
	default:
		err = fmt.Errorf("%w: a read of kind %q", ErrMalformed, rc.Kind)
	}
	if err != nil {
		return wire.Marshal(ptr(fail(err)))
	}
	bb, err := wire.Marshal(body)
	if err != nil {
		return wire.Marshal(ptr(fail(err)))
	}
	b.record(rc.Kind, rc.Req, bb)
	return wire.Marshal(&outcome{})
}

// readEntry asks the ledger, through its log, the question req of kind,
// and returns this member's answer to it, signed.
func (m *Manager) readEntry(ctx context.Context, g *group.Group, bk *fsm, kind string, req []byte) (signedAnswer, error) {
	cmd, err := wire.Marshal(&rosterCmd{Op: opRead, Read: &readCmd{Kind: kind, Req: req}})
	if err != nil {
		return signedAnswer{}, err
	}
	if _, err := m.applyCmd(ctx, g, cmd); err != nil {
		return signedAnswer{}, err
	}
	return m.recorded(ctx, g, bk, kind, reqHash(req))
}

// recorded signs this member's answer to the question of kind whose hash
// is h, once it has applied the entry that answers it: the entry may have
// been applied by the leader only, so far.
func (m *Manager) recorded(ctx context.Context, g *group.Group, bk *fsm, kind string, h []byte) (signedAnswer, error) {
	if r, _ := bk.next(); r == nil {
		return signedAnswer{}, fmt.Errorf("%w: %s keeps a ledger that has no roster", ErrNoLedger, m.self)
	}
	ab, err := m.awaitRecord(ctx, g, bk, recordKey(kind, h))
	if err != nil {
		return signedAnswer{}, err
	}
	return signedAnswer{Answer: ab, By: m.self, Sig: m.sign(answerDomain, ab), Leader: g.Leader()}, nil
}

// recordGrace is how long a member waits for an entry to reach it before
// it makes sure, with a Sync, that it never will.
const recordGrace = 250 * time.Millisecond

// awaitRecord returns this member's answer recorded under key. A member
// asked to confirm an answer was asked after the entry committed, if the
// answer was true: once it has applied all that committed before now (a
// Sync), it has the answer, or the entry never was (or is so old that it
// forgot it).
func (m *Manager) awaitRecord(ctx context.Context, g *group.Group, bk *fsm, key string) ([]byte, error) {
	gctx, cancel := context.WithTimeout(ctx, recordGrace)
	ab, err := bk.rec.wait(gctx, key)
	cancel()
	if err == nil || ctx.Err() != nil || errors.Is(err, errcode.ErrBusy) {
		return ab, err
	}
	if err := m.catchUp(ctx, g); err != nil {
		return nil, fmt.Errorf("%w: waiting for %s to catch up with the ledger: %w", ErrNoLedger, m.self, err)
	}
	if ab, ok := bk.rec.lookup(key); ok {
		return ab, nil
	}
	return nil, fmt.Errorf("%w: %s applied no entry that answers the question (or applied it too long ago to remember)", ErrNoLedger, m.self)
}

// catchUp returns once this member has applied all that the ledger
// committed before the call: a Sync, shared by every caller that comes
// while one is under way (strangers asking for answers that do not exist
// cost the ledger one write a round, however many they are).
func (m *Manager) catchUp(ctx context.Context, g *group.Group) error {
	for {
		m.mu.Lock()
		cu := m.syncing
		switch {
		case cu == nil:
			cu = &catchUp{done: make(chan struct{})}
			m.syncing = cu
			m.mu.Unlock()
			go m.runCatchUp(g, cu)
		case cu.started:
			// Under way, but it may have begun before this caller came:
			// wait for it, then for one that begins after.
			m.mu.Unlock()
			select {
			case <-cu.done:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			m.mu.Unlock() // not begun yet: it covers this caller
		}
		select {
		case <-cu.done:
			return cu.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// catchUp is one Sync that callers share.
type catchUp struct {
	started bool
	done    chan struct{}
	err     error
}

func (m *Manager) runCatchUp(g *group.Group, cu *catchUp) {
	m.mu.Lock()
	cu.started = true
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, askFor)
	cu.err = g.Sync(ctx)
	cancel()
	m.mu.Lock()
	m.syncing = nil
	m.mu.Unlock()
	close(cu.done)
}

// serveConfirm signs this member's answer to a question another member
// answered, once it has applied the entry that answers it.
func (m *Manager) serveConfirm(ctx context.Context, req confirmReq) (signedAnswer, error) {
	g, bk := m.node()
	if g == nil {
		return signedAnswer{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	if err := m.pass(ctx); err != nil {
		return signedAnswer{}, err
	}
	return m.recorded(ctx, g, bk, req.Kind, req.Req)
}

// confirmation gathers the members' signatures of their answers to one
// question: asked of every member but one at once, while that one is
// asked the question itself, so that neither waits for the other.
type confirmation struct {
	c       chain
	kind    string
	h       []byte
	asked   int
	replies chan confirmReply
	cancel  context.CancelFunc
}

type confirmReply struct {
	by  peer.ID
	sa  signedAnswer
	err error
}

// confirming starts asking the members of c other than skip and this
// node to confirm their answer to the question req of kind; nil if one
// member's answer is a majority's already. Its end is the caller's:
// wait, or stop.
func (m *Manager) confirming(ctx context.Context, c chain, kind string, req []byte, skip peer.ID) *confirmation {
	if majority(len(c.members())) <= 1 {
		return nil
	}
	cctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ledger"), askFor)
	cf := &confirmation{c: c, kind: kind, h: reqHash(req), replies: make(chan confirmReply, len(c.members())), cancel: cancel}
	q := confirmReq{Kind: kind, Req: cf.h}
	for _, p := range c.members() {
		if p == skip || p == m.self {
			continue
		}
		cf.asked++
		go func() {
			sa, err := confirmFn.At(m.cfg.Remote, p).Call(cctx, q)
			cf.replies <- confirmReply{p, sa, err}
		}()
	}
	return cf
}

// stop gives up the confirmations not yet in.
func (cf *confirmation) stop() {
	if cf != nil {
		cf.cancel()
	}
}

// wait returns once a majority of the members signed the answer first (a
// member's, already checked), or says why they did not.
func (cf *confirmation) wait(first signedAnswer) error {
	if cf == nil {
		return nil
	}
	defer cf.cancel()
	need := majority(len(cf.c.members())) - 1 // first is one
	var errs []string
	differ := 0
	for range cf.asked {
		r := <-cf.replies
		if r.by == first.By {
			continue // the member that answered, asked before it was known to
		}
		err := r.err
		if err == nil && r.sa.By != r.by {
			err = fmt.Errorf("%w: %s confirmed as %s", ErrImpostor, r.by, r.sa.By)
		}
		if err == nil {
			var discard any
			_, err = cf.c.check(r.sa, cf.kind, cf.h, &discard)
		}
		if err == nil && !bytes.Equal(r.sa.Answer, first.Answer) {
			differ++
			err = fmt.Errorf("%w: %s's answer differs from %s's", ErrImpostor, r.by, first.By)
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if need--; need == 0 {
			return nil
		}
	}
	sentinel := ErrNoLedger
	if differ > 0 {
		sentinel = ErrImpostor
	}
	return fmt.Errorf("%w: %s answered for ledger %s, and too few of its other members confirmed it (a majority of %d must sign): %v",
		sentinel, first.By, cf.c.id(), len(cf.c.members()), errs)
}

// agree asks every member of c for its answer to the question req of kind
// (as confirmations), and returns the outcome a majority signed alike.
// A node that heard one member say a transaction was applied before (a
// replay) believes it only so.
func (m *Manager) agree(ctx context.Context, c chain, kind string, req []byte) (outcome, error) {
	cf := m.confirming(ctx, c, kind, req, "")
	if cf == nil {
		return outcome{}, fmt.Errorf("%w: a ledger of one member confirms nothing", ErrNoLedger)
	}
	defer cf.stop()
	need := majority(len(c.members()))
	by := map[string]int{}
	var errs []string
	for range cf.asked {
		r := <-cf.replies
		err := r.err
		var o outcome
		if err == nil && r.sa.By != r.by {
			err = fmt.Errorf("%w: %s confirmed as %s", ErrImpostor, r.by, r.sa.By)
		}
		if err == nil {
			_, err = c.check(r.sa, kind, cf.h, &o)
		}
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if by[string(r.sa.Answer)]++; by[string(r.sa.Answer)] == need {
			return o, nil
		}
	}
	return outcome{}, fmt.Errorf("%w: no majority of ledger %s's members gave one answer: %v", ErrNoLedger, c.id(), errs)
}
