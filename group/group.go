package group

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a group: 1 to 64 of a-z, 0-9,
// '.', '_' and '-', starting with a letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Config configures a Manager.
type Config struct {
	// Host carries the raft messages and is the node's identity.
	Host host.Host
	// Remote is the node's endpoint: calls made on a member that does not
	// lead are forwarded to the leader through it.
	Remote *remote.Endpoint
	// FindPeer, if set, finds the addresses of a member this node knows no
	// address for.
	FindPeer func(context.Context, peer.ID) (peer.AddrInfo, error)
	// Dir holds the groups' logs (a Pebble database in Dir/log) and
	// snapshots (Dir/snapshots/NAME); empty means memory only.
	Dir string
	// HeartbeatTimeout is how long a follower waits for its leader before
	// it calls an election. Zero means one second (raft's default).
	HeartbeatTimeout time.Duration
	// Logger receives the groups' logs. Nil means none.
	Logger *slog.Logger
	// Registerer, if set, takes the groups' metrics: how often a member
	// became unreachable, and how many are now.
	Registerer prometheus.Registerer
}

// Validate checks the Config, naming the field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("group: Config.Host is nil")
	case c.Remote == nil:
		return errors.New("group: Config.Remote is nil")
	case c.HeartbeatTimeout < 0:
		return fmt.Errorf("group: Config.HeartbeatTimeout is negative (%v)", c.HeartbeatTimeout)
	}
	return nil
}

// Manager runs the groups a node is a member of.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	db   *pebble.DB
	stop func()

	mu     sync.Mutex
	groups map[string]*Group
	closed bool

	tune    func(*raft.Config) // tests change raft's settings here
	metrics *metrics           // nil without a Registerer
}

// New starts a manager: it opens the groups' store and serves Protocol and
// the forwarding function on the node's endpoint. Groups on disk are not
// opened until Open names them (List lists them).
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = time.Second
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, groups: map[string]*Group{}, metrics: newMetrics(cfg.Registerer)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	dbDir := ""
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("group dir: %w", err)
		}
		dbDir = filepath.Join(cfg.Dir, "log")
	}
	var err error
	if m.db, err = openDB(dbDir, m.log); err != nil {
		return nil, err
	}
	cfg.Host.SetStreamHandler(Protocol, m.handle)
	stopCall := remote.Handle(cfg.Remote, callFn, m.serveCall)
	m.stop = func() {
		cfg.Host.RemoveStreamHandler(Protocol)
		stopCall()
	}
	return m, nil
}

// List lists the groups this node keeps, open or on disk, sorted (a
// group's keys are Group.List: the receiver says which is listed).
func (m *Manager) List() []string {
	m.mu.Lock()
	names := make([]string, 0, len(m.groups))
	for n := range m.groups {
		names = append(names, n)
	}
	m.mu.Unlock()
	if m.cfg.Dir != "" {
		ents, _ := os.ReadDir(filepath.Join(m.cfg.Dir, "snapshots"))
		for _, e := range ents {
			if e.IsDir() && ValidName(e.Name()) && !slices.Contains(names, e.Name()) {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return names
}

// Close closes every open group and the store. Members stay members: a
// node that starts again and opens its groups rejoins them with its log.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	gs := make([]*Group, 0, len(m.groups))
	for _, g := range m.groups {
		gs = append(gs, g)
	}
	m.mu.Unlock()
	m.stop()
	var err error
	for _, g := range gs {
		err = errors.Join(err, g.Close())
	}
	return errors.Join(err, m.db.Close())
}

// Options say how to open a group.
type Options struct {
	// Members form the group if this node has no state for it yet: this
	// node and these peers, each of which opens the group with the same
	// list (or joins it later). Empty with no Join: a group of one.
	Members []peer.ID
	// Join, if set, is a member to ask for this node's place in a group
	// that exists already; a member must have added this node first
	// (AddMember).
	Join peer.ID
	// Machine is the program's own state machine for Apply, or nil.
	Machine StateMachine
	// LockTTL is how long a lock outlives its holder's last renewal. Zero
	// means ten seconds.
	LockTTL time.Duration
	// Admit, if set, must also accept a peer before it may speak raft to
	// this node or forward calls to it, member or not: a program that
	// knows who its members should be (the ledger's roster) refuses a
	// voter that one member added behind the others' backs.
	Admit func(peer.ID) bool
}

// Open opens the group name on this node: from its state on disk, by
// forming it with opts.Members, or by joining it through opts.Join. If the
// group is open already, Open returns it.
func (m *Manager) Open(ctx context.Context, name string, opts Options) (*Group, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: group name %q (1-64 of a-z 0-9 . _ -)", ErrBadName, name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if g, ok := m.groups[name]; ok {
		m.mu.Unlock()
		return g, g.join(ctx, opts.Join)
	}
	g, err := m.start(name, opts)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.groups[name] = g
	m.mu.Unlock()
	if err := g.join(ctx, opts.Join); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Drop closes the group name on this node, if it is open, and deletes all
// this node kept of it: its log, its state, its snapshots. The group goes
// on without this node if a majority of its members remains; to this node
// it is as if it had never opened it, and Open may form or join it anew.
// It is for a group that never formed (its other members refused) or that
// this node gave up joining. A name with nothing stored is no error.
func (m *Manager) Drop(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: group name %q (1-64 of a-z 0-9 . _ -)", ErrBadName, name)
	}
	if g := m.group(name); g != nil {
		if err := g.Close(); err != nil {
			m.log.Debug("closing a dropped group", "group", name, "err", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.groups[name] != nil:
		return fmt.Errorf("group %s: opened again while it was dropped", name)
	}
	if err := newStore(m.db, name).drop(); err != nil {
		return fmt.Errorf("group %s: drop its log: %w", name, err)
	}
	if m.cfg.Dir != "" {
		if err := os.RemoveAll(filepath.Join(m.cfg.Dir, "snapshots", name)); err != nil {
			return fmt.Errorf("group %s: drop its snapshots: %w", name, err)
		}
	}
	return nil
}

func (m *Manager) raftConfig(self peer.ID, name string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(self.String())
	c.HeartbeatTimeout = m.cfg.HeartbeatTimeout
	c.ElectionTimeout = m.cfg.HeartbeatTimeout
	c.LeaderLeaseTimeout = m.cfg.HeartbeatTimeout / 2
	c.MaxAppendEntries = maxAppendEntries
	c.NoLegacyTelemetry = true
	c.Logger = hclogger(m.log.With("group", name))
	if m.tune != nil {
		m.tune(c)
	}
	return c
}

// logCache is how many recent entries each group keeps in memory.
const logCache = 512

// diskLogCache is logCache for a group whose machine is a DiskMachine.
const diskLogCache = 32

// start builds the group's raft; m.mu is held.
func (m *Manager) start(name string, opts Options) (*Group, error) {
	self := m.cfg.Host.ID()
	var snaps raft.SnapshotStore = raft.NewInmemSnapshotStore()
	if m.cfg.Dir != "" {
		var err error
		if snaps, err = raft.NewFileSnapshotStore(filepath.Join(m.cfg.Dir, "snapshots", name), 2, io.Discard); err != nil {
			return nil, fmt.Errorf("group %s: snapshots: %w", name, err)
		}
	}
	st := newStore(m.db, name)
	has, err := raft.HasExistingState(st, st, snaps)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", name, err)
	}
	g := &Group{m: m, name: name, self: self, fsm: newFSM(opts.Machine), store: st,
		lockTTL: opts.LockTTL, leaderCh: make(chan struct{}), seed: map[peer.ID]bool{}, admit: opts.Admit}
	if g.lockTTL <= 0 {
		g.lockTTL = 10 * time.Second
	}
	for _, p := range opts.Members {
		g.seed[p] = true
	}
	if opts.Join != "" {
		g.seed[opts.Join] = true
	}
	g.trans = newTransport(m.cfg.Host, name, m.cfg.FindPeer, newHealth(m.log, name, m.metrics))
	if !has && opts.Join == "" {
		conf := raft.Configuration{}
		for _, p := range append([]peer.ID{self}, opts.Members...) {
			if !slices.ContainsFunc(conf.Servers, func(s raft.Server) bool { return s.ID == raft.ServerID(p.String()) }) {
				conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(p.String()), Address: raft.ServerAddress(p.String())})
			}
		}
		// Every member forms the group with the same configuration,
		// whatever order its caller named the members in.
		slices.SortFunc(conf.Servers, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
		if err := raft.BootstrapCluster(m.raftConfig(self, name), st, st, snaps, g.trans, conf); err != nil {
			g.trans.Close()
			return nil, fmt.Errorf("group %s: form: %w", name, err)
		}
	}
	// Raft reads back every entry it replicates; the cache keeps the
	// latest in memory so they are not read and decoded from Pebble again.
	// A DiskMachine's entries may be large (a topic's batches): fewer of
	// them stay in memory.
	cache := logCache
	if _, ok := opts.Machine.(DiskMachine); ok {
		cache = diskLogCache
	}
	logs, err := raft.NewLogCache(cache, st)
	if err != nil {
		g.trans.Close()
		return nil, err
	}
	g.raft, err = raft.NewRaft(m.raftConfig(self, name), g.fsm, logs, st, snaps, g.trans)
	if err != nil {
		g.trans.Close()
		return nil, fmt.Errorf("group %s: %w", name, err)
	}
	commit := g.raft.CommitIndex
	g.trans.commit.Store(&commit)
	obs := make(chan raft.Observation, 16)
	g.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	g.raft.RegisterObserver(g.observer)
	g.obsDone = make(chan struct{})
	go g.observe(obs)
	g.tellCh, g.tellDone = make(chan struct{}, 1), make(chan struct{})
	go g.tell()
	return g, nil
}

// handle accepts a raft stream: from a member of an open group only.
func (m *Manager) handle(s network.Stream) {
	defer s.Close()
	ws := wire.NewStream(s, wire.WithMaxFrame(maxHelloFrame), wire.WithMaxSend(maxHelloFrame), wire.WithoutRecvTimeout())
	from := s.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	var h hello
	err := ws.Recv(ctx, &h)
	cancel()
	if err != nil {
		s.Reset()
		return
	}
	m.mu.Lock()
	g := m.groups[h.Group]
	m.mu.Unlock()
	var refuse string
	switch {
	case g == nil:
		refuse = "no group " + h.Group + " here"
	case !g.allowed(from):
		refuse = "not a member of " + h.Group
	}
	ctx, cancel = context.WithTimeout(context.Background(), rpcTimeout)
	err = ws.Send(ctx, helloReply{Err: refuse})
	cancel()
	if err != nil {
		s.Reset()
		return
	}
	if refuse != "" {
		m.log.Debug("raft stream refused", "peer", from, "why", refuse)
		return // closed, not reset, so the refusal is read
	}
	ws.SetMaxFrame(maxFrame)
	if err := g.trans.serve(from, ws); err != nil {
		m.log.Debug("raft stream ended", "group", h.Group, "peer", from, "err", err)
		if r := (*refusal)(nil); !errors.As(err, &r) {
			s.Reset()
		}
	}
}

func (m *Manager) group(name string) *Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.groups[name]
}

// Group is this node's membership in a replicated group. Its methods may be
// called on any member: a member that does not lead forwards them to the
// leader, and retries them when the leader changes, so a write is applied
// exactly once even if the leader dies under it.
type Group struct {
	m       *Manager
	name    string
	self    peer.ID
	raft    *raft.Raft
	trans   *transport
	fsm     *fsm
	store   *store
	lockTTL time.Duration
	admit   func(peer.ID) bool

	observer *raft.Observer
	obsDone  chan struct{}

	mu         sync.Mutex
	seed       map[peer.ID]bool // peers allowed before the log names them
	leaderCh   chan struct{}    // closed and replaced when the leader changes
	gen        uint64           // leader changes seen
	readyGen   atomic.Uint64    // gen+1 at which this node, leading, applied all before its term
	lastLeader atomic.Pointer[leaderID]
	inflight   sync.WaitGroup // VerifyLeader calls under way; Close waits for them
	closed     bool

	writing  atomic.Int64  // writes this node, leading, is waiting for
	tellCh   chan struct{} // a write committed: tell the followers
	tellDone chan struct{}
}

// tell lets the followers know at once that the writes this node leads
// have committed, when no other write is under way to carry that news.
// Raft tells a follower the commit index only with its next append, and
// the next may be CommitTimeout (50 ms) away when nothing else is written:
// until then the follower has not applied what its leader has, and a
// question put to it (a Sync, a ledger member's confirmation of a
// transaction) waits. Verifying that it leads sends every follower a
// heartbeat at once, and the transport has heartbeats carry the commit
// (heartbeatCommit): no entry is written, nothing waits on a disk. It
// ends with the group.
func (g *Group) tell() {
	defer close(g.tellDone)
	for {
		select {
		case <-g.tellCh:
		case <-g.trans.ctx.Done():
			return
		}
		if g.writing.Load() > 0 || g.raft.State() != raft.Leader {
			continue // the write under way carries the news
		}
		g.raft.VerifyLeader() // its answer is not needed: the heartbeats are
	}
}

// told marks a write this node proposed as done; the last of a burst
// wakes tell.
func (g *Group) told() {
	if g.writing.Add(-1) == 0 {
		select {
		case g.tellCh <- struct{}{}:
		default:
		}
	}
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// observe follows leader changes until the group closes.
func (g *Group) observe(obs chan raft.Observation) {
	defer close(g.obsDone)
	for {
		select {
		case <-obs:
			g.mu.Lock()
			g.gen++
			close(g.leaderCh)
			g.leaderCh = make(chan struct{})
			g.mu.Unlock()
		case <-g.trans.ctx.Done():
			return
		}
	}
}

// Leader returns the group's leader as this node knows it, or "" if it
// knows none.
func (g *Group) Leader() peer.ID {
	_, id := g.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	if l := g.lastLeader.Load(); l != nil && l.id == id {
		return l.p
	}
	p, err := peer.Decode(string(id))
	if err != nil {
		return ""
	}
	g.lastLeader.Store(&leaderID{id, p})
	return p
}

// leaderID is a leader's raft ID with its decoding.
type leaderID struct {
	id raft.ServerID
	p  peer.ID
}

func (g *Group) leaderChanged() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leaderCh
}

// WatchLeader yields the leader now (if any) and then each new one, until
// ctx ends or the loop stops.
func (g *Group) WatchLeader(ctx context.Context) func(yield func(peer.ID) bool) {
	return func(yield func(peer.ID) bool) {
		var last peer.ID
		for {
			ch := g.leaderChanged()
			if l := g.Leader(); l != "" && l != last {
				last = l
				if !yield(l) {
					return
				}
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-g.trans.ctx.Done():
				return
			}
		}
	}
}

// allowed says whether p may speak raft to this node for the group.
func (g *Group) allowed(p peer.ID) bool {
	if g.admit != nil && !g.admit(p) {
		return false
	}
	g.mu.Lock()
	ok := g.seed[p]
	g.mu.Unlock()
	if ok {
		return true
	}
	return g.isMember(p)
}

func (g *Group) configuration() ([]raft.Server, error) {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

func (g *Group) isMember(p peer.ID) bool {
	if g.fsm.member(p.String()) {
		return true // in the configuration last applied
	}
	servers, err := g.configuration() // the latest, applied or not
	if err != nil {
		return false
	}
	id := raft.ServerID(p.String())
	return slices.ContainsFunc(servers, func(s raft.Server) bool { return s.ID == id })
}

// Close stops this node's part in the group. The group goes on without it
// (if a majority remains) and the node rejoins with its log when it opens
// the group again; RemoveMember takes it out for good.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	g.inflight.Wait()
	err := g.raft.Shutdown().Error()
	g.raft.DeregisterObserver(g.observer)
	g.trans.Close()
	g.trans.health.close()
	<-g.obsDone
	<-g.tellDone
	g.m.mu.Lock()
	if g.m.groups[g.name] == g {
		delete(g.m.groups, g.name)
	}
	g.m.mu.Unlock()
	return err
}

func newID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}
