package space

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockservice"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// Defaults for Config.
const (
	DefaultRepairGrace    = 5 * time.Minute
	DefaultRepairInterval = 30 * time.Second
	DefaultMaxValue       = 64 << 30
	DefaultHeadTTL        = 2 * time.Second
)

// Content is what the space layer uses of the content layer.
type Content interface {
	Add(ctx context.Context, r io.Reader, opt content.AddOptions) (cid.Cid, error)
	Get(ctx context.Context, p string) (content.File, error)
	Fetch(ctx context.Context, root cid.Cid, progress func(content.FetchProgress)) error
	Pin(ctx context.Context, c cid.Cid, name string, progress func(content.FetchProgress)) error
	Unpin(ctx context.Context, c cid.Cid) error
	Pins(ctx context.Context) ([]content.Pin, error)
	DAG() ipld.DAGService
	Store() *content.Store
}

var _ Content = (*content.Service)(nil)

// Config configures a Manager.
type Config struct {
	// Host is the node's libp2p host. Required.
	Host host.Host
	// Content stores and moves the spaces' blocks. Required.
	Content Content
	// Remote carries the layer's calls. Required.
	Remote *remote.Endpoint
	// Routing announces the spaces this node keeps and finds nodes that
	// keep a space. Nil means only connected peers are asked.
	Routing routing.ContentRouting
	// Values keeps each space's newest head in the DHT under HeadKey, so
	// that a reader resolves it with the home and every holder off: the
	// home stores each new head (the last of a burst), home and holders
	// store theirs again each HeadRepublish, and a reader that finds no
	// node of the space asks it. Its DHT must validate HeadNamespace with
	// HeadValidator. Nil: heads are found only through nodes.
	Values routing.ValueStore
	// HeadRepublish is how often the heads kept here are stored in Values
	// again. Zero means DefaultHeadRepublish.
	HeadRepublish time.Duration
	// UserKey is the user the node acts for: it owns the spaces the node
	// creates and reads with that user's grants. Required: a signer whose
	// public key is an ed25519 key, and which opens the space keys wrapped
	// for its user: an ed25519.PrivateKey, or a key held elsewhere that is
	// also an X25519 ecdh.KeyExchanger.
	UserKey crypto.Signer
	// Dir keeps the spaces' heads and grants. Empty means in memory.
	Dir string
	// RepairGrace is how long a holder may be unreachable before the home
	// places a copy elsewhere. Zero means DefaultRepairGrace.
	RepairGrace time.Duration
	// RepairInterval is how often the home checks its holders. Zero means
	// DefaultRepairInterval.
	RepairInterval time.Duration
	// MaxValue is the largest value a Put accepts. Zero means
	// DefaultMaxValue.
	MaxValue int64
	// HeadTTL is how long a reader trusts a cached head before it asks for
	// a newer one. Zero means DefaultHeadTTL. Watchers' heads and a node's
	// own writes refresh it at once.
	HeadTTL time.Duration
	// NoStorage refuses to hold other users' spaces.
	NoStorage bool
	// Admit says whose spaces this node holds, within what budget. Nil
	// holds any user's (unless NoStorage).
	Admit AdmitStorage
	// Holder, if set, says whether node may hold this user's spaces: an
	// error refuses it (a node its user removed). Nil: any node may.
	Holder func(node peer.ID) error
	// Payments pays the holders of this node's spaces and bills for the
	// spaces it holds for others. Nil: nobody is paid.
	Payments Payments
	// PayInterval is how often the home challenges each holder for a
	// random block and pays it for the period. Zero means
	// DefaultPayInterval.
	PayInterval time.Duration
	// NodeKey is this node's key (ed25519), with which it signs the heads
	// of a space whose home was handed to it when it holds no user key,
	// and opens the keys handed with it. Nil: this node takes no home.
	NodeKey crypto.Signer
	// Cert is the user's cert of this node, which proves to a home
	// handing over that this node is its user's. Nil: this node takes no
	// home.
	Cert *nodecert.Cert
	// Logger receives the layer's logs. Nil means no logs.
	Logger *slog.Logger
}

// Validate reports a missing or nonsensical field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("space: Config.Host is required")
	case c.Content == nil:
		return errors.New("space: Config.Content is required")
	case c.Remote == nil:
		return errors.New("space: Config.Remote is required")
	case c.UserKey == nil:
		return errors.New("space: Config.UserKey is required (an ed25519 signer)")
	case c.RepairGrace < 0 || c.RepairInterval < 0 || c.HeadTTL < 0 || c.PayInterval < 0 || c.HeadRepublish < 0:
		return errors.New("space: Config.RepairGrace, RepairInterval, HeadTTL, PayInterval and HeadRepublish must not be negative")
	case c.MaxValue < 0:
		return fmt.Errorf("space: Config.MaxValue is negative (%d)", c.MaxValue)
	}
	if _, err := identity.SignerID(c.UserKey); err != nil {
		return fmt.Errorf("space: Config.UserKey: %w", err)
	}
	if _, err := keyExchanger(c.UserKey); err != nil {
		return fmt.Errorf("space: Config.UserKey: %w", err)
	}
	return nil
}

// Manager keeps the spaces of a node: those it is home of, those it holds
// for others, and what it has seen of the spaces it reads. It is safe for
// concurrent use.
type Manager struct {
	cfg        Config
	log        *slog.Logger
	user       peer.ID
	userPrefix string // the user's ID and a slash: how its spaces' IDs start
	userSigns  bool   // UserKey signs (it is no joined node's keyless signer)
	self       peer.ID
	local      ipld.DAGService // this node's store only
	tree       treeCache       // tree blocks served lately

	mu    sync.Mutex
	owned map[string]*owned // by name
	// unloaded holds, by name, why spaces this node is home of did not
	// load at start: their names are not free, and calls on them say why.
	unloaded map[string]error
	held     map[string]*held  // by space ID
	seen     map[string]uint64 // newest seq read, by space ID
	// seenDirty says seen changed since it was last saved (each second
	// and at Close, so readers do not sync a file on every head).
	seenDirty bool
	cache     map[string]*view // heads a reader resolved, by space ID
	// removed are the nodes the owner removed, by space ID, as heads the
	// user key signed said (head.Removed): heads signed under a link to
	// one are refused even when they leave them out.
	removed map[string][]peer.ID
	myGrant map[string]*Grant // this user's grants, by space ID

	// stall is how long a fetch of a writer's value may go without a
	// block before the home gives up.
	stall time.Duration

	// tamperRead, set by tests, changes the blocks this node serves to
	// readers, as a lying holder would.
	tamperRead func([]block)

	// dhtTodo holds, by space ID, the newest head to store in the DHT;
	// dhtKick wakes storeHeads.
	dhtMu   sync.Mutex
	dhtTodo map[string][]byte
	dhtKick chan struct{}

	stops  []func()
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the spaces kept in cfg.Dir and starts serving them. ctx bounds
// the start only.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RepairGrace == 0 {
		cfg.RepairGrace = DefaultRepairGrace
	}
	if cfg.RepairInterval == 0 {
		cfg.RepairInterval = DefaultRepairInterval
	}
	if cfg.MaxValue == 0 {
		cfg.MaxValue = DefaultMaxValue
	}
	if cfg.HeadTTL == 0 {
		cfg.HeadTTL = DefaultHeadTTL
	}
	if cfg.PayInterval == 0 {
		cfg.PayInterval = DefaultPayInterval
	}
	if cfg.HeadRepublish == 0 {
		cfg.HeadRepublish = DefaultHeadRepublish
	}
	user, err := identity.SignerID(cfg.UserKey)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger.With("layer", "space"), user: user, userPrefix: user.String() + "/", self: cfg.Host.ID(),
		local:    mdag.NewDAGService(blockservice.New(cfg.Content.Store().Blockstore(), nil)),
		owned:    map[string]*owned{},
		unloaded: map[string]error{},
		held:     map[string]*held{},
		seen:     map[string]uint64{},
		cache:    map[string]*view{},
		removed:  map[string][]peer.ID{},
		myGrant:  map[string]*Grant{},
		stall:    30 * time.Second,
		dhtTodo:  map[string][]byte{},
		dhtKick:  make(chan struct{}, 1),
	}
	_, err = sign(cfg.UserKey, "nube space probe\n", 0)
	m.userSigns = err == nil
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	e := cfg.Remote
	m.stops = []func(){
		remote.Handle(e, headFn, m.serveHead),
		remote.Handle(e, writeFn, m.serveWrite),
		remote.HandleStream(e, pushFn, m.servePush),
		remote.Handle(e, readFn, m.serveRead),
		remote.Handle(e, grantFn, m.serveGrant),
		remote.Handle(e, grantsFn, m.serveGrants),
		remote.HandleStream(e, watchFn, m.serveWatch),
		remote.Handle(e, challengeFn, m.serveChallenge),
		remote.Handle(e, prepareHomeFn, m.servePrepareHome),
		remote.Handle(e, takeHomeFn, m.serveTakeHome),
	}
	m.wg.Add(2)
	go m.maintain()
	go m.storeHeads()
	m.republishHeads()
	return m, nil
}

// Close stops serving and the repair loop. It is safe to call twice.
func (m *Manager) Close() error {
	if m.cancel == nil {
		return nil
	}
	for _, s := range m.stops {
		s()
	}
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saveSeen()
	for _, o := range m.owned {
		o.closeWatchers()
	}
	return nil
}

// User is the user this node acts for.
func (m *Manager) User() peer.ID { return m.user }

// files in Dir
const (
	ownedDir = "owned"
	heldDir  = "held"
	seenFile = "seen.cbor"
)

// ownedFile is what the home keeps of a space: its last head and the
// grants filed with it. The keys are not kept: the owner unwraps them from
// the head like any reader.
type ownedFile struct {
	Head   []byte     `cbor:"1,keyasint"`
	Grants [][]signed `cbor:"2,keyasint,omitempty"`
	// A home handed to a node without the user key keeps the delegation
	// it signs under and the keys wrapped to its node key.
	Chain []signed `cbor:"3,keyasint,omitempty"`
	Keys  []byte   `cbor:"4,keyasint,omitempty"`
}

func (m *Manager) path(parts ...string) string {
	if m.cfg.Dir == "" {
		return ""
	}
	return filepath.Join(append([]string{m.cfg.Dir}, parts...)...)
}

func (m *Manager) load(ctx context.Context) error {
	if m.cfg.Dir == "" {
		return nil
	}
	for _, d := range []string{ownedDir, heldDir} {
		if err := os.MkdirAll(m.path(d), 0o700); err != nil {
			return fmt.Errorf("space: %w", err)
		}
	}
	if b, err := os.ReadFile(m.path(seenFile)); err == nil {
		if err := unmarshal(b, &m.seen); err != nil {
			return fmt.Errorf("space: %s: %w", m.path(seenFile), err)
		}
	}
	own, err := os.ReadDir(m.path(ownedDir))
	if err != nil {
		return err
	}
	for _, f := range own {
		if !strings.HasSuffix(f.Name(), ".cbor") {
			continue
		}
		// One space that does not load must not keep the node, and its
		// other spaces, from starting: it is left out, with a warning,
		// and its name is kept from being created over it.
		p := m.path(ownedDir, f.Name())
		b, err := readCapped(p, maxOwnedFile)
		var o *owned
		if err == nil {
			o, err = m.restoreOwned(b)
		}
		if err != nil {
			owner, name, _ := strings.Cut(strings.TrimSuffix(f.Name(), ".cbor"), "_")
			m.log.Warn("a space this node is home of does not load; the node serves its other spaces", "space", owner+"/"+name, "file", p, "err", err)
			if owner == m.user.String() {
				m.unloaded[name] = fmt.Errorf("space %s/%s does not load on its home (%s): %w", owner, name, p, err)
			}
			continue
		}
		m.owned[o.name] = o
	}
	heldFiles, err := os.ReadDir(m.path(heldDir))
	if err != nil {
		return err
	}
	for _, f := range heldFiles {
		p := m.path(heldDir, f.Name())
		b, err := readCapped(p, MaxHeadSize)
		if err != nil {
			m.log.Warn("dropping a held head that does not read", "file", p, "err", err)
			continue
		}
		h, s, err := decodeHead(b, "")
		if err != nil {
			m.log.Warn("dropping a held head that does not verify", "file", p, "err", err)
			continue
		}
		m.held[h.id()] = &held{head: h, signed: s}
	}
	return ctx.Err()
}

// readCapped reads the file p, refusing one over max bytes (with
// ErrBadHead) before reading it.
func readCapped(p string, max int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%w: %s is over the limit of %d bytes", ErrBadHead, p, max)
	}
	return b, nil
}

// saveSeen writes seen if it changed. m.mu is held.
func (m *Manager) saveSeen() {
	if m.cfg.Dir == "" || !m.seenDirty {
		return
	}
	m.seenDirty = false
	b, err := marshal(m.seen)
	if err == nil {
		err = atomicfile.Write(m.path(seenFile), b, 0o600)
	}
	if err != nil {
		m.log.Warn("could not save the heads seen", "err", err)
	}
}

// noteSeen records seq as seen for space and reports whether it is not
// older than what was seen before.
func (m *Manager) noteSeen(space string, seq uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq < m.seen[space] {
		return false
	}
	if seq > m.seen[space] {
		m.seen[space] = seq
		m.seenDirty = true
	}
	return true
}

// usable reports whether this node may take the verified head h of
// space: not if it is signed under a link to a node the owner removed,
// as this head or one the user key signed before said. A head the user
// key signed teaches the removals it names; if the head cached or the
// seq seen came from a node it names (a removed node's inflated seq),
// they are dropped back to h's, so the real home's heads are taken again.
func (m *Manager) usable(space string, h *head) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(h.Chain) == 0 && len(h.Removed) > 0 {
		rm := m.removed[space]
		for _, r := range h.Removed {
			if !slices.Contains(rm, r) {
				rm = append(rm, r)
			}
		}
		m.removed[space] = rm
		if v := m.cache[space]; v != nil && chainAvoids(v.head.Chain, rm) != nil {
			delete(m.cache, space)
			if m.seen[space] > h.Seq {
				m.seen[space], m.seenDirty = h.Seq, true
			}
		}
	}
	return chainAvoids(h.Chain, m.removed[space]) == nil
}

// seenSeq is the highest sequence number seen of space's heads.
func (m *Manager) seenSeq(space string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[space]
}

func fileName(space string) string { return strings.ReplaceAll(space, "/", "_") + ".cbor" }

// locator is the CID under which the home and holders of a space announce
// themselves on the DHT.
func locator(space string) cid.Cid {
	h, _ := mh.Sum([]byte("nube space locator v1 "+space), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

func (m *Manager) announce(space string) {
	if m.cfg.Routing == nil {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
		defer cancel()
		if err := m.cfg.Routing.Provide(ctx, locator(space), true); err != nil {
			m.log.Debug("could not announce space", "space", space, "err", err)
		}
	}()
}

// Summary is one line of Spaces.
type Summary struct {
	ID      string  `json:"id"`
	Owner   peer.ID `json:"owner"`
	Name    string  `json:"name"`
	Role    string  `json:"role"` // "home" or "holder"
	Seq     uint64  `json:"seq"`
	Keys    uint64  `json:"keys"`
	Bytes   uint64  `json:"bytes"`
	Policy  string  `json:"policy"`
	Holders int     `json:"holders"`
}

// Spaces lists the spaces this node is home of and those it holds for
// others, sorted by ID.
func (m *Manager) Spaces() []Summary {
	m.mu.Lock()
	var out []Summary
	var owned []*owned
	for _, o := range m.owned {
		owned = append(owned, o)
	}
	for _, h := range m.held {
		if cur := h.current(); cur != nil && cur.holds(m.self) {
			out = append(out, summarise(cur, "holder"))
		}
	}
	m.mu.Unlock()
	for _, o := range owned {
		h, _ := o.current()
		out = append(out, summarise(h, "home"))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func summarise(h *head, role string) Summary {
	return Summary{ID: h.id(), Owner: h.Owner, Name: h.Name, Role: role, Seq: h.Seq, Keys: h.Count, Bytes: h.Bytes,
		Policy: h.Policy.String(), Holders: len(h.Holders)}
}

// Holding is a space this node holds for its owner.
type Holding struct {
	Space string    `json:"space"`
	Seq   uint64    `json:"seq"`
	Root  string    `json:"root"`
	Keys  uint64    `json:"keys"`
	Bytes uint64    `json:"bytes"`
	Since time.Time `json:"since"`
}

// Holdings lists the spaces this node holds for others, from the pins
// that keep them.
func (m *Manager) Holdings(ctx context.Context) ([]Holding, error) {
	pins, err := m.cfg.Content.Pins(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Holding
	for _, p := range pins {
		id, ok := strings.CutPrefix(p.Name, holdPinPrefix)
		if !ok {
			continue
		}
		h := Holding{Space: id, Root: p.CID.String(), Since: p.Created}
		if hd := m.held[id]; hd != nil {
			cur := hd.current()
			h.Seq, h.Keys, h.Bytes = cur.Seq, cur.Count, cur.Bytes
		}
		out = append(out, h)
	}
	return out, nil
}

// Create makes the space name, owned by this node's user, with this node
// as its home, and places it as policy says.
func (m *Manager) Create(ctx context.Context, name string, policy Policy) (*Space, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if _, ok := m.owned[name]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %s/%s", ErrExists, m.user, name)
	}
	if err := m.unloaded[name]; err != nil {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %w (move its file away to create it again)", ErrExists, err)
	}
	o := m.newOwned(name, newKeyring())
	m.owned[name] = o
	m.mu.Unlock()
	if err := o.create(ctx, policy); err != nil {
		m.mu.Lock()
		delete(m.owned, name)
		m.mu.Unlock()
		return nil, err
	}
	m.announce(o.id)
	return &Space{m: m, owner: m.user, name: name, id: o.id}, nil
}

// Open returns a handle on the space name of owner. It does not reach the
// network: the first call on the handle finds the space.
func (m *Manager) Open(owner peer.ID, name string) (*Space, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if owner == "" {
		owner = m.user
	}
	if _, err := userPublic(owner); err != nil {
		return nil, fmt.Errorf("%w: owner: %v", ErrBadName, err)
	}
	return &Space{m: m, owner: owner, name: name, id: owner.String() + "/" + name}, nil
}

// ownedSpace returns the space this node is home of, or nil.
func (m *Manager) ownedSpace(id string) *owned {
	name, ok := strings.CutPrefix(id, m.userPrefix)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[name]
}

// notLoaded returns why the space id, which this node is home of, did not
// load at start, or nil.
func (m *Manager) notLoaded(id string) error {
	name, ok := strings.CutPrefix(id, m.userPrefix)
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unloaded[name]
}

// maintain checks the holders of every space this node is home of, on
// RepairInterval, until Close.
func (m *Manager) maintain() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.RepairInterval)
	defer t.Stop()
	save := time.NewTicker(time.Second)
	defer save.Stop()
	again := time.NewTicker(m.cfg.HeadRepublish)
	defer again.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-again.C:
			m.republishHeads()
			continue
		case <-save.C:
			m.mu.Lock()
			m.saveSeen()
			m.mu.Unlock()
			continue
		case <-t.C:
		}
		m.mu.Lock()
		var spaces []*owned
		for _, o := range m.owned {
			spaces = append(spaces, o)
		}
		m.mu.Unlock()
		for _, o := range spaces {
			o.check(m.ctx)
		}
	}
}

// Caps on what a home reads back from its own disk. The files are its
// own, but one may predate a cap: a head over MaxHeadSize is loaded all
// the same, up to maxStoredHead, so that its space can be read on the
// home and shrunk by revoking grants.
const (
	// maxStoredHead is the largest stored head a home loads: 16 times
	// MaxHeadSize, some 100,000 readers, far more than the 6,400 or so
	// that carried a head over MaxHeadSize before the home checked.
	maxStoredHead = 16 * MaxHeadSize
	// maxOwnedFile is the largest file of an owned space read: its head
	// and its grants, MaxGrantSize each at most (and more of them than
	// MaxGrants in a file written before the caps).
	maxOwnedFile = maxStoredHead + 3000*MaxGrantSize
)

// decodeOwned decodes what a home keeps of a space (an ownedFile): its
// head, checked as any head is but up to maxStoredHead, and its grants.
// Grants that no longer decode, or are for another space, are left out
// and reported in dropped.
func decodeOwned(b []byte) (h *head, s signed, grants map[string]*Grant, dropped []error, chain []signed, box []byte, err error) {
	if len(b) > maxOwnedFile {
		return nil, s, nil, nil, nil, nil, fmt.Errorf("%w: a stored space of %d bytes, over the limit of %d", ErrBadHead, len(b), maxOwnedFile)
	}
	var of ownedFile
	if err := unmarshal(b, &of); err != nil {
		return nil, s, nil, nil, nil, nil, fmt.Errorf("%w: %v", ErrBadHead, err)
	}
	chain, box = of.Chain, of.Keys
	if h, s, err = decodeHeadUpTo(of.Head, "", maxStoredHead); err != nil {
		return nil, s, nil, nil, nil, nil, err
	}
	grants = map[string]*Grant{}
	for i, links := range of.Grants {
		g, err := grantOf(links)
		if err == nil && g.Space() != h.id() {
			err = fmt.Errorf("%w: a grant on %s", ErrBadGrant, g.Space())
		}
		if err != nil {
			dropped = append(dropped, fmt.Errorf("grant %d: %w", i, err))
			continue
		}
		grants[g.ID()] = g
	}
	return h, s, grants, dropped, chain, box, nil
}

// restoreOwned makes a space this node is home of from its stored file.
// A head over MaxHeadSize is kept: the space reads on the home and
// refuses changes (ErrHeadTooLarge) until revocations make it fit.
func (m *Manager) restoreOwned(b []byte) (*owned, error) {
	h, s, grants, dropped, chain, box, err := decodeOwned(b)
	if err != nil {
		return nil, err
	}
	if h.Owner != m.user {
		return nil, fmt.Errorf("head of %s is not this user's", h.id())
	}
	for _, err := range dropped {
		m.log.Warn("dropping a stored grant that does not hold", "space", h.id(), "err", err)
	}
	var kr keyring
	if len(chain) > 0 && !m.userSigns {
		// A home handed to this node, which holds no user key.
		if m.cfg.NodeKey == nil {
			return nil, fmt.Errorf("%s was handed to this node, which has no node key now", h.id())
		}
		kr, err = unwrapKeysInfo(homeInfo(h.id()), m.cfg.NodeKey, box)
	} else {
		chain, box = nil, nil
		kr, err = unwrapKeys(h.id(), m.cfg.UserKey, h.keysFor(m.user))
	}
	if err != nil {
		return nil, err
	}
	o := m.newOwned(h.Name, kr)
	o.chain, o.keyBox = chain, box
	o.head, o.signed, o.size, o.grants = h, s, encodedSize(s), grants
	if o.size > MaxHeadSize {
		m.log.Warn("a space's head is over the limit: other nodes will not take it, so the space is read-only on its home until grants are revoked",
			"space", o.id, "bytes", o.size, "limit", MaxHeadSize, "readers", len(h.Keys), "grants", len(grants))
	}
	return o, nil
}

// oversizedLocked reports a head this home cannot hand out (one it loaded from
// its disk over MaxHeadSize), with the reason. o.mu is held.
func (o *owned) oversizedLocked() error {
	if o.size <= MaxHeadSize {
		return nil
	}
	return fmt.Errorf("%w: the head of %s on its home is %d bytes, over the limit of %d; its owner must revoke grants",
		ErrHeadTooLarge, o.id, o.size, MaxHeadSize)
}
