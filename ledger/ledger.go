package ledger

import (
	"context"
	gocrypto "crypto" // libp2p's crypto is the node key's
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
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
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

// Deadlines of the ledger's operations, for a context that has none: no
// ledger operation waits without end.
const (
	// CreateTimeout bounds Create: every peer's consent, the group's
	// forming, the genesis.
	CreateTimeout = 2 * time.Minute
	// JoinTimeout bounds Join: the members' consent, and this node
	// catching up with the ledger.
	JoinTimeout = 2 * time.Minute
	// CallTimeout bounds Info, Account, Send and Submit.
	CallTimeout = time.Minute
	// DefaultFormTimeout is how long a node that agreed to form a ledger
	// keeps its group waiting for the genesis before it drops it.
	DefaultFormTimeout = CreateTimeout + time.Minute
)

// Config configures a Manager.
type Config struct {
	// Host is the node: its ID, its key, its connections. Its key signs
	// what this node says as a ledger node; it must be an ed25519 key.
	Host host.Host
	// Remote carries transactions to the ledger nodes and serves them on
	// a ledger node. Required.
	Remote *remote.Endpoint
	// Groups runs the ledger's group on a ledger node. Required.
	Groups *group.Manager
	// Routing announces a ledger node, and finds ledger nodes for a node
	// that has not learned the ledger yet. Nil means only connected peers
	// are asked.
	Routing routing.ContentRouting
	// UserKey is the account this node pays from and is paid to: it signs
	// this node's transactions, receipts and cert. Required: a signer
	// whose public key is an ed25519 key (an ed25519.PrivateKey, or a key
	// held elsewhere).
	UserKey gocrypto.Signer
	// Cert, if set, is the user's cert of this node, made elsewhere (a
	// node that joined its user without the user key). Nil: the manager
	// makes it with UserKey.
	Cert *nodecert.Cert
	// Dir keeps ledger.json: the ledger's roster as this node learned it.
	// Empty means memory only.
	Dir string
	// Trust says whether this node trusts the node of user with the
	// ledger: it forms a ledger with it, agrees to its joining, and
	// believes what it says the ledger is. Serving a node compute or
	// storage has nothing to do with it. Nil trusts the nodes of this
	// node's own user only.
	Trust func(node, user peer.ID) bool
	// StoragePrice is what this node asks, in millicredits per GiB-day,
	// for holding other users' spaces.
	StoragePrice uint64
	// MaxStoragePrice is the most this node's user pays per GiB-day to a
	// holder of its spaces. Zero means DefaultMaxStoragePrice.
	MaxStoragePrice uint64
	// TickInterval is how often the leader returns expired reserves.
	// Zero means DefaultTickInterval.
	TickInterval time.Duration
	// SubmitRate is how many transactions and questions a second a ledger
	// node takes from one peer. Zero means DefaultSubmitRate.
	SubmitRate int
	// FormTimeout is how long a node that agreed to form a ledger waits
	// for its genesis before it drops the ledger's group. Zero means
	// DefaultFormTimeout.
	FormTimeout time.Duration
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
	case c.UserKey == nil:
		return errors.New("ledger: Config.UserKey is required (an ed25519 signer)")
	case c.TickInterval < 0:
		return fmt.Errorf("ledger: Config.TickInterval is negative (%v)", c.TickInterval)
	case c.SubmitRate < 0:
		return fmt.Errorf("ledger: Config.SubmitRate is negative (%d)", c.SubmitRate)
	case c.FormTimeout < 0:
		return fmt.Errorf("ledger: Config.FormTimeout is negative (%v)", c.FormTimeout)
	}
	if _, err := identity.SignerID(c.UserKey); err != nil {
		return fmt.Errorf("ledger: Config.UserKey: %w", err)
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
	cert    nodecert.Cert
	key     crypto.PrivKey // the node's: signs answers and consents
	door    *limiter
	unserve []func()

	// life admits one create, join or form at a time.
	life chan struct{}

	mu      sync.Mutex
	g       *group.Group        // set on a ledger node
	bk      *fsm                // g's state machine
	pending *pending            // a ledger this node agreed to form, awaiting its genesis
	known   known               // what this node knows of the ledger (ledger.json)
	payees  map[peer.ID]payeeOf // payees found, by the ID they were named by
	// proposing holds the IDs of the transactions this member is
	// proposing: a copy that comes while one is under way is refused at
	// the door, as it would be once the first is applied.
	proposing map[string]struct{}
	syncing   *catchUp // the Sync that confirmations share (quorum.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// known is what a node remembers of the ledger, in ledger.json.
type known struct {
	// Roster is the ledger's identity: its genesis and members.
	Roster chain `json:"roster,omitempty"`
	// Leader is the member that led when one last answered: asked first.
	Leader peer.ID `json:"leader,omitempty"`
	// Forming is the ledger whose group this node opened for its creator
	// and whose genesis it has not seen yet.
	Forming string `json:"forming,omitempty"`
}

// pending is a ledger this node agreed to form and opened the group of,
// whose genesis has not come yet.
type pending struct {
	g       *group.Group
	bk      *fsm
	id      string
	members []peer.ID
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
	if cfg.SubmitRate == 0 {
		cfg.SubmitRate = DefaultSubmitRate
	}
	if cfg.FormTimeout == 0 {
		cfg.FormTimeout = DefaultFormTimeout
	}
	key := cfg.Host.Peerstore().PrivKey(cfg.Host.ID())
	if key == nil || key.Type() != crypto.Ed25519 {
		return nil, errors.New("ledger: Config.Host needs an ed25519 node key, to sign as a ledger node")
	}
	user, err := identity.SignerID(cfg.UserKey)
	if err != nil {
		return nil, err
	}
	cert := cfg.Cert
	if cert == nil {
		c, err := nodecert.New(cfg.UserKey, cfg.Host.ID())
		if err != nil {
			return nil, err
		}
		cert = &c
	} else if err := cert.Check(cfg.Host.ID()); err != nil || cert.User != user {
		return nil, fmt.Errorf("ledger: Config.Cert is not %s's cert of this node (%v)", user, err)
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, self: cfg.Host.ID(), user: user, cert: *cert, key: key,
		door: newLimiter(cfg.SubmitRate, time.Now), life: make(chan struct{}, 1), bk: newFSM(cfg.Logger), payees: map[peer.ID]payeeOf{}, proposing: map[string]struct{}{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.loadKnown()
	if slices.Contains(cfg.Groups.List(), GroupName) {
		bk := newFSM(m.log)
		g, err := cfg.Groups.Open(ctx, GroupName, group.Options{Machine: bk, Admit: bk.admits})
		if err != nil {
			m.cancel()
			return nil, fmt.Errorf("ledger: reopen: %w", err)
		}
		if m.known.Forming != "" {
			m.await(g, bk, m.known.Forming, nil)
		} else {
			m.member(g, bk)
		}
	}
	m.unserve = []func(){
		remote.Handle(cfg.Remote, submitFn, m.serveSubmit),
		remote.Handle(cfg.Remote, accountFn, m.serveAccount),
		remote.Handle(cfg.Remote, infoFn, m.serveInfo),
		remote.Handle(cfg.Remote, formFn, m.serveForm),
		remote.Handle(cfg.Remote, addFn, m.serveAdd),
		remote.Handle(cfg.Remote, voteFn, m.serveVote),
		remote.Handle(cfg.Remote, whoisFn, m.serveWhois),
		remote.Handle(cfg.Remote, confirmFn, m.serveConfirm),
		remote.Handle(cfg.Remote, timeFn, m.serveTime),
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

// node returns the ledger's group and state machine on a ledger node, else nil.
func (m *Manager) node() (*group.Group, *fsm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.g, m.bk
}

// member makes this node a ledger node with group g: it announces itself,
// returns expired reserves while it leads, and keeps ledger.json's roster
// the group's.
func (m *Manager) member(g *group.Group, bk *fsm) {
	m.mu.Lock()
	if m.g != nil || m.ctx.Err() != nil { // a member already, or closed
		m.mu.Unlock()
		return
	}
	m.g, m.bk = g, bk
	m.mu.Unlock()
	m.wg.Add(3)
	go m.announce()
	go m.tick(g, bk)
	go m.follow(bk)
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
// leads: when something is due by its clock, it asks the members for
// their time stamps and writes a tick that carries them, whose time is
// the quorum's (quorumTime), not its own.
func (m *Manager) tick(g *group.Group, bk *fsm) {
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
		bk.m.view(func(s *state) { due = s.due(now) })
		if !due {
			continue
		}
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		b, _ := wire.Marshal(&command{Op: opTick, Time: now, Stamps: m.stamps(ctx, bk)})
		if _, err := m.applyCmd(ctx, g, b); err != nil {
			m.log.Debug("ledger tick failed", "err", err)
		}
		cancel()
	}
}

// follow keeps ledger.json's roster the one this ledger node applied.
func (m *Manager) follow(bk *fsm) {
	defer m.wg.Done()
	for {
		r, ch := bk.next()
		if r != nil {
			m.remember(r, true)
		}
		select {
		case <-ch:
		case <-m.ctx.Done():
			return
		}
	}
}

func (m *Manager) knownPath() string {
	if m.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(m.cfg.Dir, "ledger.json")
}

// loadKnown reads ledger.json. A roster that does not verify is dropped
// (and learned again); a file of the old kind, an ID and nodes that any
// peer could have set, is read as knowing nothing.
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
	if err := json.Unmarshal(b, &k); err != nil {
		m.log.Warn("ledger.json does not decode: the ledger is learned again", "err", err)
		return
	}
	if k.Roster != nil {
		if k.Roster, err = verifyChain(k.Roster); err != nil {
			m.log.Warn("ledger.json's roster does not verify: the ledger is learned again", "err", err)
			k.Roster, k.Leader = nil, ""
		}
	}
	m.known = k
}

// save writes ledger.json; m.mu is held.
func (m *Manager) save() {
	p := m.knownPath()
	if p == "" {
		return
	}
	b, _ := json.Marshal(m.known)
	if err := atomicfile.Write(p, b, 0o600); err != nil {
		m.log.Warn("could not save what this node knows of the ledger", "err", err)
	}
}

// remember takes c as the ledger's roster: always if it is this node's own
// (own: from its ledger, its create, its join), else only if this node
// knew no roster or c extends the one it knew.
func (m *Manager) remember(c chain, own bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.known.Roster
	switch {
	case old != nil && len(c) == len(old) && c.extends(old):
		return
	case !own && old != nil && !c.extends(old):
		m.log.Warn("refused a roster of another ledger", "ledger", c.id(), "known", old.id())
		return
	}
	if old.id() != c.id() {
		m.known.Leader = ""
	}
	m.known.Roster = c
	m.save()
}

// knownRoster is the roster this node knows: its ledger's, else the one
// it learned.
func (m *Manager) knownRoster() chain {
	m.mu.Lock()
	g, bk, r := m.g, m.bk, m.known.Roster
	m.mu.Unlock()
	if g != nil {
		if own, _ := bk.next(); own != nil {
			return own
		}
	}
	return r
}

// noteLeader remembers the member to ask first.
func (m *Manager) noteLeader(p peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.known.Leader != p {
		m.known.Leader = p
		m.save()
	}
}

// trusts reports whether node, of user, is trusted with the ledger.
func (m *Manager) trusts(node, user peer.ID) bool {
	if m.cfg.Trust != nil {
		return m.cfg.Trust(node, user)
	}
	return user == m.user
}

// admit checks that node, whose cert is cert, is trusted with the ledger.
func (m *Manager) admit(node peer.ID, cert nodecert.Cert) error {
	if err := cert.Check(node); err != nil {
		return fmt.Errorf("%w: %v", ErrForged, err)
	}
	if !m.trusts(node, cert.User) {
		return fmt.Errorf("%w: %s does not trust %s (user %s) with the ledger; its owner would trust that user with --trust",
			ErrRefused, m.self, node, cert.User)
	}
	return nil
}

// sign signs b under domain with the node's key.
func (m *Manager) sign(domain string, b []byte) []byte {
	sig, err := m.key.Sign(append([]byte(domain), b...))
	if err != nil {
		m.log.Error("the node key cannot sign", "err", err) // an ed25519 key always can
	}
	return sig
}

// enter waits for this node's turn to create, join or form a ledger.
func (m *Manager) enter(ctx context.Context, what string) error {
	select {
	case m.life <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ledger: %s: waiting for this node's other create or join of a ledger to end: %w", what, ctx.Err())
	}
}

func (m *Manager) leave() { <-m.life }

// withDeadline bounds ctx by d, unless it has a deadline already.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
