package service

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/wasm"
)

// DefaultMaxLimits are the most a run may take on a node unless its
// Config says otherwise. A run gets wasm's defaults (a 4 MiB input…)
// unless its caller or descriptor asks for more; an input over 4 MiB
// travels as content, by its CID.
var DefaultMaxLimits = wasm.Limits{Memory: 256 << 20, Timeout: time.Minute, MaxInput: 64 << 20, MaxOutput: 16 << 20}

// maxCatalog caps the descriptors a node keeps in its catalogue.
const maxCatalog = 4096

// maxFound caps the descriptors one find reply carries.
const maxFound = 64

// Content is what the service layer uses of the content layer, to store
// and fetch modules and descriptors. A *content.Service is one.
type Content interface {
	Add(ctx context.Context, r io.Reader, opt content.AddOptions) (cid.Cid, error)
	Get(ctx context.Context, p string) (content.File, error)
	Stat(ctx context.Context, p string) (content.Entry, error)
	Pin(ctx context.Context, c cid.Cid, name string, progress func(content.FetchProgress)) error
}

// Config configures a Manager.
type Config struct {
	// Host is the node's libp2p host: its ID and the peers it is
	// connected to.
	Host    host.Host
	Routing routing.ContentRouting // announces and finds names; may be nil
	Content Content
	Remote  *remote.Endpoint
	// UserKey signs what this node publishes, and the cert that makes
	// this node its user's. Required: a signer whose public key is an
	// ed25519 key (an ed25519.PrivateKey, or a key held elsewhere).
	UserKey crypto.Signer
	// Cert, if set, is the user's cert of this node, made elsewhere: a
	// node that joined its user by invite holds it and no user key (its
	// UserKey then only names the user, and what it would sign fails).
	// Nil: the manager makes the cert with UserKey.
	Cert *nodecert.Cert
	// Revoked reports whether this user removed the node: its cert then
	// counts for nothing, and its runs are refused. Nil: no node is.
	Revoked func(node peer.ID) bool
	// NoCompute stops the node from running modules, for others or
	// itself. It still publishes, finds and calls services elsewhere.
	NoCompute bool
	// Slots bounds the jobs run at once. Zero means one per CPU.
	Slots int
	// MaxLimits are the most one run may take here. Zero fields take
	// DefaultMaxLimits.
	MaxLimits wasm.Limits
	// Interpreter runs modules in wazero's interpreter (see wasm.Config).
	Interpreter bool
	// Dir keeps the catalogue, the compiled-code cache and the receipts
	// of runs not settled yet (settled when the node starts again).
	// Empty means memory only.
	Dir string
	// OtherSlots bounds the runs for other users' nodes at once: the CPU
	// budget the node's owner gives others. Zero means Slots.
	OtherSlots int
	// Payments pays for priced runs this node calls, and is paid for
	// those it runs for others. Nil: priced services run only on this
	// user's own nodes.
	Payments Payments
	// Admit says whom this node runs code for. Nil: anyone.
	Admit Admit
	// Spaces lends a run its caller's rights in a space, and borrows
	// them on the runner. Nil: runs reach no space.
	Spaces Spaces
	// Locate finds the nodes that hold a CID or a space (OWNER/NAME),
	// for calls that run beside their data (Pipeline.Near). Nil: Near
	// has no effect.
	Locate func(ctx context.Context, ref string) ([]peer.ID, error)
	// NodeKey is the node's own key (the libp2p host's, an ed25519
	// signer): it signs the records of runs that callers check by
	// re-running. Nil: the host's key from its peerstore, if it is an
	// ed25519 key there; else runs are not signed, and Verify refuses
	// this node's runs.
	NodeKey    crypto.Signer
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Validate reports a missing or nonsensical field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("service: Config.Host is required")
	case c.Content == nil:
		return errors.New("service: Config.Content is required")
	case c.Remote == nil:
		return errors.New("service: Config.Remote is required")
	case c.UserKey == nil:
		return errors.New("service: Config.UserKey is required (an ed25519 signer)")
	case c.Slots < 0:
		return fmt.Errorf("service: Config.Slots is negative (%d): want 0 for one per CPU, or more", c.Slots)
	}
	if _, err := identity.SignerID(c.UserKey); err != nil {
		return fmt.Errorf("service: Config.UserKey: %w", err)
	}
	if err := c.MaxLimits.Validate(); err != nil {
		return fmt.Errorf("service: Config.MaxLimits: %w", err)
	}
	return nil
}

// Manager publishes, finds, runs and calls services for one node.
type Manager struct {
	cfg     Config
	unserve []func() // stop serving finds and runs
	log     *slog.Logger
	self    peer.ID
	user    peer.ID
	cert    nodecert.Cert // makes this node its user's, for runs elsewhere
	rt      *wasm.Runtime
	slots   chan struct{}
	others  chan struct{} // a place per run for another user; nil: no budget of their own
	waiting chan struct{}
	metrics *metrics

	mu       sync.Mutex
	catalog  map[cid.Cid]*entry
	noRun    map[peer.ID]time.Time   // peers that said they run no code, until when
	asked    map[string]time.Time    // when the network was last asked for a name
	verified map[string]*Descriptor  // descriptors checked, by their bytes
	tamper   func([]byte) []byte     // a test's liar: changes every output
	verdicts map[verdictKey]*pending // priced runs a Verify has yet to judge
	caps     capCache                // capabilities signed for calls that lend no space
	checked  capCache                // capabilities checked as a runner, by their bytes
	certs    map[string]struct{}     // callers' certs checked, by node, user and signature
	runs     []Record                // the latest runs, oldest first
	calls    []CallRecord            // the latest calls this node made, oldest first
	closing  bool                    // Close has begun: no settlement starts
	memos    memoTable               // memo records of runs, by key

	payers *payers // the users that pay this node for runs

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Settlements of billed runs, in the background: Close gives them
	// settleGrace before it cancels settleCtx.
	settleCtx   context.Context
	stopSettles context.CancelFunc
	settles     sync.WaitGroup
}

// entry is a descriptor the node knows, with the peers seen to have its
// module ready to run.
type entry struct {
	d       *Descriptor
	runners map[peer.ID]time.Time
}

// New starts a Manager and serves its finds and runs on its endpoint.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.NumCPU()
	}
	cfg.MaxLimits = DefaultMaxLimits.Min(cfg.MaxLimits)
	user, err := identity.SignerID(cfg.UserKey)
	if err != nil {
		return nil, err
	}
	if cfg.NodeKey == nil {
		// The host's own key, where the peerstore holds it as ed25519.
		if pk := cfg.Host.Peerstore().PrivKey(cfg.Host.ID()); pk != nil {
			if raw, err := pk.Raw(); err == nil && len(raw) == ed25519.PrivateKeySize {
				cfg.NodeKey = ed25519.PrivateKey(raw)
			}
		}
	}
	cert, err := ownCert(cfg.UserKey, cfg.Cert, user, cfg.Host.ID())
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cert:  cert,
		cfg:   cfg,
		log:   cfg.Logger,
		self:  cfg.Host.ID(),
		user:  user,
		slots: make(chan struct{}, cfg.Slots),

		waiting:  make(chan struct{}, 4*cfg.Slots),
		catalog:  map[cid.Cid]*entry{},
		noRun:    map[peer.ID]time.Time{},
		asked:    map[string]time.Time{},
		verified: map[string]*Descriptor{},
		verdicts: map[verdictKey]*pending{},
		certs:    map[string]struct{}{},
		payers:   newPayers(time.Now),
		metrics:  newMetrics(cfg.Registerer),
	}
	if cfg.OtherSlots > 0 && cfg.OtherSlots < cfg.Slots {
		m.others = make(chan struct{}, cfg.OtherSlots)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.settleCtx, m.stopSettles = context.WithCancel(context.Background())
	wcfg := wasm.Config{
		Logger: cfg.Logger, Interpreter: cfg.Interpreter,
		ModuleCID: func(code []byte) (cid.Cid, error) { return content.FileCID(bytes.NewReader(code)) },
		Host:      map[string][]wasm.HostFunc{HostModule: m.hostFuncs()},
	}
	if cfg.Dir != "" {
		wcfg.CacheDir = cfg.Dir + string(os.PathSeparator) + "wasm-cache"
	}
	if m.rt, err = wasm.New(ctx, wcfg); err != nil {
		return nil, err
	}
	m.loadCatalog()
	m.resumeUnsettled()
	// The two protocols every node serves, with this manager's state.
	m.unserve = []func(){
		remote.Handle(cfg.Remote, findFn, m.serveFind),
		remote.Handle(cfg.Remote, runFn, func(ctx context.Context, req runRequest) (runReply, error) {
			return m.serveRun(ctx, remote.Caller(ctx), req), nil
		}),
		remote.Handle(cfg.Remote, memoFn, m.serveMemo),
		remote.Handle(cfg.Remote, verdictFn, func(ctx context.Context, req verdictReq) (struct{}, error) {
			return struct{}{}, m.serveVerdict(remote.Caller(ctx), req)
		}),
	}
	return m, nil
}

// settleGrace is how long Close waits for the settlements under way
// before it cancels them: a run settled is a run paid.
const settleGrace = 5 * time.Second

// Close stops the manager: runs in progress fail, and settlements still
// under way after settleGrace are given up (their reserves return to the
// payers when they expire).
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	for _, stop := range m.unserve {
		stop()
	}
	m.mu.Lock()
	m.closing = true
	for k, p := range m.verdicts {
		// Unjudged: the reserve returns to its payer when it expires.
		p.timer.Stop()
		delete(m.verdicts, k)
	}
	m.mu.Unlock()
	settled := make(chan struct{})
	go func() {
		m.settles.Wait()
		close(settled)
	}()
	grace := time.NewTimer(settleGrace)
	select {
	case <-settled:
	case <-grace.C:
		m.stopSettles()
		<-settled
	}
	grace.Stop()
	m.stopSettles()
	return m.rt.Close(context.Background())
}

// Computes reports whether this node runs modules.
func (m *Manager) Computes() bool { return !m.cfg.NoCompute }

// Runtime returns the node's wasm runtime.
func (m *Manager) Runtime() *wasm.Runtime { return m.rt }

// PublishOptions describe a service being published.
type PublishOptions struct {
	Name, Version, Description string
	Input, Output              string
	Limits                     wasm.Limits
	Price                      Price
	// Wants and Deterministic are the descriptor's (see Descriptor).
	Wants         []string
	Deterministic bool
}

// Publish adds the module code as content, checks that it compiles,
// signs a descriptor for it with the user key, stores and announces both,
// and returns the descriptor.
func (m *Manager) Publish(ctx context.Context, code io.Reader, opt PublishOptions) (*Descriptor, error) {
	if err := CheckName(opt.Name); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(code, wasm.DefaultMaxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	mod, err := m.cfg.Content.Add(ctx, bytes.NewReader(data), content.AddOptions{Name: "service module " + opt.Name})
	if err != nil {
		return nil, fmt.Errorf("add module: %w", err)
	}
	if _, err := m.rt.Compile(ctx, mod, data); err != nil {
		return nil, fmt.Errorf("publish %s: %w", opt.Name, err)
	}
	d := opt.descriptor()
	d.Module = mod
	return m.publish(ctx, d)
}

func (o PublishOptions) descriptor() *Descriptor {
	return &Descriptor{
		Name: o.Name, Version: o.Version, Description: o.Description,
		Input: o.Input, Output: o.Output, Limits: o.Limits, Price: o.Price,
		Wants: o.Wants, Deterministic: o.Deterministic,
	}
}

// publish signs d, stores it as pinned content, adds it to the
// catalogue and announces its name.
func (m *Manager) publish(ctx context.Context, d *Descriptor) (*Descriptor, error) {
	if err := d.sign(m.cfg.UserKey, time.Now()); err != nil {
		return nil, err
	}
	c, err := m.cfg.Content.Add(ctx, bytes.NewReader(d.raw), content.AddOptions{Name: "service " + d.Label()})
	if err != nil {
		return nil, fmt.Errorf("add descriptor: %w", err)
	}
	if !c.Equals(d.id) {
		return nil, fmt.Errorf("descriptor stored as %s, expected %s", c, d.id) // cannot happen: same importer
	}
	m.learn(d, m.self, !m.cfg.NoCompute && d.Module.Defined())
	m.saveCatalog()
	m.announce(d.Name)
	m.log.Info("service published", "name", d.Label(), "descriptor", d.id, "module", d.Module)
	return d, nil
}

// announce tells the DHT that this node knows a service called name.
func (m *Manager) announce(name string) {
	if m.cfg.Routing == nil {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
		defer cancel()
		if err := m.cfg.Routing.Provide(ctx, NameKey(name), true); err != nil && m.ctx.Err() == nil {
			m.log.Debug("announce service name", "name", name, "err", err)
		}
	}()
}

// learn adds d to the catalogue, noting p as a node with its module
// ready if ready is set. It reports whether d is new to the catalogue.
func (m *Manager) learn(d *Descriptor, p peer.ID, ready bool) (added bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.catalog[d.id]
	if !ok {
		if len(m.catalog) >= maxCatalog {
			return false
		}
		e = &entry{d: d, runners: map[peer.ID]time.Time{}}
		m.catalog[d.id] = e
	}
	if ready && p != "" {
		e.runners[p] = time.Now()
	}
	return !ok
}

// Info is what a node knows of a service.
type Info struct {
	Descriptor *Descriptor
	// Runners are the nodes seen with the module ready to run.
	Runners []peer.ID
}

// Known lists the catalogue's descriptors that match query (see Find).
func (m *Manager) Known(query string) []Info {
	words := strings.Fields(strings.ToLower(query))
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Info
	for _, e := range m.catalog {
		if !matches(e.d, words) {
			continue
		}
		in := Info{Descriptor: e.d}
		for p := range e.runners {
			in.Runners = append(in.Runners, p)
		}
		sort.Slice(in.Runners, func(i, j int) bool { return in.Runners[i] < in.Runners[j] })
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Descriptor, out[j].Descriptor
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Created.After(b.Created)
	})
	return out
}

// matches reports whether every word is in d's name or description, or
// the one word is d's CID.
func matches(d *Descriptor, words []string) bool {
	if len(words) == 1 && words[0] == strings.ToLower(d.id.String()) {
		return true
	}
	text := strings.ToLower(d.Name + " " + d.Label() + " " + d.Description)
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// catalogFile is the catalogue's on-disk form: the signed descriptors.
type catalogFile struct {
	Descriptors [][]byte `json:"descriptors"`
}

func (m *Manager) catalogPath() string {
	if m.cfg.Dir == "" {
		return ""
	}
	return m.cfg.Dir + string(os.PathSeparator) + "services.json"
}

func (m *Manager) loadCatalog() {
	path := m.catalogPath()
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("read service catalogue", "err", err)
		}
		return
	}
	var f catalogFile
	if err := json.Unmarshal(data, &f); err != nil {
		m.log.Warn("service catalogue is unreadable; starting empty", "path", path, "err", err)
		return
	}
	for _, raw := range f.Descriptors {
		d, err := Parse(raw)
		if err != nil {
			m.log.Warn("dropping a bad descriptor from the catalogue", "err", err)
			continue
		}
		m.learn(d, "", false)
	}
}

func (m *Manager) saveCatalog() {
	path := m.catalogPath()
	if path == "" {
		return
	}
	m.mu.Lock()
	var f catalogFile
	for _, e := range m.catalog {
		f.Descriptors = append(f.Descriptors, e.d.raw)
	}
	m.mu.Unlock()
	data, err := json.Marshal(f)
	if err == nil {
		err = atomicfile.Write(path, data, 0o600)
	}
	if err != nil {
		m.log.Warn("save service catalogue", "err", err)
	}
}

// ownCert returns the cert that makes this node its user's: the one given,
// checked, or one made with the user key.
func ownCert(key crypto.Signer, given *nodecert.Cert, user, self peer.ID) (nodecert.Cert, error) {
	if given == nil {
		return nodecert.New(key, self)
	}
	if given.User != user {
		return nodecert.Cert{}, fmt.Errorf("service: Config.Cert is of user %s, not of Config.UserKey's %s", given.User, user)
	}
	if err := given.Check(self); err != nil {
		return nodecert.Cert{}, fmt.Errorf("service: Config.Cert: %w", err)
	}
	return *given, nil
}
