package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// A ledger's life: it is formed by nodes that trust each other, each of
// which signs its founding before any opens a group, and grows by a node
// that a majority of its members trust. A create or join that fails leaves
// no group behind, on this node or on the peers it asked.

// The steps of nube.ledger.form.
const (
	formAsk   = iota + 1 // sign the founding, open nothing yet
	formOpen             // every member signed: open the group
	formAbort            // the creator gave up: drop the group
	formCert             // name this node's user (its cert), before the founding is written
)

type formReq struct {
	Step uint8 `cbor:"1,keyasint"`
	// Roster is the founding's body (formAsk), or the signed founding,
	// encoded (formOpen).
	Roster []byte        `cbor:"2,keyasint,omitempty"`
	Cert   nodecert.Cert `cbor:"3,keyasint"`
	Ledger string        `cbor:"4,keyasint,omitempty"` // formAbort: the ledger given up
}

type formReply struct {
	Sig  []byte         `cbor:"1,keyasint,omitempty"` // formAsk: the peer's signature of the founding
	Cert *nodecert.Cert `cbor:"2,keyasint,omitempty"` // formCert: the peer's cert, naming its user
}

type addReq struct {
	Cert nodecert.Cert `cbor:"1,keyasint"`
}

type addReply struct {
	Roster chain `cbor:"1,keyasint"` // the roster that names the new member
}

// voteReq asks a member to agree to a change of members.
type voteReq struct {
	Roster []byte        `cbor:"1,keyasint"` // the change's body
	Cert   nodecert.Cert `cbor:"2,keyasint"` // the new member's cert
}

var (
	formFn = remote.Declare[formReq, formReply]("nube.ledger.form")
	addFn  = remote.Declare[addReq, addReply]("nube.ledger.add")
	voteFn = remote.Declare[voteReq, memberSig]("nube.ledger.vote")
)

// stepFor bounds one peer's step of a create or a join.
const stepFor = 20 * time.Second

// Create forms the ledger from this node and peers, with limit, the credit
// every account starts with (zero means DefaultLimit). Every peer must
// trust this node's user (Config.Trust) and sign the ledger's founding
// before any group is opened; if one refuses, or a later step fails or
// runs out of time (CreateTimeout unless ctx says otherwise), nothing is
// left behind.
func (m *Manager) Create(ctx context.Context, limit int64, peers ...peer.ID) (Info, error) {
	ctx, cancel := withDeadline(ctx, CreateTimeout)
	defer cancel()
	if err := m.enter(ctx, "create"); err != nil {
		return Info{}, err
	}
	defer m.leave()
	if err := m.settled(); err != nil {
		return Info{}, fmt.Errorf("ledger: create: %w", err)
	}
	if limit < 0 {
		return Info{}, fmt.Errorf("%w: negative credit limit", ErrMalformed)
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	peers = slices.Compact(slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(peers), func(p peer.ID) bool { return p == m.self }))))
	all := slices.Sorted(slices.Values(append([]peer.ID{m.self}, peers...)))
	if len(all) > MaxMembers {
		return Info{}, fmt.Errorf("%w: a ledger of %d nodes (at most %d)", ErrMalformed, len(all), MaxMembers)
	}
	// The founders, whom the genesis grants limit: the users of every
	// member, each named by its node's cert.
	founders := []peer.ID{m.user}
	var mu sync.Mutex
	err := m.onEach(ctx, peers, "to name its user", func(ctx context.Context, p peer.ID) error {
		rep, err := formFn.At(m.cfg.Remote, p).Call(ctx, formReq{Step: formCert, Cert: m.cert})
		if err != nil {
			return err
		}
		if rep.Cert == nil {
			return fmt.Errorf("%w: it named no user", ErrMalformed)
		}
		if err := rep.Cert.Check(p); err != nil {
			return fmt.Errorf("%w: its cert: %v", ErrForged, err)
		}
		mu.Lock()
		founders = append(founders, rep.Cert.User)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("ledger: create: %w", err)
	}
	id := make([]byte, 8)
	rand.Read(id)
	now := time.Now()
	gen := &Genesis{ID: hex.EncodeToString(id), Created: now.UnixNano(), Limit: limit,
		Founders: slices.Compact(slices.Sorted(slices.Values(founders)))}
	gb, err := wire.Marshal(gen)
	if err != nil {
		return Info{}, err
	}
	body, err := wire.Marshal(&rosterBody{Ledger: gen.ID, Members: all, Genesis: gb})
	if err != nil {
		return Info{}, err
	}

	// Every peer signs the founding, or nothing is opened anywhere.
	founded := rosterEntry{Body: body, Sigs: []memberSig{{By: m.self, Sig: m.sign(rosterDomain, body)}}}
	err = m.onEach(ctx, peers, "to agree to form the ledger", func(ctx context.Context, p peer.ID) error {
		rep, err := formFn.At(m.cfg.Remote, p).Call(ctx, formReq{Step: formAsk, Roster: body, Cert: m.cert})
		if err != nil {
			return err
		}
		if err := identity.Verify(p, rosterDomain, body, rep.Sig); err != nil {
			return fmt.Errorf("%w: its signature of the founding: %v", ErrForged, err)
		}
		mu.Lock()
		founded.Sigs = append(founded.Sigs, memberSig{By: p, Sig: rep.Sig})
		mu.Unlock()
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("ledger: create: %w", err)
	}
	if err := founding(&founded, gen); err != nil {
		return Info{}, fmt.Errorf("ledger: create: %w", err)
	}
	signed, err := wire.Marshal(&founded)
	if err != nil {
		return Info{}, err
	}

	// Open the group here and on every peer; the genesis makes it a ledger.
	bk := newFSM(m.log)
	g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Members: peers, Machine: bk, Admit: bk.admits})
	if err != nil {
		m.drop("a create that could not open its group")
		return Info{}, fmt.Errorf("%w: create: opening the ledger's group: %v", ErrNoLedger, err)
	}
	var opened []peer.ID
	err = m.onEach(ctx, peers, "to open the ledger's group", func(ctx context.Context, p peer.ID) error {
		if _, err := formFn.At(m.cfg.Remote, p).Call(ctx, formReq{Step: formOpen, Roster: signed, Cert: m.cert}); err != nil {
			return err
		}
		mu.Lock()
		opened = append(opened, p)
		mu.Unlock()
		return nil
	})
	if err != nil {
		m.abort(gen.ID, opened)
		return Info{}, fmt.Errorf("ledger: create: %w", err)
	}
	cmd, err := wire.Marshal(&genesisCmd{command: command{Op: opGenesis, Time: now.UnixNano(), Genesis: gen}, Roster: &founded})
	if err != nil {
		return Info{}, err
	}
	if _, err := m.applyCmd(ctx, g, cmd); err != nil && !errors.Is(err, ErrReplay) {
		m.abort(gen.ID, peers)
		return Info{}, fmt.Errorf("ledger: create: writing the genesis, waiting for a majority of %v to agree on it: %w", all, err)
	}
	// This node may follow: wait until it has applied the genesis too.
	roster, err := waitRoster(ctx, bk, func(c chain) bool { return c != nil })
	if err != nil {
		m.abort(gen.ID, peers)
		return Info{}, fmt.Errorf("%w: create: waiting for the genesis to reach this node: %w", ErrNoLedger, err)
	}
	m.remember(roster, true)
	m.member(g, bk)
	return m.Info(ctx)
}

// onEach calls f on each peer at once, each within stepFor, and joins the
// errors, each naming its peer and what this node waited for.
func (m *Manager) onEach(ctx context.Context, peers []peer.ID, what string, f func(context.Context, peer.ID) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ledger"), stepFor)
			defer cancel()
			if err := f(pctx, p); err != nil {
				errs[i] = fmt.Errorf("waiting for %s %s: %w", p, what, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// abort gives up forming ledger id: this node drops its group, and asks
// the peers that opened theirs to drop them (each also drops its own when
// no genesis comes in time).
func (m *Manager) abort(id string, opened []peer.ID) {
	m.drop("a create that failed")
	ctx, cancel := context.WithTimeout(m.ctx, stepFor)
	defer cancel()
	if err := m.onEach(ctx, opened, "to drop the ledger's group", func(ctx context.Context, p peer.ID) error {
		_, err := formFn.At(m.cfg.Remote, p).Call(ctx, formReq{Step: formAbort, Ledger: id, Cert: m.cert})
		return err
	}); err != nil {
		m.log.Warn("a peer did not drop the group of a ledger given up; it drops it when no genesis comes", "err", err)
	}
}

// drop closes the ledger's group and deletes what this node kept of it.
func (m *Manager) drop(why string) {
	if err := m.cfg.Groups.Drop(GroupName); err != nil {
		m.log.Warn("could not drop the ledger's group", "why", why, "err", err)
	}
}

// settled makes sure this node neither keeps nor forms a ledger. A group
// left by an older nube's refused create (open, never given a genesis,
// no roster in ledger.json) is dropped here.
func (m *Manager) settled() error {
	m.mu.Lock()
	g, bk, p, known := m.g, m.bk, m.pending, m.known.Roster
	m.mu.Unlock()
	switch {
	case p != nil:
		return fmt.Errorf("%w: this node agreed to form ledger %s and waits for its genesis", ErrReplay, p.id)
	case g == nil:
		return nil
	}
	if r, _ := bk.next(); r != nil || known != nil {
		return fmt.Errorf("%w: this node keeps ledger %s already", ErrReplay, m.knownRoster().id())
	}
	hasGenesis := false
	bk.m.view(func(s *state) { hasGenesis = s.Genesis != nil })
	if hasGenesis {
		return fmt.Errorf("%w: this node keeps a ledger already", ErrReplay)
	}
	m.log.Warn("dropping the ledger's group, which never got its genesis")
	m.stopMember()
	m.drop("a group that never got its genesis")
	return nil
}

// stopMember makes this node no ledger node (its goroutines run on until
// Close, harmlessly: the group they use is closed).
func (m *Manager) stopMember() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.g, m.bk = nil, newFSM(m.log)
}

// serveForm is a peer's side of Create.
func (m *Manager) serveForm(ctx context.Context, req formReq) (formReply, error) {
	from := remote.Caller(ctx)
	if req.Step == formAbort {
		m.abandon(from, req.Ledger)
		return formReply{}, nil
	}
	if err := m.admit(from, req.Cert); err != nil {
		return formReply{}, err
	}
	switch req.Step {
	case formCert:
		return formReply{Cert: &m.cert}, nil
	case formAsk:
		e := rosterEntry{Body: req.Roster}
		if err := e.decode(); err != nil {
			return formReply{}, err
		}
		var gen Genesis
		switch {
		case e.b.Epoch != 0 || wire.Unmarshal(e.b.Genesis, &gen) != nil || gen.ID != e.b.Ledger:
			return formReply{}, fmt.Errorf("%w: a founding without its genesis", ErrMalformed)
		case !slices.Contains(e.b.Members, m.self) || !slices.Contains(e.b.Members, from):
			return formReply{}, fmt.Errorf("%w: a ledger of %v, which does not name both %s and its creator", ErrMalformed, e.b.Members, m.self)
		case !slices.Contains(gen.Founders, m.user):
			// A genesis that grants this node's user nothing, or with no
			// founders at all (the rule of ledgers before trust lines,
			// where every fresh key had the limit): not one to sign.
			return formReply{}, fmt.Errorf("%w: a founding whose genesis does not name this node's user %s among its founders", ErrMalformed, m.user)
		}
		m.mu.Lock()
		busy := m.g != nil || m.pending != nil
		m.mu.Unlock()
		if busy {
			return formReply{}, fmt.Errorf("%w: %s keeps or forms a ledger already", ErrRefused, m.self)
		}
		return formReply{Sig: m.sign(rosterDomain, req.Roster)}, nil
	case formOpen:
		var e rosterEntry
		if err := wire.Unmarshal(req.Roster, &e); err != nil {
			return formReply{}, fmt.Errorf("%w: founding: %v", ErrMalformed, err)
		}
		if err := founding(&e, nil); err != nil {
			return formReply{}, err
		}
		if !slices.Contains(e.b.Members, m.self) || !slices.Contains(e.b.Members, from) {
			return formReply{}, fmt.Errorf("%w: a ledger that does not name both %s and its creator", ErrMalformed, m.self)
		}
		select {
		case m.life <- struct{}{}:
			defer m.leave()
		default:
			return formReply{}, fmt.Errorf("%w: %s is creating or joining a ledger itself", ErrRefused, m.self)
		}
		if err := m.settled(); err != nil {
			return formReply{}, fmt.Errorf("%w: %v", ErrRefused, err)
		}
		others := slices.DeleteFunc(slices.Clone(e.b.Members), func(p peer.ID) bool { return p == m.self })
		bk := newFSM(m.log)
		g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Members: others, Machine: bk, Admit: bk.admits})
		if err != nil {
			m.drop("a form that could not open its group")
			return formReply{}, err
		}
		m.await(g, bk, e.b.Ledger, e.b.Members)
		return formReply{}, nil
	}
	return formReply{}, fmt.Errorf("%w: form step %d", ErrMalformed, req.Step)
}

// await keeps g, opened to form ledger id with members (nil: not known), until
// its genesis comes, and drops it if none comes within FormTimeout.
func (m *Manager) await(g *group.Group, bk *fsm, id string, members []peer.ID) {
	p := &pending{g: g, bk: bk, id: id, members: members}
	m.mu.Lock()
	m.pending = p
	m.known.Forming = id
	m.save()
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.FormTimeout)
		defer cancel()
		r, err := waitRoster(ctx, bk, func(c chain) bool { return c != nil })
		if err != nil {
			if m.ctx.Err() == nil {
				m.log.Warn("no genesis came for the ledger this node agreed to form: its group is dropped", "ledger", id)
				m.giveUp(p)
			}
			return
		}
		m.mu.Lock()
		ours := m.pending == p
		if ours {
			m.pending = nil
			m.known.Forming = ""
			m.save()
		}
		m.mu.Unlock()
		if ours {
			m.remember(r, true)
			m.member(g, bk)
		}
	}()
}

// abandon is a creator giving up ledger id: the pending group is dropped
// if it is that ledger's and from names one of its members.
func (m *Manager) abandon(from peer.ID, id string) {
	m.mu.Lock()
	p := m.pending
	m.mu.Unlock()
	// A group reopened after a restart no longer knows its members: only
	// its own deadline drops it.
	if p == nil || p.id != id || !slices.Contains(p.members, from) {
		return
	}
	m.giveUp(p)
}

// giveUp drops the pending group p, unless its genesis came meanwhile.
func (m *Manager) giveUp(p *pending) {
	m.mu.Lock()
	if m.pending != p {
		m.mu.Unlock()
		return
	}
	if r, _ := p.bk.next(); r != nil {
		m.mu.Unlock()
		return // it came: await makes this node a member
	}
	m.pending = nil
	m.known.Forming = ""
	m.save()
	m.mu.Unlock()
	m.drop("a ledger whose creator gave up")
}

// Join makes this node a ledger node through via, a ledger node whose
// members (a majority of them) trust this node's user. If they refuse, or
// the join does not end within JoinTimeout (unless ctx says otherwise),
// nothing is left behind on this node.
func (m *Manager) Join(ctx context.Context, via peer.ID) (Info, error) {
	ctx, cancel := withDeadline(ctx, JoinTimeout)
	defer cancel()
	if err := m.enter(ctx, "join"); err != nil {
		return Info{}, err
	}
	defer m.leave()
	if m.IsNode() {
		return m.Info(ctx)
	}
	if err := m.settled(); err != nil {
		return Info{}, fmt.Errorf("ledger: join: %w", err)
	}
	if via == m.self {
		return Info{}, fmt.Errorf("%w: a join through this node itself", ErrMalformed)
	}
	rep, err := addFn.At(m.cfg.Remote, via).Call(network.WithAllowLimitedConn(ctx, "ledger"), addReq{Cert: m.cert})
	if err != nil {
		return Info{}, fmt.Errorf("ledger: join through %s: waiting for it to add this node, with its members' consent: %w", via, err)
	}
	// The join this node made is its source of the ledger's identity.
	added, err := verifyChain(rep.Roster)
	if err == nil && !added.has(m.self) {
		err = fmt.Errorf("%w: its roster does not name this node", ErrMalformed)
	}
	if err != nil {
		return Info{}, fmt.Errorf("ledger: join through %s: %w", via, err)
	}
	bk := newFSM(m.log)
	g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Join: via, Machine: bk, Admit: bk.admits})
	if err != nil {
		m.drop("a join that could not open its group")
		return Info{}, fmt.Errorf("ledger: join through %s: opening the ledger's group: %w", via, err)
	}
	roster, err := waitRoster(ctx, bk, func(c chain) bool { return c.has(m.self) })
	if err != nil {
		m.drop("a join that timed out")
		return Info{}, fmt.Errorf("%w: join through %s: waiting for the ledger's state to reach this node: %w", ErrNoLedger, via, err)
	}
	if !roster.extends(added[:1]) {
		m.drop("a join into another ledger")
		return Info{}, fmt.Errorf("%w: join through %s: the group's ledger is %s, its answer named %s", ErrImpostor, via, roster.id(), added.id())
	}
	m.remember(roster, true)
	m.member(g, bk)
	return m.Info(ctx)
}

// serveAdd adds the caller to the ledger, if this member trusts it and a
// majority of the members agree (each by its own trust).
func (m *Manager) serveAdd(ctx context.Context, req addReq) (addReply, error) {
	g, bk := m.node()
	if g == nil {
		return addReply{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	joiner := remote.Caller(ctx)
	if err := m.admit(joiner, req.Cert); err != nil {
		return addReply{}, err
	}
	ctx, cancel := withDeadline(ctx, JoinTimeout)
	defer cancel()
	if err := g.Sync(ctx); err != nil {
		return addReply{}, fmt.Errorf("%w: waiting for %s to catch up with the ledger: %v", ErrNoLedger, m.self, err)
	}
	cur, _ := bk.next()
	if !cur.has(joiner) {
		if len(cur.members()) >= MaxMembers {
			return addReply{}, fmt.Errorf("%w: the ledger has %d members, the most it may have", ErrRefused, MaxMembers)
		}
		members := slices.Sorted(slices.Values(append(slices.Clone(cur.members()), joiner)))
		body, err := wire.Marshal(&rosterBody{Ledger: cur.id(), Epoch: cur.epoch() + 1, Members: members})
		if err != nil {
			return addReply{}, err
		}
		e := rosterEntry{Body: body, Sigs: []memberSig{{By: m.self, Sig: m.sign(rosterDomain, body)}}}
		var mu sync.Mutex
		others := slices.DeleteFunc(slices.Clone(cur.members()), func(p peer.ID) bool { return p == m.self })
		refusals := m.onEach(ctx, others, "to agree to add "+joiner.String(), func(ctx context.Context, p peer.ID) error {
			s, err := voteFn.At(m.cfg.Remote, p).Call(ctx, voteReq{Roster: body, Cert: req.Cert})
			if err != nil {
				return err
			}
			if s.By != p || identity.Verify(p, rosterDomain, body, s.Sig) != nil {
				return fmt.Errorf("%w: its consent does not verify", ErrForged)
			}
			mu.Lock()
			e.Sigs = append(e.Sigs, s)
			mu.Unlock()
			return nil
		})
		if need := majority(len(cur.members())); len(e.Sigs) < need {
			return addReply{}, fmt.Errorf("%w: %d of the ledger's %d members agree to add %s, %d must: %w",
				ErrRefused, len(e.Sigs), len(cur.members()), joiner, need, refusals)
		}
		cmd, err := wire.Marshal(&rosterCmd{Op: opMembers, Roster: &e})
		if err != nil {
			return addReply{}, err
		}
		if _, err := m.applyCmd(ctx, g, cmd); err != nil {
			return addReply{}, fmt.Errorf("ledger: add %s: %w", joiner, err)
		}
	}
	if err := g.AddMember(ctx, joiner); err != nil {
		return addReply{}, fmt.Errorf("%w: add %s to the ledger's group: %v", ErrNoLedger, joiner, err)
	}
	// The change is committed, but this member (a follower, maybe) may
	// not have applied it yet: answer with a roster that names the joiner.
	r, err := waitRoster(ctx, bk, func(c chain) bool { return c.has(joiner) })
	if err != nil {
		return addReply{}, fmt.Errorf("%w: waiting for %s to apply the change that adds %s: %v", ErrNoLedger, m.self, joiner, err)
	}
	return addReply{Roster: r}, nil
}

// serveVote is a member's consent to a change of members another member
// proposes: given if this member trusts the new one too.
func (m *Manager) serveVote(ctx context.Context, req voteReq) (memberSig, error) {
	g, bk := m.node()
	if g == nil {
		return memberSig{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	if err := g.Sync(ctx); err != nil {
		return memberSig{}, fmt.Errorf("%w: waiting for %s to catch up with the ledger: %v", ErrNoLedger, m.self, err)
	}
	cur, _ := bk.next()
	if from := remote.Caller(ctx); !cur.has(from) {
		return memberSig{}, fmt.Errorf("%w: %s is no member of ledger %s", ErrRefused, from, cur.id())
	}
	e := rosterEntry{Body: req.Roster}
	if err := e.decode(); err != nil {
		return memberSig{}, err
	}
	joiner, err := cur.adds(&e)
	if err != nil {
		return memberSig{}, err
	}
	if err := m.admit(joiner, req.Cert); err != nil {
		return memberSig{}, err
	}
	return memberSig{By: m.self, Sig: m.sign(rosterDomain, req.Roster)}, nil
}

// applyCmd applies a command on the ledger's group and returns its
// outcome, or the error it names.
func (m *Manager) applyCmd(ctx context.Context, g *group.Group, cmd []byte) (outcome, error) {
	out, err := g.Apply(ctx, cmd)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNoLedger, err)), fmt.Errorf("%w: %w", ErrNoLedger, err)
	}
	return decodeOutcome(out)
}

// decodeOutcome decodes what the ledger's state machine returned for an
// entry, and the error it stands for.
func decodeOutcome(out []byte) (outcome, error) {
	var o outcome
	if err := wire.Unmarshal(out, &o); err != nil {
		return fail(err), fmt.Errorf("ledger outcome: %w", err)
	}
	return o, errorOf(o.Code, o.Msg)
}
