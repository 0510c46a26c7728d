package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/remote"
)

// Defaults for Config and Options.
const (
	DefaultNodeBytes = 256 << 20
	DefaultBytes     = 64 << 20
	DefaultMaxEntry  = 1 << 20
	DefaultHotReads  = 2
)

// Caps on what a peer sends.
const (
	MaxName = 512
	MaxKey  = 1024
)

// Config configures a Manager.
type Config struct {
	// Host is the node's libp2p host. Required.
	Host host.Host
	// Remote is the node's remote endpoint. Required.
	Remote *remote.Endpoint
	// MaxBytes bounds the values all caches of the node keep. Zero means
	// DefaultNodeBytes.
	MaxBytes int64
	// Registerer, if set, gets the metrics.
	Registerer prometheus.Registerer
	// Logger, if nil, discards.
	Logger *slog.Logger
}

// Validate names a missing field.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("cache: Config.Host is required")
	case c.Remote == nil:
		return errors.New("cache: Config.Remote is required")
	case c.MaxBytes < 0:
		return errors.New("cache: Config.MaxBytes is negative")
	}
	return nil
}

// Manager keeps a node's caches, serves their keys to peers and holds
// them within the node's memory bound.
type Manager struct {
	cfg   Config
	self  peer.ID
	log   *slog.Logger
	met   *metrics
	bytes atomic.Int64
	stops []func()

	mu      sync.Mutex
	caches  map[string]*Cache
	retired uint64 // hits of the caches closed
	closed  bool
}

// hits counts the hits of every cache the node had.
func (m *Manager) hits() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.retired
	for _, c := range m.caches {
		n += c.st.hits.Load()
	}
	return float64(n)
}

// New starts a manager: it serves the cache functions on cfg.Remote.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultNodeBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, self: cfg.Host.ID(), log: log.With("layer", "cache"), caches: map[string]*Cache{}}
	var err error
	if m.met, err = newMetrics(cfg.Registerer, m.hits); err != nil {
		return nil, err
	}
	m.stops = append(m.stops,
		remote.Handle(cfg.Remote, getFn, m.serveGet),
		remote.Handle(cfg.Remote, helloFn, m.serveHello),
		remote.Handle(cfg.Remote, invalFn, m.serveInval),
	)
	return m, ctx.Err()
}

// Open returns the node's cache of src, started on first use: its
// change stream followed and its peers found. A second Open of a source
// with the same ID returns the cache already open (opts then ignored).
func (m *Manager) Open(ctx context.Context, src Source, opts Options) (*Cache, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	id := src.ID()
	if id == "" || len(id) > MaxName {
		return nil, fmt.Errorf("%w: source ID of %d bytes (1-%d)", ErrBadRequest, len(id), MaxName)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if c := m.caches[id]; c != nil {
		m.mu.Unlock()
		return c, nil
	}
	c := newCache(m, src, opts)
	m.caches[id] = c
	m.mu.Unlock()
	c.start(ctx)
	return c, nil
}

// Get returns the open cache named id, or nil.
func (m *Manager) Get(id string) *Cache {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.caches[id]
}

// List returns the stats of every open cache, by name.
func (m *Manager) List() []Stats {
	m.mu.Lock()
	cs := make([]*Cache, 0, len(m.caches))
	for _, c := range m.caches {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	out := make([]Stats, len(cs))
	for i, c := range cs {
		out[i] = c.Stats()
	}
	slices.SortFunc(out, func(a, b Stats) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Bytes is what all caches of the node keep now.
func (m *Manager) Bytes() int64 { return m.bytes.Load() }

// Drop closes the cache named id and forgets its entries. ErrNotFound
// if none is open.
func (m *Manager) Drop(id string) error {
	m.mu.Lock()
	c := m.caches[id]
	m.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: no cache %q on this node", ErrNotFound, id)
	}
	return c.Close()
}

func (m *Manager) forget(c *Cache) {
	m.mu.Lock()
	if m.caches[c.id] == c {
		delete(m.caches, c.id)
		m.retired += c.st.hits.Load()
	}
	m.mu.Unlock()
}

// Close closes every cache and stops serving. Safe to call twice.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cs := make([]*Cache, 0, len(m.caches))
	for _, c := range m.caches {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	for _, stop := range m.stops {
		stop()
	}
	var err error
	for _, c := range cs {
		err = errors.Join(err, c.Close())
	}
	return err
}

// fitNode evicts, from the caches keeping most, until the node is within
// its bound. It holds one cache's lock at a time.
func (m *Manager) fitNode() {
	for m.bytes.Load() > m.cfg.MaxBytes {
		m.mu.Lock()
		var big *Cache
		for _, c := range m.caches {
			if big == nil || c.bytes.Load() > big.bytes.Load() {
				big = c
			}
		}
		m.mu.Unlock()
		if big == nil || !big.evictOne() {
			return
		}
	}
}
