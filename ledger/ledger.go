package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// GroupName is the name of the group the ledger nodes form.
const GroupName = "ledger"

// DefaultLimit is the credit limit of every account of a ledger created
// without one: 100 credits.
const DefaultLimit = 100 * millisPerUnit

// DefaultTickInterval is how often the leading ledger node returns the
// reserves that expired.
const DefaultTickInterval = 5 * time.Second

// Config configures a Manager.
type Config struct {
	// Host is the node: its ID, its connections.
	Host host.Host
	// Remote carries transactions to the ledger nodes and serves them on
	// a ledger node. Required.
	Remote *remote.Endpoint
	// Groups runs the ledger's group on a ledger node. Required.
	Groups *group.Manager
	// Routing announces a ledger node, and finds one for a node that is
	// not. Nil means only the ledger nodes this node remembers are asked.
	Routing routing.ContentRouting
	// UserKey is the account this node pays from and is paid to. Required.
	UserKey ed25519.PrivateKey
	// Dir keeps ledger.json: the ledger's ID and the nodes this node
	// knows serve it. Empty means memory only.
	Dir string
	// Admit says whether the node of user may make this node a ledger
	// node (ledger create) or join the ledger through it. Nil admits the
	// nodes of this node's own user only.
	Admit func(node, user peer.ID) error
	// StoragePrice is what this node asks, in millicredits per GiB-day,
	// for holding other users' spaces.
	StoragePrice uint64
	// MaxStoragePrice is the most this node's user pays per GiB-day to a
	// holder of its spaces. Zero means DefaultMaxStoragePrice.
	MaxStoragePrice uint64
	// TickInterval is how often the leader returns expired reserves.
	// Zero means DefaultTickInterval.
	TickInterval time.Duration
	// Logger receives the layer's logs. Nil means none.
	Logger *slog.Logger
}

// DefaultMaxStoragePrice is the most a node pays per GiB-day of storage
// unless told otherwise: 10 credits.
const DefaultMaxStoragePrice = 10 * millisPerUnit

// Validate reports a missing or nonsensical field, naming it.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("ledger: Config.Host is required")
	case c.Remote == nil:
		return errors.New("ledger: Config.Remote is required")
	case c.Groups == nil:
		return errors.New("ledger: Config.Groups is required")
	case len(c.UserKey) != ed25519.PrivateKeySize:
		return errors.New("ledger: Config.UserKey is required (an ed25519 private key)")
	case c.TickInterval < 0:
		return fmt.Errorf("ledger: Config.TickInterval is negative (%v)", c.TickInterval)
	}
	return nil
}

// Manager is a node's door to the ledger: it pays and is paid through it,
// and on a ledger node it also keeps the ledger.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	self    peer.ID
	user    peer.ID
	cert    identity.Cert
	machine *machine
	unserve []func()

	mu    sync.Mutex
	g     *group.Group // set on a ledger node
	known known        // the ledger this node last found

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// known is what a node remembers of the ledger, in ledger.json.
type known struct {
	ID    string    `json:"id,omitempty"`
	Nodes []peer.ID `json:"nodes,omitempty"`
}

// New starts a Manager. A node that was a ledger node reopens the ledger's
// group with its log.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.MaxStoragePrice == 0 {
		cfg.MaxStoragePrice = DefaultMaxStoragePrice
	}
	user, err := identity.ID(cfg.UserKey.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	cert, err := identity.NewCert(cfg.UserKey, cfg.Host.ID())
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, self: cfg.Host.ID(), user: user, cert: cert, machine: newMachine()}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.loadKnown()
	if slices.Contains(cfg.Groups.Names(), GroupName) {
		g, err := cfg.Groups.Open(ctx, GroupName, group.Options{Machine: m.machine})
		if err != nil {
			m.cancel()
			return nil, fmt.Errorf("ledger: reopen: %w", err)
		}
		m.member(g)
	}
	m.unserve = []func(){
		remote.Handle(cfg.Remote, submitFn, m.serveSubmit),
		remote.Handle(cfg.Remote, accountFn, m.serveAccount),
		remote.Handle(cfg.Remote, infoFn, m.serveInfo),
		remote.Handle(cfg.Remote, formFn, m.serveForm),
		remote.Handle(cfg.Remote, addFn, m.serveAdd),
	}
	return m, nil
}

// Close stops the manager. The ledger's group is closed by the group
// manager.
func (m *Manager) Close() error {
	m.cancel()
	for _, stop := range m.unserve {
		stop()
	}
	m.wg.Wait()
	return nil
}

// IsNode reports whether this node keeps the ledger.
func (m *Manager) IsNode() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g != nil
}

func (m *Manager) group() *group.Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g
}

// member makes this node a ledger node with group g: it announces itself
// and returns expired reserves while it leads.
func (m *Manager) member(g *group.Group) {
	m.mu.Lock()
	if m.g != nil || m.ctx.Err() != nil { // a member already, or closed
		m.mu.Unlock()
		return
	}
	m.g = g
	m.mu.Unlock()
	m.wg.Add(2)
	go m.announce()
	go m.tick(g)
}

// locator is the CID under which ledger nodes announce themselves.
func locator() cid.Cid {
	h, _ := mh.Sum([]byte("nube ledger locator v1"), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

// announceEvery is how often a ledger node renews its provider record.
const announceEvery = 6 * time.Hour

func (m *Manager) announce() {
	defer m.wg.Done()
	if m.cfg.Routing == nil {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
		if err := m.cfg.Routing.Provide(ctx, locator(), true); err != nil {
			m.log.Debug("could not announce the ledger", "err", err)
		}
		cancel()
		select {
		case <-m.ctx.Done():
			return
		case <-time.After(announceEvery):
		}
	}
}

// tick returns expired reserves and forgets old nonces, while this node
// leads.
func (m *Manager) tick(g *group.Group) {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if g.Leader() != m.self {
			continue
		}
		now := time.Now().UnixNano()
		due := false
		m.machine.view(func(s *state) {
			for _, r := range s.Reserves {
				due = due || r.Expires <= now
			}
			old := now - int64(2*Window)
			for _, t := range s.Nonces {
				due = due || t < old
			}
		})
		if !due {
			continue
		}
		b, _ := wire.Marshal(&command{Op: opTick, Time: now})
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		if _, err := g.Apply(ctx, b); err != nil {
			m.log.Debug("ledger tick failed", "err", err)
		}
		cancel()
	}
}

func (m *Manager) knownPath() string {
	if m.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(m.cfg.Dir, "ledger.json")
}

func (m *Manager) loadKnown() {
	p := m.knownPath()
	if p == "" {
		return
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	var k known
	if json.Unmarshal(b, &k) == nil {
		m.known = k
	}
}

// remember notes the ledger's ID and nodes for the next start.
func (m *Manager) remember(id string, nodes []peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known.ID == id && slices.Equal(m.known.Nodes, nodes) {
		return
	}
	m.known = known{ID: id, Nodes: slices.Clone(nodes)}
	if p := m.knownPath(); p != "" {
		b, _ := json.Marshal(m.known)
		if err := atomicfile.Write(p, b, 0o600); err != nil {
			m.log.Warn("could not save the ledger's nodes", "err", err)
		}
	}
}

// noteNode puts p first among the ledger nodes this node asks.
func (m *Manager) noteNode(p peer.ID) {
	m.mu.Lock()
	nodes := append([]peer.ID{p}, slices.DeleteFunc(slices.Clone(m.known.Nodes), func(q peer.ID) bool { return q == p })...)
	if len(nodes) > 16 {
		nodes = nodes[:16]
	}
	id := m.known.ID
	m.mu.Unlock()
	m.remember(id, nodes)
}

// Create forms the ledger from this node and peers: it asks each of them
// to become a ledger node (they admit only nodes their offer allows) and
// writes the ledger's genesis with limit, the credit every account starts
// with (zero means DefaultLimit).
func (m *Manager) Create(ctx context.Context, limit int64, peers ...peer.ID) (Info, error) {
	if m.IsNode() {
		return Info{}, fmt.Errorf("%w: this node keeps a ledger already", ErrReplay)
	}
	if limit < 0 {
		return Info{}, fmt.Errorf("%w: negative credit limit", ErrMalformed)
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	peers = slices.DeleteFunc(slices.Clone(peers), func(p peer.ID) bool { return p == m.self })
	all := append([]peer.ID{m.self}, peers...)
	g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Members: peers, Machine: m.machine})
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrNoLedger, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		wg.Go(func() {
			_, err := formFn.At(m.cfg.Remote, p).Call(ctx, formReq{Members: all, Cert: m.cert})
			if err != nil {
				errs[i] = fmt.Errorf("ledger node %s: %w", p, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Info{}, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	now := time.Now()
	b, _ := wire.Marshal(&command{Op: opGenesis, Time: now.UnixNano(), Genesis: &Genesis{ID: hex.EncodeToString(id), Created: now.UnixNano(), Limit: limit}})
	if _, err := m.applyCmd(ctx, g, b); err != nil && !errors.Is(err, ErrReplay) {
		return Info{}, err
	}
	m.member(g)
	// This node may follow: wait until it has applied the genesis too.
	if err := m.waitFor(ctx, func(s *state) bool { return s.Genesis != nil }); err != nil {
		return Info{}, fmt.Errorf("%w: the genesis did not reach this node: %v", ErrNoLedger, err)
	}
	return m.Info(ctx)
}

// Join makes this node a ledger node through via, a ledger node that
// admits it.
func (m *Manager) Join(ctx context.Context, via peer.ID) (Info, error) {
	if m.IsNode() {
		return m.Info(ctx)
	}
	if _, err := addFn.At(m.cfg.Remote, via).Call(ctx, addReq{Cert: m.cert}); err != nil {
		return Info{}, fmt.Errorf("ledger: join through %s: %w", via, err)
	}
	g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Join: via, Machine: m.machine})
	if err != nil {
		return Info{}, fmt.Errorf("ledger: join through %s: %w", via, err)
	}
	m.member(g)
	if err := m.waitFor(ctx, func(s *state) bool { return s.Genesis != nil }); err != nil {
		return Info{}, fmt.Errorf("%w: the ledger's state did not reach this node: %v", ErrNoLedger, err)
	}
	return m.Info(ctx)
}

// admit checks the caller of a form or add against the node's offer.
func (m *Manager) admit(ctx context.Context, cert identity.Cert) error {
	from := remote.Caller(ctx)
	if err := cert.Check(from); err != nil {
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if m.cfg.Admit != nil {
		return m.cfg.Admit(from, cert.User)
	}
	if cert.User != m.user {
		return fmt.Errorf("%w: this node makes ledgers with its own user's nodes only", ErrRefused)
	}
	return nil
}

type formReq struct {
	Members []peer.ID     `cbor:"1,keyasint"`
	Cert    identity.Cert `cbor:"2,keyasint"`
}

type addReq struct {
	Cert identity.Cert `cbor:"1,keyasint"`
}

var (
	formFn    = remote.Declare[formReq, struct{}]("nube.ledger.form")
	addFn     = remote.Declare[addReq, struct{}]("nube.ledger.add")
	submitFn  = remote.Declare[submitReq, outcome]("nube.ledger.submit")
	accountFn = remote.Declare[accountReq, Account]("nube.ledger.account")
	infoFn    = remote.Declare[infoReq, Info]("nube.ledger.info")
)

func (m *Manager) serveForm(ctx context.Context, req formReq) (struct{}, error) {
	if err := m.admit(ctx, req.Cert); err != nil {
		return struct{}{}, err
	}
	if len(req.Members) > 16 || !slices.Contains(req.Members, m.self) {
		return struct{}{}, fmt.Errorf("%w: a ledger of %d nodes that does not name this one", ErrMalformed, len(req.Members))
	}
	others := slices.DeleteFunc(slices.Clone(req.Members), func(p peer.ID) bool { return p == m.self })
	g, err := m.cfg.Groups.Open(ctx, GroupName, group.Options{Members: others, Machine: m.machine})
	if err != nil {
		return struct{}{}, err
	}
	m.member(g)
	return struct{}{}, nil
}

func (m *Manager) serveAdd(ctx context.Context, req addReq) (struct{}, error) {
	g := m.group()
	if g == nil {
		return struct{}{}, fmt.Errorf("%w: this node is not a ledger node", ErrNoLedger)
	}
	if err := m.admit(ctx, req.Cert); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, g.AddMember(ctx, remote.Caller(ctx))
}

// applyCmd applies a command on the ledger's group and returns its
// outcome, or the error it names.
func (m *Manager) applyCmd(ctx context.Context, g *group.Group, cmd []byte) (outcome, error) {
	out, err := g.Apply(ctx, cmd)
	if err != nil {
		return outcome{}, fmt.Errorf("%w: %v", ErrNoLedger, err)
	}
	var o outcome
	if err := wire.Unmarshal(out, &o); err != nil {
		return outcome{}, fmt.Errorf("ledger outcome: %w", err)
	}
	return o, errorOf(o.Code, o.Msg)
}

type submitReq struct {
	Tx []byte `cbor:"1,keyasint"`
}

// serveSubmit applies a transaction from any node: the signatures, not
// the caller, say whose it is.
func (m *Manager) serveSubmit(ctx context.Context, req submitReq) (outcome, error) {
	g := m.group()
	if g == nil {
		return outcome{}, fmt.Errorf("%w: this node is not a ledger node", ErrNoLedger)
	}
	o, _ := m.applyLocal(ctx, g, req.Tx, false)
	o.Leader = g.Leader()
	return o, nil
}

// applyLocal checks a transaction (unless this node made it, and checked
// it already) and applies it through this ledger node; a transaction
// refused at the door never reaches the log.
func (m *Manager) applyLocal(ctx context.Context, g *group.Group, tx []byte, checked bool) (outcome, error) {
	if !checked {
		if _, err := DecodeTx(tx); err != nil {
			return fail(err), err
		}
	}
	m.machine.markChecked(tx)
	b, err := wire.Marshal(&command{Op: opTx, Time: time.Now().UnixNano(), Tx: tx})
	if err != nil {
		return fail(err), err
	}
	o, err := m.applyCmd(ctx, g, b)
	if err != nil && o.Code == "" {
		o = fail(err)
	}
	return o, err
}

// Submit applies a signed transaction to the ledger: here on a ledger
// node, else through the first ledger node that answers.
func (m *Manager) Submit(ctx context.Context, st *SignedTx) (Outcome, error) {
	return m.submit(ctx, st, false)
}

// submit is Submit, told whether st was checked on this node already.
func (m *Manager) submit(ctx context.Context, st *SignedTx, checked bool) (Outcome, error) {
	b, err := st.Encode()
	if err != nil {
		return Outcome{}, err
	}
	if g := m.group(); g != nil {
		o, err := m.applyLocal(ctx, g, b, checked)
		return o.public(), err
	}
	var o outcome
	err = m.onLedger(ctx, func(ctx context.Context, p peer.ID) error {
		var err error
		o, err = submitFn.At(m.cfg.Remote, p).Call(ctx, submitReq{Tx: b})
		if err == nil && o.Code == "no_ledger" {
			return errorOf(o.Code, o.Msg) // that node lost its group: ask another
		}
		if err == nil && o.Leader != "" && o.Leader != p {
			m.noteNode(o.Leader) // ask the leader first next time: one hop fewer
		}
		return err
	})
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
}

func (o outcome) public() Outcome { return Outcome{Seq: o.Seq, Balance: o.Balance, Amount: o.Amount} }

// maxAsked bounds the connected peers asked whether they keep the ledger.
const maxAsked = 32

// onLedger runs call on ledger nodes, one after another, until one
// answers: the nodes remembered, those found on the DHT, then connected
// peers.
func (m *Manager) onLedger(ctx context.Context, call func(context.Context, peer.ID) error) error {
	tried := map[peer.ID]bool{}
	var last error
	m.mu.Lock()
	nodes := slices.Clone(m.known.Nodes)
	m.mu.Unlock()
	try := func(p peer.ID) bool {
		if tried[p] || p == m.self {
			return false
		}
		tried[p] = true
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		err := call(network.WithAllowLimitedConn(cctx, "ledger"), p)
		if err == nil {
			if !slices.Contains(nodes, p) {
				m.noteNode(p) // found afresh: remember it
			}
			return true
		}
		last = err
		m.log.Debug("ledger node did not answer", "peer", p, "err", err)
		return false
	}
	for _, p := range nodes {
		if try(p) {
			return nil
		}
	}
	if m.cfg.Routing != nil {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for ai := range m.cfg.Routing.FindProvidersAsync(fctx, locator(), 8) {
			if len(ai.Addrs) > 0 {
				m.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			}
			if try(ai.ID) {
				return nil
			}
		}
	}
	// Last, the peers this node is connected to: one of them may be a
	// ledger node that the DHT has not heard of yet.
	for i, p := range m.cfg.Host.Network().Peers() {
		if i == maxAsked || ctx.Err() != nil {
			break
		}
		if try(p) {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoLedger, err)
	}
	if last != nil {
		return fmt.Errorf("%w: %v", ErrNoLedger, last)
	}
	return fmt.Errorf("%w: no ledger node is known and none was found on the network (create one with 'nube ledger create')", ErrNoLedger)
}

// Account is an account as the ledger keeps it.
type Account struct {
	User peer.ID `cbor:"1,keyasint" json:"user"`
	// Balance is what the account has: negative when it owes.
	Balance int64 `cbor:"2,keyasint" json:"balance"`
	// Reserved is what its open reserves hold, already out of Balance.
	Reserved int64 `cbor:"3,keyasint" json:"reserved"`
	// Limit is how far below zero the balance may go.
	Limit int64 `cbor:"4,keyasint" json:"limit"`
	// Available is what it can spend now: Balance + Limit.
	Available int64 `cbor:"5,keyasint" json:"available"`
	// History is its latest entries, oldest first.
	History []Entry `cbor:"6,keyasint,omitempty" json:"history,omitempty"`
	Ledger  string  `cbor:"7,keyasint" json:"ledger"`
}

type accountReq struct {
	User      peer.ID `cbor:"1,keyasint"`
	Forwarded bool    `cbor:"2,keyasint,omitempty"`
}

func (m *Manager) localAccount(u peer.ID) (a Account, ok bool) {
	m.machine.view(func(s *state) {
		if s.Genesis == nil {
			return
		}
		ok = true
		a = Account{User: u, Limit: s.limit(), Ledger: s.Genesis.ID}
		if acc := s.Accounts[u]; acc != nil {
			a.Balance, a.Reserved = acc.Balance, acc.Reserved
			a.History = slices.Clone(acc.History)
		}
		a.Available = a.Balance + a.Limit
	})
	return a, ok
}

// serveAccount answers from the leader's state when it can (it has
// applied every write it acknowledged), else from this node's.
func (m *Manager) serveAccount(ctx context.Context, req accountReq) (Account, error) {
	g := m.group()
	if g == nil {
		return Account{}, fmt.Errorf("%w: this node is not a ledger node", ErrNoLedger)
	}
	if l := g.Leader(); l != "" && l != m.self && !req.Forwarded {
		req.Forwarded = true
		if a, err := accountFn.At(m.cfg.Remote, l).Call(ctx, req); err == nil {
			return a, nil
		}
	}
	a, ok := m.localAccount(req.User)
	if !ok {
		return Account{}, fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
	}
	return a, nil
}

// Account returns user's account (empty: this node's user).
func (m *Manager) Account(ctx context.Context, user peer.ID) (Account, error) {
	if user == "" {
		user = m.user
	}
	if m.IsNode() {
		return m.serveAccount(ctx, accountReq{User: user})
	}
	var a Account
	err := m.onLedger(ctx, func(ctx context.Context, p peer.ID) error {
		var err error
		a, err = accountFn.At(m.cfg.Remote, p).Call(ctx, accountReq{User: user})
		return err
	})
	return a, err
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
}

type infoReq struct {
	Forwarded bool `cbor:"1,keyasint,omitempty"`
}

// serveInfo answers from the leader's state when it can, else from this
// node's.
func (m *Manager) serveInfo(ctx context.Context, req infoReq) (Info, error) {
	g := m.group()
	if g == nil {
		return Info{}, fmt.Errorf("%w: this node is not a ledger node", ErrNoLedger)
	}
	if l := g.Leader(); l != "" && l != m.self && !req.Forwarded {
		if in, err := infoFn.At(m.cfg.Remote, l).Call(ctx, infoReq{Forwarded: true}); err == nil {
			return in, nil
		}
	}
	return m.localInfo(ctx, g)
}

// LocalInfo describes this ledger node's own copy of the ledger, which
// may lag the leader's by the entries it has not applied yet.
func (m *Manager) LocalInfo(ctx context.Context) (Info, error) {
	g := m.group()
	if g == nil {
		return Info{}, fmt.Errorf("%w: this node is not a ledger node", ErrNoLedger)
	}
	return m.localInfo(ctx, g)
}

func (m *Manager) localInfo(ctx context.Context, g *group.Group) (Info, error) {
	st, err := g.Status(ctx)
	if err != nil {
		return Info{}, err
	}
	var in Info
	ok := false
	m.machine.view(func(s *state) {
		if s.Genesis == nil {
			return
		}
		ok = true
		in = Info{ID: s.Genesis.ID, Limit: s.Genesis.Limit, Created: time.Unix(0, s.Genesis.Created).UTC(),
			Seq: s.Seq, Accounts: len(s.Accounts), Escrow: s.Escrow, Reserves: len(s.Reserves), Sum: s.Sum()}
	})
	if !ok {
		return Info{}, fmt.Errorf("%w: the ledger has no genesis yet", ErrNoLedger)
	}
	in.Leader = st.Leader
	for _, mb := range st.Members {
		in.Nodes = append(in.Nodes, mb.ID)
	}
	in.Member = true
	return in, nil
}

// Info describes the ledger, from this node if it keeps it, else from a
// ledger node; it remembers the nodes for next time.
func (m *Manager) Info(ctx context.Context) (Info, error) {
	var in Info
	var err error
	if m.IsNode() {
		in, err = m.serveInfo(ctx, infoReq{})
	} else {
		err = m.onLedger(ctx, func(ctx context.Context, p peer.ID) error {
			var err error
			in, err = infoFn.At(m.cfg.Remote, p).Call(ctx, infoReq{})
			return err
		})
		in.Member = false
	}
	if err == nil {
		m.remember(in.ID, in.Nodes)
	}
	return in, err
}

// Send transfers amount millicredits from this node's user to to.
func (m *Manager) Send(ctx context.Context, to peer.ID, amount int64, memo string) (Outcome, error) {
	st, err := Sign(m.cfg.UserKey, Tx{Kind: Transfer, From: m.user, To: to, Amount: amount, Memo: memo})
	if err != nil {
		return Outcome{}, err
	}
	if err := st.check(); err != nil {
		return Outcome{}, err
	}
	return m.submit(ctx, st, true)
}

// waitFor waits until this ledger node's state meets cond.
func (m *Manager) waitFor(ctx context.Context, cond func(*state) bool) error {
	for {
		m.machine.mu.Lock()
		ok, ch := cond(m.machine.s), m.machine.changed
		m.machine.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
