package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// How a node asks the ledger, and how a ledger node answers. A node that
// keeps no ledger asks only the members of the roster it knows, and
// believes an answer only if one of them signed it, for this question.
// It learns the roster once, from a node it trusts, and then only extends
// it with changes that a majority of its members signed.

type submitReq struct {
	Tx []byte `cbor:"1,keyasint"`
}

type accountReq struct {
	User  peer.ID `cbor:"1,keyasint"`
	Nonce []byte  `cbor:"2,keyasint"` // makes each answer one to this question
}

type infoReq struct {
	// Roster asks for the roster too: a node learning the ledger.
	Roster bool   `cbor:"1,keyasint,omitempty"`
	Nonce  []byte `cbor:"2,keyasint,omitempty"`
}

// infoReply answers a question about the ledger: from a ledger node, its
// state signed (Signed); from any node that knows the ledger, the roster
// it knows and whose node it is (Cert), so that a node that trusts it may
// learn the ledger from it.
type infoReply struct {
	Roster chain         `cbor:"1,keyasint,omitempty"`
	Cert   nodecert.Cert `cbor:"2,keyasint"`
	Signed *signedAnswer `cbor:"3,keyasint,omitempty"`
}

var (
	submitFn  = remote.Declare[submitReq, signedAnswer]("nube.ledger.submit")
	accountFn = remote.Declare[accountReq, signedAnswer]("nube.ledger.account")
	infoFn    = remote.Declare[infoReq, infoReply]("nube.ledger.info")
	whoisFn   = remote.Declare[struct{}, nodecert.Cert]("nube.ledger.whois")
)

// askFor bounds each question to one ledger node.
const askFor = 15 * time.Second

// maxAsked bounds the connected peers asked what the ledger is.
const maxAsked = 32

func nonce() []byte {
	b := make([]byte, nonceSize)
	rand.Read(b)
	return b
}

// answer signs body as this member's answer of kind to the question req.
func (m *Manager) answer(ctx context.Context, g *group.Group, bk *fsm, kind string, req []byte, body any) (signedAnswer, error) {
	bb, err := wire.Marshal(body)
	if err != nil {
		return signedAnswer{}, err
	}
	var r chain
	var seq uint64
	look := func() { bk.view(func(s *state, c chain) { r, seq = c, s.Seq }) }
	if look(); r == nil {
		// This member has not applied the genesis yet: catch up first.
		if err := g.Sync(ctx); err != nil {
			return signedAnswer{}, fmt.Errorf("%w: waiting for %s to catch up with the ledger: %v", ErrNoLedger, m.self, err)
		}
		if look(); r == nil {
			return signedAnswer{}, fmt.Errorf("%w: %s keeps a ledger that has no roster", ErrNoLedger, m.self)
		}
	}
	ab, err := wire.Marshal(&answer{Ledger: r.id(), Epoch: r.epoch(), Seq: seq, Kind: kind, Req: reqHash(req), Body: bb})
	if err != nil {
		return signedAnswer{}, err
	}
	return signedAnswer{Answer: ab, By: m.self, Sig: m.sign(answerDomain, ab), Leader: g.Leader()}, nil
}

// pass lets a call from p through the door's rate, or says why not.
func (m *Manager) pass(ctx context.Context) error {
	if p := remote.Caller(ctx); p != m.self && !m.door.allow(p) {
		return errBusy(p, m.door.rate)
	}
	return nil
}

// serveSubmit takes a transaction from any node (the signatures, not the
// caller, say whose it is), checks it at the door and applies it.
func (m *Manager) serveSubmit(ctx context.Context, req submitReq) (signedAnswer, error) {
	g, bk := m.node()
	if g == nil {
		return signedAnswer{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	if err := m.pass(ctx); err != nil {
		return signedAnswer{}, err
	}
	o, logged, _ := m.propose(ctx, g, bk, req.Tx, false)
	// What the log applied, every member answers alike (quorum.go); a
	// refusal at the door is this member's alone.
	if logged {
		return m.recorded(ctx, g, bk, kindSubmit, reqHash(req.Tx))
	}
	o.Leader = ""
	return m.answer(ctx, g, bk, kindSubmit, req.Tx, o)
}

// maxProposing bounds the transactions one member proposes at once.
const maxProposing = 4096

// proposing1 marks the transaction id as under way on this member until
// done is called; a second copy while it is refused (ErrReplay).
func (m *Manager) proposing1(id string) (done func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.proposing[id]; dup {
		return nil, fmt.Errorf("%w: transaction %s is being proposed already", ErrReplay, id)
	}
	if len(m.proposing) >= maxProposing {
		return nil, fmt.Errorf("%w: %d transactions under way on this ledger node", errcode.ErrBusy, len(m.proposing))
	}
	m.proposing[id] = struct{}{}
	return func() {
		m.mu.Lock()
		delete(m.proposing, id)
		m.mu.Unlock()
	}, nil
}

// propose checks tx at the door (its shape, then what this member's state
// says of it, then its signatures, unless this node made it and checked
// them) and applies it: a transaction refused at the door never reaches
// the log. logged says it was applied (or refused) by the log.
func (m *Manager) propose(ctx context.Context, g *group.Group, bk *fsm, tx []byte, checked bool) (o outcome, logged bool, err error) {
	st, err := decodeTx(tx, false)
	if err == nil {
		var done func()
		if done, err = m.proposing1(st.tx.ID()); err == nil {
			defer done()
			err = m.precheck(ctx, g, bk, st)
		}
	}
	if err == nil && !checked {
		err = st.check()
	}
	if err != nil {
		return fail(err), false, err
	}
	bk.m.markChecked(tx)
	b, err := wire.Marshal(&command{Op: opTx, Time: time.Now().UnixNano(), Tx: tx, Stamps: m.stampsIfLate(ctx, bk)})
	if err != nil {
		return fail(err), false, err
	}
	out, err := g.Apply(ctx, b)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNoLedger, err)), false, fmt.Errorf("%w: %w", ErrNoLedger, err)
	}
	o, err = decodeOutcome(out)
	return o, true, err
}

// precheck judges t against this member's state; a member that may lag
// the ledger judges a spend it would refuse again once it has caught up.
func (m *Manager) precheck(ctx context.Context, g *group.Group, bk *fsm, st *SignedTx) error {
	judge := func() error { return bk.m.precheck(st, time.Now().UnixNano()) }
	err := judge()
	// What a lagging member has not applied yet (the credit, the reserve
	// or the line a transaction spends, the genesis) can make it refuse
	// what the ledger would take: judge those again once caught up.
	if errors.Is(err, ErrInsufficient) || errors.Is(err, ErrNoLedger) || errors.Is(err, ErrNoReserve) || errors.Is(err, ErrNoLine) {
		if g.Sync(ctx) == nil {
			err = judge()
		}
	}
	return err
}

// Submit applies a signed transaction to the ledger: here on a ledger
// node, else through a member of the ledger, whose signed answer it
// checks. It gives up after CallTimeout unless ctx says otherwise.
func (m *Manager) Submit(ctx context.Context, st *SignedTx) (Outcome, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	return m.submit(ctx, st, false)
}

// submit is Submit, told whether st was checked on this node already.
func (m *Manager) submit(ctx context.Context, st *SignedTx, checked bool) (Outcome, error) {
	b, err := st.Encode()
	if err != nil {
		return Outcome{}, err
	}
	if g, bk := m.node(); g != nil {
		o, _, err := m.propose(ctx, g, bk, b, checked)
		return o.public(), err
	}
	o, err := ask(m, ctx, kindSubmit, b, func(ctx context.Context, p peer.ID) (signedAnswer, error) {
		return submitFn.At(m.cfg.Remote, p).Call(ctx, submitReq{Tx: b})
	}, func(o outcome) error {
		if o.Code == "no_ledger" {
			return errorOf(o.Code, o.Msg) // that member lost its group: ask another
		}
		return nil
	}, func(o outcome) bool { return o.Code != "" })
	if err != nil {
		return Outcome{}, err
	}
	return o.public(), errorOf(o.Code, o.Msg)
}

// Outcome is what the ledger did with a transaction.
type Outcome struct {
	// Seq is the ledger's count of transactions, this one included.
	Seq uint64 `json:"seq"`
	// Balance is the debited account's balance after it.
	Balance int64 `json:"balance"`
	// Amount is what a settlement paid the payee.
	Amount int64 `json:"amount,omitempty"`
	// Payee is the account a transfer paid: the user named, or the user
	// of the node named (Node).
	Payee peer.ID `json:"payee,omitempty"`
	// Node is set when the payee was named by one of its nodes: the node,
	// whose cert made Payee its user.
	Node peer.ID `json:"node,omitempty"`
}

func (o outcome) public() Outcome { return Outcome{Seq: o.Seq, Balance: o.Balance, Amount: o.Amount} }

// ask puts a question to the ledger's members, one after another (the
// leader last heard of first), until one answers; each answer is checked
// against the roster (and then by next, if set) before it is believed. An
// answer that final says is final (a refusal at the door, say: it makes
// the node believe nothing) is taken on its member's word; any other only
// once a majority of the members signed it (quorum.go).
func ask[T any](m *Manager, ctx context.Context, kind string, req []byte, call func(context.Context, peer.ID) (signedAnswer, error), next func(T) error, final func(T) bool) (T, error) {
	var zero T
	c, err := m.roster(ctx)
	if err != nil {
		return zero, err
	}
	var last error
	order := m.order(c)
	var cf *confirmation
	if len(order) > 0 {
		cf = m.confirming(ctx, c, kind, req, order[0])
	}
	defer cf.stop()
	for _, p := range order {
		if ctx.Err() != nil {
			break
		}
		actx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ledger"), askFor)
		v, sa, err := askOne[T](m, actx, c, p, kind, req, call)
		cancel()
		if err == nil && next != nil {
			err = next(v)
		}
		if err == nil && (final == nil || !final(v)) {
			// A member answered; asking another the same question would
			// apply it again, or refuse it as a replay.
			if nc := m.knownRoster(); nc.epoch() != c.epoch() {
				cf.stop() // the members changed under the question
				cf = m.confirming(ctx, nc, kind, req, sa.By)
			}
			if err := cf.wait(sa); err != nil {
				return zero, err
			}
		}
		if err == nil {
			return v, nil
		}
		if errors.Is(err, ErrImpostor) {
			m.log.Warn("refused an answer for the ledger", "peer", p, "err", err)
		}
		m.log.Debug("a ledger member did not answer", "peer", p, "err", err)
		last = err
		c = m.knownRoster() // an answer may have extended it
	}
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%w: waiting for a member of ledger %s (%v) to answer: %w (last: %v)", ErrNoLedger, c.id(), c.members(), err, last)
	}
	return zero, fmt.Errorf("%w: no member of ledger %s (%v) answered: %w", ErrNoLedger, c.id(), c.members(), last)
}

// askOne asks member p, and checks its answer.
func askOne[T any](m *Manager, ctx context.Context, c chain, p peer.ID, kind string, req []byte, call func(context.Context, peer.ID) (signedAnswer, error)) (T, signedAnswer, error) {
	var v T
	sa, err := call(ctx, p)
	if err != nil {
		return v, sa, err
	}
	var a answer
	if wire.Unmarshal(sa.Answer, &a) == nil && a.Ledger == c.id() && a.Epoch > c.epoch() {
		// A member of a later roster: learn the changes from p, each
		// checked against the one before.
		if c, err = m.extend(ctx, p, c); err != nil {
			return v, sa, err
		}
	}
	if _, err := c.check(sa, kind, reqHash(req), &v); err != nil {
		return v, sa, err
	}
	if sa.Leader != "" && c.has(sa.Leader) {
		m.noteLeader(sa.Leader)
	}
	return v, sa, nil
}

// extend asks member p for the roster, and takes it if it extends c.
func (m *Manager) extend(ctx context.Context, p peer.ID, c chain) (chain, error) {
	rep, err := infoFn.At(m.cfg.Remote, p).Call(ctx, infoReq{Roster: true, Nonce: nonce()})
	if err != nil {
		return nil, err
	}
	nc, err := verifyChain(rep.Roster)
	if err != nil {
		return nil, fmt.Errorf("%w: %s's roster: %v", ErrImpostor, p, err)
	}
	if !nc.extends(c) {
		return nil, fmt.Errorf("%w: %s's roster is not ledger %s's", ErrImpostor, p, c.id())
	}
	m.remember(nc, false)
	return nc, nil
}

// order lists c's members to ask, the leader last heard of first.
func (m *Manager) order(c chain) []peer.ID {
	m.mu.Lock()
	lead := m.known.Leader
	m.mu.Unlock()
	out := slices.DeleteFunc(slices.Clone(c.members()), func(p peer.ID) bool { return p == m.self || p == lead })
	if lead != "" && lead != m.self && c.has(lead) {
		out = append([]peer.ID{lead}, out...)
	}
	return out
}

// roster returns the ledger's roster as this node knows it, learning it
// first if it knows none.
func (m *Manager) roster(ctx context.Context) (chain, error) {
	if c := m.knownRoster(); c != nil {
		return c, nil
	}
	return m.learn(ctx)
}

// learn asks the ledger nodes found on the DHT, then the connected peers,
// what the ledger is, and believes the first that this node trusts (a node
// of its own user, or one it was told to trust). Nobody else's word is
// taken, however well its roster is signed: a roster proves only that its
// members agree, not that they are the ledger this node's user meant.
func (m *Manager) learn(ctx context.Context) (chain, error) {
	tried := map[peer.ID]bool{m.self: true}
	var untrusted []string
	var last error
	try := func(p peer.ID) chain {
		if tried[p] {
			return nil
		}
		tried[p] = true
		cctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ledger"), askFor)
		defer cancel()
		rep, err := infoFn.At(m.cfg.Remote, p).Call(cctx, infoReq{Roster: true, Nonce: nonce()})
		if err != nil {
			last = err
			return nil
		}
		if err := rep.Cert.Check(p); err != nil {
			last = fmt.Errorf("%w: %s: %v", ErrForged, p, err)
			return nil
		}
		if !m.trusts(p, rep.Cert.User) {
			untrusted = append(untrusted, fmt.Sprintf("%s (user %s)", p, rep.Cert.User))
			return nil
		}
		c, err := verifyChain(rep.Roster)
		if err != nil {
			last = fmt.Errorf("%s: %w", p, err)
			return nil
		}
		m.log.Info("learned the ledger", "ledger", c.id(), "from", p, "user", rep.Cert.User)
		return c
	}
	found := func(c chain) (chain, error) {
		m.remember(c, false)
		return m.knownRoster(), nil
	}
	if m.cfg.Routing != nil {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for ai := range m.cfg.Routing.FindProvidersAsync(fctx, locator(), 8) {
			if len(ai.Addrs) > 0 {
				m.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			}
			if c := try(ai.ID); c != nil {
				return found(c)
			}
		}
	}
	// A node of this node's user, or one it trusts, may know the ledger
	// without being a ledger node.
	for i, p := range m.cfg.Host.Network().Peers() {
		if i == maxAsked || ctx.Err() != nil {
			break
		}
		if c := try(p); c != nil {
			return found(c)
		}
	}
	switch {
	case len(untrusted) > 0:
		return nil, fmt.Errorf("%w: no node this node trusts said what the ledger is; %s answered for one, but this node trusts "+
			"neither them nor their users (start it with --trust USER, the user of a ledger node)", ErrNoLedger, strings.Join(untrusted, ", "))
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: waiting for a node this node trusts to say what the ledger is: %w", ErrNoLedger, ctx.Err())
	case last != nil:
		return nil, fmt.Errorf("%w: this node knows no ledger, and learned none: %w", ErrNoLedger, last)
	}
	return nil, fmt.Errorf("%w: this node knows no ledger and found no node it trusts that does (create one with 'nube ledger create', "+
		"or trust a ledger node's user with --trust)", ErrNoLedger)
}

// Account is an account as the ledger keeps it.
type Account struct {
	User peer.ID `cbor:"1,keyasint" json:"user"`
	// Balance is what the account has: negative when it owes.
	Balance int64 `cbor:"2,keyasint" json:"balance"`
	// Reserved is what its open reserves hold, already out of Balance.
	Reserved int64 `cbor:"3,keyasint" json:"reserved"`
	// Limit is how far below zero the balance may go: Granted + Vouched
	// - Vouching (negative when the user vouches with credit it earned).
	Limit int64 `cbor:"4,keyasint" json:"limit"`
	// Available is what it can spend now: Balance + Limit.
	Available int64 `cbor:"5,keyasint" json:"available"`
	// History is its latest entries, oldest first.
	History []Entry `cbor:"6,keyasint,omitempty" json:"history,omitempty"`
	Ledger  string  `cbor:"7,keyasint" json:"ledger"`
	// Known says User is a user the ledger knows, to be paid: a founder,
	// or one that signed a transaction the ledger applied. An account
	// that was only paid is not: anyone can pay any ID, a node's too.
	Known bool `cbor:"8,keyasint,omitempty" json:"known"`
	// Granted is the limit the genesis gave it (a founding user's).
	Granted int64 `cbor:"9,keyasint,omitempty" json:"granted,omitempty"`
	// Vouched is the sum of the trust lines extended to it; Vouching,
	// of those it extends.
	Vouched  int64 `cbor:"10,keyasint,omitempty" json:"vouched,omitempty"`
	Vouching int64 `cbor:"11,keyasint,omitempty" json:"vouching,omitempty"`
	// Lines are those lines: to it first, then from it.
	Lines []Line `cbor:"12,keyasint,omitempty" json:"lines,omitempty"`
}

func localAccount(bk *fsm, u peer.ID) (a Account, ok bool) {
	bk.m.view(func(s *state) {
		a, ok = s.account(u)
		// Known: a founder, or an account that signed a transaction. An
		// account that was only paid may be anyone's ID, a node's too:
		// anyone can pay any ID.
		acc := s.Accounts[u]
		a.Known = a.Granted > 0 || acc != nil && acc.Signed != 0
	})
	return a, ok
}

// synced returns this ledger node's group and state machine once it has applied
// every entry acknowledged before the call, so that what it then reads of
// its own state is linearizable.
func (m *Manager) synced(ctx context.Context) (*group.Group, *fsm, error) {
	g, bk := m.node()
	if g == nil {
		return nil, nil, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	if err := g.Sync(ctx); err != nil {
		return nil, nil, fmt.Errorf("%w: waiting for %s to catch up with the ledger: %w", ErrNoLedger, m.self, err)
	}
	return g, bk, nil
}

// serveAccount answers through the log: every member applies the read and
// records the same answer, which the others then confirm.
func (m *Manager) serveAccount(ctx context.Context, req accountReq) (signedAnswer, error) {
	if err := m.pass(ctx); err != nil {
		return signedAnswer{}, err
	}
	g, bk := m.node()
	if g == nil {
		return signedAnswer{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	// The question goes into the log: nothing in it may be larger than
	// it must.
	if len(req.Nonce) != nonceSize {
		return signedAnswer{}, fmt.Errorf("%w: a question's nonce of %d bytes (%d)", ErrMalformed, len(req.Nonce), nonceSize)
	}
	if err := validID(req.User); err != nil {
		return signedAnswer{}, err
	}
	rb, err := wire.Marshal(&req)
	if err != nil {
		return signedAnswer{}, err
	}
	return m.readEntry(ctx, g, bk, kindAccount, rb)
}

// Account returns user's account (empty: this node's user), as of a
// moment between the call and its return.
func (m *Manager) Account(ctx context.Context, user peer.ID) (Account, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	if user == "" {
		user = m.user
	}
	if m.IsNode() {
		_, bk, err := m.synced(ctx)
		if err != nil {
			return Account{}, err
		}
		a, ok := localAccount(bk, user)
		if !ok {
			return Account{}, fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
		}
		return a, nil
	}
	req := accountReq{User: user, Nonce: nonce()}
	rb, err := wire.Marshal(&req)
	if err != nil {
		return Account{}, err
	}
	return ask[Account](m, ctx, kindAccount, rb, func(ctx context.Context, p peer.ID) (signedAnswer, error) {
		return accountFn.At(m.cfg.Remote, p).Call(ctx, req)
	}, nil, nil)
}

// Info describes the ledger.
type Info struct {
	ID      string    `cbor:"1,keyasint" json:"id"`
	Nodes   []peer.ID `cbor:"2,keyasint" json:"nodes"`
	Leader  peer.ID   `cbor:"3,keyasint,omitempty" json:"leader,omitempty"`
	Limit   int64     `cbor:"4,keyasint" json:"limit"`
	Created time.Time `cbor:"5,keyasint" json:"created"`
	// Seq counts the transactions applied.
	Seq      uint64 `cbor:"6,keyasint" json:"seq"`
	Accounts int    `cbor:"7,keyasint" json:"accounts"`
	// Escrow is what open reserves hold; Reserves how many there are.
	Escrow   int64 `cbor:"8,keyasint" json:"escrow"`
	Reserves int   `cbor:"9,keyasint" json:"reserves"`
	// Sum is every balance plus the escrow: zero on a sound ledger.
	Sum int64 `cbor:"10,keyasint" json:"sum"`
	// Member is set when the node asked keeps the ledger.
	Member bool `cbor:"11,keyasint,omitempty" json:"member,omitempty"`
	// Founders are the users the genesis granted Limit to (none: a ledger
	// from before trust lines, where every account has it).
	Founders []peer.ID `cbor:"12,keyasint,omitempty" json:"founders,omitempty"`
}

// serveInfo answers from this member's state, once it has caught up, and
// from any node with the roster it knows.
func (m *Manager) serveInfo(ctx context.Context, req infoReq) (infoReply, error) {
	if err := m.pass(ctx); err != nil {
		return infoReply{}, err
	}
	rep := infoReply{Cert: m.cert}
	if !m.IsNode() {
		if req.Roster {
			rep.Roster = m.knownRoster()
		}
		if rep.Roster == nil {
			return infoReply{}, fmt.Errorf("%w: %s knows no ledger", ErrNoLedger, m.self)
		}
		return rep, nil
	}
	g, bk := m.node()
	if g == nil {
		return infoReply{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	if len(req.Nonce) != nonceSize {
		return infoReply{}, fmt.Errorf("%w: a question's nonce of %d bytes (%d)", ErrMalformed, len(req.Nonce), nonceSize)
	}
	rb, err := wire.Marshal(&req)
	if err != nil {
		return infoReply{}, err
	}
	sa, err := m.readEntry(ctx, g, bk, kindInfo, rb)
	if err != nil {
		return infoReply{}, err
	}
	rep.Signed = &sa
	if req.Roster {
		rep.Roster, _ = bk.next()
	}
	return rep, nil
}

// LocalInfo describes this ledger node's own copy of the ledger, which
// may lag the leader's by the entries it has not applied yet.
func (m *Manager) LocalInfo(ctx context.Context) (Info, error) {
	g, bk := m.node()
	if g == nil {
		return Info{}, fmt.Errorf("%w: %s keeps no ledger", ErrNoLedger, m.self)
	}
	return m.localInfo(ctx, g, bk)
}

func (m *Manager) localInfo(ctx context.Context, g *group.Group, bk *fsm) (Info, error) {
	var in Info
	ok := false
	bk.view(func(s *state, r chain) { in, ok = infoOf(s, r) })
	if !ok {
		return Info{}, fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
	}
	if in.Nodes == nil { // a ledger from before rosters: its group's members
		st, err := g.Status(ctx)
		if err != nil {
			return Info{}, err
		}
		for _, mb := range st.Members {
			in.Nodes = append(in.Nodes, mb.ID)
		}
	}
	in.Leader = g.Leader()
	in.Member = true
	return in, nil
}

// infoOf describes the ledger from its state and roster alone, the same
// on every member that applied the same entries; false before the genesis.
func infoOf(s *state, r chain) (Info, bool) {
	if s.Genesis == nil {
		return Info{}, false
	}
	return Info{ID: s.Genesis.ID, Limit: s.Genesis.Limit, Created: time.Unix(0, s.Genesis.Created).UTC(), Nodes: slices.Clone(r.members()),
		Seq: s.Seq, Accounts: len(s.Accounts), Escrow: s.Escrow, Reserves: len(s.Reserves), Sum: s.Sum(),
		Founders: slices.Clone(s.Genesis.Founders)}, true
}

// Info describes the ledger, as of a moment between the call and its
// return: from this node if it keeps the ledger, else from a member.
func (m *Manager) Info(ctx context.Context) (Info, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	if m.IsNode() {
		g, bk, err := m.synced(ctx)
		if err != nil {
			return Info{}, err
		}
		return m.localInfo(ctx, g, bk)
	}
	req := infoReq{Nonce: nonce()}
	rb, err := wire.Marshal(&req)
	if err != nil {
		return Info{}, err
	}
	in, err := ask[Info](m, ctx, kindInfo, rb, func(ctx context.Context, p peer.ID) (signedAnswer, error) {
		rep, err := infoFn.At(m.cfg.Remote, p).Call(ctx, req)
		if err == nil && rep.Signed == nil {
			err = fmt.Errorf("%w: %s answered without signing", ErrImpostor, p)
		}
		if err != nil {
			return signedAnswer{}, err
		}
		return *rep.Signed, nil
	}, nil, nil)
	if err != nil {
		return Info{}, err
	}
	in.Nodes, in.Member = slices.Clone(m.knownRoster().members()), false
	m.mu.Lock()
	in.Leader = m.known.Leader
	m.mu.Unlock()
	return in, nil
}

func (m *Manager) serveWhois(context.Context, struct{}) (nodecert.Cert, error) { return m.cert, nil }

// whoisFor bounds the question to a payee's node of whose it is.
const whoisFor = 10 * time.Second

// Send transfers amount millicredits from this node's user to to: a user
// the ledger knows, or a node, whose user (as its cert says) is paid. The
// outcome says which account was paid. Any other ID is refused with
// ErrUnknownPayee: credit sent to it could never be spent.
func (m *Manager) Send(ctx context.Context, to peer.ID, amount int64, memo string) (Outcome, error) {
	ctx, cancel := withDeadline(ctx, CallTimeout)
	defer cancel()
	payee, node, err := m.payee(ctx, to)
	if err != nil {
		return Outcome{}, err
	}
	st, err := Sign(m.cfg.UserKey, Tx{Kind: Transfer, From: m.user, To: payee, Amount: amount, Memo: memo})
	if err != nil {
		return Outcome{}, err
	}
	// Its shape only: it was signed here just now, with this user's key,
	// so verifying the signature again (a ninth of a transfer's CPU in
	// bench/ledger.sh) would tell nothing.
	if err := st.checkWith(false); err != nil {
		return Outcome{}, err
	}
	o, err := m.submit(ctx, st, true)
	o.Payee, o.Node = payee, node
	return o, err
}

// payee finds the account a payment to to pays: to itself if the ledger
// knows it, else the user of the node to. What it found is remembered:
// an account, once made, is never unmade, and a node's cert names its user
// for good.
func (m *Manager) payee(ctx context.Context, to peer.ID) (user, node peer.ID, err error) {
	if to == m.user || to == m.self {
		return "", "", fmt.Errorf("%w: %s is this node's own user or node", ErrMalformed, to)
	}
	m.mu.Lock()
	found, ok := m.payees[to]
	m.mu.Unlock()
	if ok {
		return found.user, found.node, nil
	}
	user, node, err = m.findPayee(ctx, to)
	if err == nil {
		m.mu.Lock()
		if len(m.payees) >= maxPayees {
			clear(m.payees)
		}
		m.payees[to] = payeeOf{user, node}
		m.mu.Unlock()
	}
	return user, node, err
}

// payeeOf is what a payee's ID was found to be.
type payeeOf struct{ user, node peer.ID }

// maxPayees bounds the payees a node remembers.
const maxPayees = 1024

func (m *Manager) findPayee(ctx context.Context, to peer.ID) (user, node peer.ID, err error) {
	ofNode := func() (peer.ID, error) {
		wctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(ctx, "ledger"), whoisFor)
		defer cancel()
		cert, err := whoisFn.At(m.cfg.Remote, to).Call(wctx, struct{}{})
		if err != nil {
			return "", err
		}
		if err := cert.Check(to); err != nil {
			return "", fmt.Errorf("%w: %v", ErrForged, err)
		}
		if cert.User == m.user {
			return "", fmt.Errorf("%w: %s is a node of this node's own user", ErrMalformed, to)
		}
		return cert.User, nil
	}
	// A connected peer is a node: its own ID is no account to pay.
	if m.cfg.Host.Network().Connectedness(to) == network.Connected {
		if u, err := ofNode(); err == nil || errors.Is(err, ErrMalformed) {
			return u, to, err
		}
	}
	if known, err := m.knownAccount(ctx, to); err != nil || known {
		return to, "", err
	}
	u, err := ofNode()
	if err == nil || errors.Is(err, ErrMalformed) {
		return u, to, err
	}
	return "", "", fmt.Errorf("%w: %s is no account the ledger knows, and no node answered as %s to say whose it is (%v): "+
		"pay a user ID the ledger knows ('nube id' prints a node's user), or an online node of the payee's", ErrUnknownPayee, to, to, err)
}

// knownAccount reports whether the ledger has an account for u. A ledger
// node looks at its own state first: an account, once made, is never
// unmade, so only one it does not know yet costs it a catching up.
func (m *Manager) knownAccount(ctx context.Context, u peer.ID) (bool, error) {
	if g, bk := m.node(); g != nil {
		if a, ok := localAccount(bk, u); ok && a.Known {
			return true, nil
		}
	}
	a, err := m.Account(ctx, u)
	return a.Known, err
}
