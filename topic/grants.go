package topic

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/space"
)

// A topic's grants are its space's: Publish is the space's Write,
// Subscribe its Read, Delegate its Delegate. Delegation, expiry and
// revocation (with the key rotation that comes with it) are the space's
// rules; this file asks the space for the user's own chain, and checks the
// chains publishers present against what the space's newest head revoked.

// spaceRights maps a topic's rights to its space's.
func spaceRights(r Rights) space.Rights {
	var out space.Rights
	if r&Publish != 0 {
		out |= space.Write
	}
	if r&Subscribe != 0 {
		out |= space.Read
	}
	if r&Delegate != 0 {
		out |= space.Delegate
	}
	return out
}

func (t *Topic) grant(ctx context.Context, user peer.ID, rights Rights, until time.Time) (*space.Grant, error) {
	if rights == 0 || rights&^(Publish|Subscribe|Delegate) != 0 {
		return nil, fmt.Errorf("%w: rights %d: want publish, subscribe and/or delegate", ErrBadName, rights)
	}
	g, err := t.sp.Grant(ctx, user, spaceRights(rights), until)
	if err != nil {
		return nil, fmt.Errorf("grant on topic %s: %w", t.ID(), mapSpaceErr(err))
	}
	return g, nil
}

func (t *Topic) revoke(ctx context.Context, id string) error {
	if err := t.sp.Revoke(ctx, id); err != nil {
		return fmt.Errorf("revoke on topic %s: %w", t.ID(), mapSpaceErr(err))
	}
	t.m.live.auth.stale(t.ID())
	return nil
}

// Timings of the verdict cache.
const (
	// refreshEvery is how often a node that is not a topic's home asks
	// the home for the newest head while it relays or holds the topic: a
	// revocation reaches it within this (plus a round trip). On the home
	// a revocation applies at once.
	refreshEvery = 2 * time.Second
	// maxVerdicts bounds the verdicts kept per topic; past it they are
	// all dropped and judged again.
	maxVerdicts = 4096
	// maxTopicsAuth bounds the topics whose heads a node keeps for its
	// verdicts.
	maxTopicsAuth = 4096
	// judgeTimeout bounds the wait for a head a node has never seen.
	judgeTimeout = 5 * time.Second
)

// auth keeps, per topic, the newest head a node knows and its verdicts on
// the (publisher, chain) pairs it has seen, so that a validator checks a
// chain once per head and hits the network at most once per refreshEvery
// per topic, in the background.
type auth struct {
	l *live

	mu     sync.Mutex
	topics map[string]*topicAuth
}

type topicAuth struct {
	mu         sync.Mutex
	sp         *space.Space
	st         space.State
	at         time.Time // when st was learned; zero: never
	failed     time.Time // when the last try to learn it failed
	home       bool      // this node is the topic's home: st is always current
	refreshing bool
	verdicts   map[[32]byte]verdict
	// revokedAt is when this node learned each revocation of st (as of
	// head revSeq): a message signed under a revoked chain is stale only
	// if stamped before then (see staleAfter).
	revokedAt map[string]time.Time
	revSeq    uint64
}

type verdict struct {
	err   error
	seq   uint64    // the head it was judged under
	until time.Time // when the chain ends; zero: never
	// stale is err as a stale message's, for one stamped before
	// staleBefore: the chain held when it was signed, and this node
	// learned of its revocation after.
	stale       error
	staleBefore time.Time
}

// of is v's verdict on r.
func (v verdict) of(r *record) error {
	if v.stale != nil && r.when().Before(v.staleBefore) {
		return v.stale
	}
	return v.err
}

// staleAfter is how long after this node learned of a revocation a
// message stamped under the revoked chain may still be an honest one: its
// publisher learns of it within a head's refresh, and its clock may be
// ahead by the window. A message stamped later is a revoked publisher's
// flood, rejected (its sender penalised).
const staleAfter = refreshEvery + maxFuture

func newAuth(l *live) *auth { return &auth{l: l, topics: map[string]*topicAuth{}} }

// of returns the topic's state, creating it.
func (a *auth) of(id string) (*topicAuth, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ta := a.topics[id]; ta != nil {
		return ta, nil
	}
	owner, name, err := SplitID(id)
	if err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if a.l.m.cfg.Spaces == nil {
		return nil, fmt.Errorf("%w: this node keeps no spaces", errUnknown)
	}
	sp, err := a.l.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadName, err)
	}
	if len(a.topics) >= maxTopicsAuth {
		for k := range a.topics { // drop one at random
			delete(a.topics, k)
			break
		}
	}
	ta := &topicAuth{sp: sp, verdicts: map[[32]byte]verdict{}}
	a.topics[id] = ta
	return ta, nil
}

// forget drops a deleted topic's state.
func (a *auth) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.topics, id)
}

// stale makes the next check of id ask for the newest head.
func (a *auth) stale(id string) {
	a.mu.Lock()
	ta := a.topics[id]
	a.mu.Unlock()
	if ta != nil {
		ta.mu.Lock()
		ta.at = time.Time{}
		ta.mu.Unlock()
	}
}

// state returns the newest head the node knows of the topic. The home's
// is current; another node's is refreshed in the background once older
// than refreshEvery, and fetched in the foreground only the first time.
func (a *auth) state(ctx context.Context, ta *topicAuth) (space.State, error) {
	ta.mu.Lock()
	if ta.home || ta.at.IsZero() && ta.failed.IsZero() {
		ta.mu.Unlock()
		fctx, cancel := context.WithTimeout(ctx, judgeTimeout)
		defer cancel()
		st, err := ta.sp.State(fctx, false)
		ta.mu.Lock()
		defer ta.mu.Unlock()
		if err != nil {
			ta.failed = time.Now()
			return space.State{}, fmt.Errorf("%w: the topic's head: %v", errUnknown, err)
		}
		ta.learn(st, a.l.self)
		return ta.st, nil
	}
	defer ta.mu.Unlock()
	if time.Since(ta.at) > refreshEvery && time.Since(ta.failed) > refreshEvery && !ta.refreshing {
		ta.refreshing = true
		a.l.mu.Lock()
		closed := a.l.closed
		if !closed {
			a.l.wg.Go(func() { a.refresh(ta) })
		}
		a.l.mu.Unlock()
	}
	if ta.at.IsZero() {
		// The one foreground try failed: judge nothing, without waiting,
		// until a background one succeeds.
		return space.State{}, fmt.Errorf("%w: the topic's head could not be found yet", errUnknown)
	}
	return ta.st, nil
}

// learn takes st unless an older one. ta.mu is held.
func (ta *topicAuth) learn(st space.State, self peer.ID) {
	if ta.at.IsZero() || st.Seq >= ta.st.Seq {
		ta.st = st
		ta.noteRevoked(st)
	}
	ta.at = time.Now()
	ta.home = st.Home == self
}

// noteRevoked notes when this node learned each revocation st names.
// ta.mu is held.
func (ta *topicAuth) noteRevoked(st space.State) {
	if ta.revokedAt != nil && st.Seq == ta.revSeq {
		return
	}
	now := time.Now()
	m := make(map[string]time.Time, len(st.Revoked))
	for _, id := range st.Revoked {
		if t, ok := ta.revokedAt[id]; ok {
			m[id] = t
		} else {
			m[id] = now
		}
	}
	ta.revokedAt, ta.revSeq = m, st.Seq
}

// revokedSince is when this node learned the revocation that ends r's
// chain: the first, in the order this node learned them, of st's
// revocations with which the chain fails. ok is false if the chain fails
// without any (it ended) or holds with all.
func (ta *topicAuth) revokedSince(sid string, r *record, st space.State, now time.Time) (time.Time, bool) {
	type rev struct {
		id string
		at time.Time
	}
	revs := make([]rev, len(st.Revoked))
	ta.mu.Lock()
	for i, id := range st.Revoked {
		at, ok := ta.revokedAt[id]
		if !ok {
			at = now
		}
		revs[i] = rev{id, at}
	}
	ta.mu.Unlock()
	slices.SortStableFunc(revs, func(a, b rev) int { return a.at.Compare(b.at) })
	ids := make([]string, len(revs))
	for i, r := range revs {
		ids[i] = r.id
	}
	// The chain fails with the first k revocations from some k on.
	lo, hi := 0, len(ids)+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if _, err := space.CheckChain(sid, r.Chain, r.Publisher, space.Write, now, ids[:mid]); err != nil {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	k := lo
	if k == 0 || k > len(ids) {
		return time.Time{}, false
	}
	return revs[k-1].at, true
}

func (a *auth) refresh(ta *topicAuth) {
	ctx, cancel := context.WithTimeout(a.l.ctx, judgeTimeout)
	defer cancel()
	st, err := ta.sp.State(ctx, true)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.refreshing = false
	if err != nil {
		ta.failed = time.Now()
		a.l.log.Debug("topic: could not refresh a head", "space", ta.sp.ID(), "err", err)
		return
	}
	ta.learn(st, a.l.self)
}

// authorise checks that r's publisher may publish on r's topic now: the
// chain it carries leads from the topic's owner to it with the Publish
// right, unexpired, none of its links revoked by the newest head this
// node knows. It does not check r's signature (openMessage or the
// validator does). A verdict is kept per (publisher, chain) until the head
// changes or the chain ends.
func (a *auth) authorise(ctx context.Context, r *record) error {
	ta, err := a.of(r.Topic)
	if err != nil {
		return err
	}
	st, err := a.state(ctx, ta)
	if err != nil {
		return err
	}
	if st.Deleted {
		return fmt.Errorf("%w: %w: topic %s was deleted", ErrNotFound, errStale, r.Topic)
	}
	key := verdictKeyOf('w', r.Publisher, r.Chain)
	now := time.Now()
	ta.mu.Lock()
	v, ok := ta.verdicts[key]
	ta.mu.Unlock()
	if ok && v.seq == st.Seq && (v.until.IsZero() || now.Before(v.until)) {
		return v.of(r)
	}
	owner, name, _ := SplitID(r.Topic) // of checked it
	sid := owner.String() + "/" + SpaceName(name)
	until, err := space.CheckChain(sid, r.Chain, r.Publisher, space.Write, now, st.Revoked)
	v = verdict{seq: st.Seq, until: until}
	if err != nil {
		v.err = fmt.Errorf("%w: %s may not publish on %s: %w", ErrNotAuthorised, r.Publisher, r.Topic, err)
		// A chain that held when the message was signed, before this
		// node learned of its revocation (or before it ended), is
		// stale, not forged: see errStale. Its publisher's own stamp
		// says when it signed, so a message stamped well after this
		// node learned of the revocation is rejected.
		if _, e := space.CheckChain(sid, r.Chain, r.Publisher, space.Write, r.when(), nil); e == nil {
			v.stale = fmt.Errorf("%w: %w: %s may no longer publish on %s: %w", ErrNotAuthorised, errStale, r.Publisher, r.Topic, err)
			v.staleBefore = time.Unix(0, math.MaxInt64) // the chain ended: the time window bounds it
			if at, ok := ta.revokedSince(sid, r, st, now); ok {
				v.staleBefore = at.Add(staleAfter)
			}
		}
	}
	ta.mu.Lock()
	if len(ta.verdicts) >= maxVerdicts {
		clear(ta.verdicts)
	}
	ta.verdicts[key] = v
	ta.mu.Unlock()
	return v.of(r)
}

// fromHolder checks that node, which sent a message with an offset, is
// the topic's home or one of its holders, as the newest head this node
// knows says.
func (a *auth) fromHolder(ctx context.Context, id string, node peer.ID) error {
	ta, err := a.of(id)
	if err != nil {
		return err
	}
	st, err := a.state(ctx, ta)
	if err != nil {
		return err
	}
	if node != st.Home && !slices.Contains(st.Holders, node) {
		// Stale, not forged: a holder new since the head this node knows
		// (a migration) sends before the head reaches it.
		return fmt.Errorf("%w: %w: node %s, not a holder of %s, sent a message with an offset", ErrNotAuthorised, errStale, node, id)
	}
	return nil
}

// verdictKeyOf names a verdict on user's chain for a kind of right ('w'
// publish, 'r' subscribe).
func verdictKeyOf(kind byte, user peer.ID, chain [][]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{kind})
	h.Write([]byte(user))
	for _, l := range chain {
		var n [4]byte
		n[0], n[1], n[2], n[3] = byte(len(l)>>24), byte(len(l)>>16), byte(len(l)>>8), byte(len(l))
		h.Write(n[:])
		h.Write(l)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// authorise checks that the publisher of r may publish on its topic now:
// the record's chain leads from the topic's owner to the publisher with
// the Publish right, unexpired and unrevoked, on the topic's space.
// Every node that relays (the gossipsub validator) or stores (a holder) a
// message calls it; it does not check r's signature, which openMessage
// did.
func (m *Manager) authorise(ctx context.Context, r *record) error {
	return m.live.auth.authorise(ctx, r)
}

// peekMessage decodes raw like openMessage but leaves the signature to
// check (env.Verify), so a validator can refuse a publisher without a
// grant before it spends a signature check.
func peekMessage(raw []byte) (identity.Envelope, *record, error) {
	var env identity.Envelope
	if len(raw) > MaxEnvelope {
		return env, nil, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(raw), MaxEnvelope)
	}
	if err := wire.Unmarshal(raw, &env); err != nil {
		return env, nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	var r record
	if err := wire.Unmarshal(env.Body, &r); err != nil {
		return env, nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch {
	case r.Publisher.Validate() != nil:
		return env, nil, fmt.Errorf("%w: no publisher", ErrBadMessage)
	case len(r.Data) > MaxMessage+1024:
		return env, nil, fmt.Errorf("%w: body of %d bytes", ErrTooLarge, len(r.Data))
	case len(r.ID) > MaxIDLen:
		return env, nil, fmt.Errorf("%w: ID of %d bytes, over %d", ErrBadMessage, len(r.ID), MaxIDLen)
	case r.Topic == "":
		return env, nil, fmt.Errorf("%w: no topic", ErrBadMessage)
	}
	return env, &r, nil
}

// sign makes the envelope of a publish of data by this node's user:
// sealed if the topic is, with the user's grant chain.
func (t *Topic) sign(ctx context.Context, cfg config, data []byte, id string) ([]byte, error) {
	m := t.m
	if m.cfg.UserKey == nil {
		return nil, fmt.Errorf("publish on %s: this node has no user key", t.ID())
	}
	chain, err := t.sp.Chain(ctx, space.Write)
	if err != nil {
		return nil, fmt.Errorf("publish on %s: %w", t.ID(), mapSpaceErr(err))
	}
	r := record{Topic: t.ID(), Publisher: m.live.user, ID: id, Time: time.Now().UnixNano(), Data: data, Chain: chain}
	if cfg.Sealed {
		key, epoch, err := t.sp.NewestKey(ctx, bodyPurpose)
		if err != nil {
			return nil, fmt.Errorf("publish on %s: the topic key: %w", t.ID(), mapSpaceErr(err))
		}
		r.Data, r.Epoch = sealBody(key, t.ID(), data), epoch
	}
	return sealMessage(m.cfg.UserKey, &r)
}
