package names

import (
	"context"
	stdcrypto "crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/namesys"
	"github.com/ipfs/boxo/path"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/routing"
)

// Defaults for Config.
const (
	DefaultLifetime          = ipns.DefaultRecordLifetime // 48 h, as kubo
	DefaultTTL               = ipns.DefaultRecordTTL      // 5 min, as kubo
	DefaultRepublishInterval = 4 * time.Hour              // as kubo
	DefaultPublicTimeout     = 2 * time.Minute
	DefaultPublicGrace       = 2 * time.Second
	// MaxDepth is how many names Resolve follows, one to the next.
	MaxDepth = namesys.DefaultDepthLimit
)

// maxBackground caps the stores in the public DHT under way at once; one
// more is dropped (the next republish makes it again).
const maxBackground = 16

// Config configures a Manager. Routing and UserKey are required.
type Config struct {
	// Routing is nube's DHT, where records are stored and looked up.
	Routing routing.ValueStore
	// Public is the public IPFS DHT, where records are also stored and
	// looked up, so kubo nodes and nube share names. Nil: nube's DHT only.
	Public routing.ValueStore
	// UserKey is the user's key, the name Self. A signer that refuses
	// (a node that joined its user without the key) makes Publish with
	// Self fail with its error; the other keys still work.
	UserKey stdcrypto.Signer
	// Dir keeps the keys (KEY.key, PEM, 0600) and what was published
	// (published.json, for the republisher). Empty: in memory.
	Dir string
	// DNSLinks maps a domain to the path its DNSLink names
	// ("example.com": "/ipfs/CID"), before DNS is asked: for tests and
	// offline use. The IPFS_NS_MAP environment variable
	// ("a.example:/ipfs/CID,b.example:/ipns/NAME") is read too, as kubo
	// does.
	DNSLinks map[string]string
	// LookupTXT looks up a domain's TXT records for DNSLink. Nil means the
	// system's resolver.
	LookupTXT func(ctx context.Context, domain string) ([]string, error)
	// RepublishInterval is how often every record this node published is
	// signed again and stored. Zero means DefaultRepublishInterval.
	RepublishInterval time.Duration
	// PublicTimeout bounds one store in the public DHT. Zero means
	// DefaultPublicTimeout.
	PublicTimeout time.Duration
	// PublicGrace is how long a lookup waits on the public DHT once nube's
	// has answered with a record. Zero means DefaultPublicGrace.
	PublicGrace time.Duration
	// CacheTTL caps how long the gateway's name system caches a resolved
	// name, and the max-age it answers with (Resolve itself asks the
	// network each time). Zero means no cap: each record's own TTL.
	CacheTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the layer's logs. Nil means none.
	Logger *slog.Logger
}

// Validate reports a missing or negative field.
func (c Config) Validate() error {
	switch {
	case c.Routing == nil:
		return errors.New("names: Config.Routing is nil")
	case c.UserKey == nil:
		return errors.New("names: Config.UserKey is nil")
	case c.RepublishInterval < 0, c.PublicTimeout < 0, c.PublicGrace < 0, c.CacheTTL < 0:
		return errors.New("names: a duration of Config is negative: want 0 for the default, or more")
	}
	for domain, p := range c.DNSLinks {
		if _, err := path.NewPath(p); err != nil {
			return fmt.Errorf("names: Config.DNSLinks[%q]: %w", domain, err)
		}
	}
	return nil
}

// Manager publishes and resolves names. Its zero value is not usable:
// make one with New and stop it with Close.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	keys   *keyring
	routes stores
	ns     namesys.NameSystem // cached, for the gateway
	fresh  namesys.NameSystem // uncached, for Resolve

	pubMu sync.Mutex // serializes publishes, so sequences only grow
	book  *book

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}
	once   sync.Once
	lonely atomic.Bool // a store found no DHT peers: republish within a minute
}

// New starts a Manager: its republisher runs until Close.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.RepublishInterval == 0 {
		cfg.RepublishInterval = DefaultRepublishInterval
	}
	if cfg.PublicTimeout == 0 {
		cfg.PublicTimeout = DefaultPublicTimeout
	}
	if cfg.PublicGrace == 0 {
		cfg.PublicGrace = DefaultPublicGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:   cfg,
		log:   cfg.Logger.With("layer", "names"),
		keys:  &keyring{user: cfg.UserKey, dir: cfg.Dir},
		slots: make(chan struct{}, maxBackground),
	}
	if _, err := m.keys.signer(Self); err != nil {
		return nil, fmt.Errorf("names: %w", err)
	}
	var err error
	if m.book, err = openBook(cfg.Dir); err != nil {
		return nil, err
	}
	m.routes = stores{m: m, own: cfg.Routing, public: cfg.Public}
	lookup := m.lookupTXT
	cached := []namesys.Option{namesys.WithDNSResolver(txtResolver(lookup)), namesys.WithCache(256)}
	if cfg.CacheTTL > 0 {
		cached = append(cached, namesys.WithMaxCacheTTL(cfg.CacheTTL))
	}
	if m.ns, err = namesys.NewNameSystem(m.routes, cached...); err != nil {
		return nil, fmt.Errorf("names: %w", err)
	}
	if m.fresh, err = namesys.NewNameSystem(m.routes, namesys.WithDNSResolver(txtResolver(lookup))); err != nil {
		return nil, fmt.Errorf("names: %w", err)
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.wg.Add(1)
	go m.republisher()
	return m, nil
}

// Close stops the republisher and the stores under way. It is safe to
// call twice.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.cancel()
		m.wg.Wait()
	})
	return nil
}

// background runs f in a goroutine the Manager owns, if fewer than
// maxBackground are under way; else it drops it.
func (m *Manager) background(f func(ctx context.Context)) {
	select {
	case m.slots <- struct{}{}:
	default:
		m.log.Debug("too many stores in the public DHT under way; dropped one")
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.slots }()
		f(m.ctx)
	}()
}

// NameSystem returns the name system the gateway resolves through: boxo's,
// over this Manager's routing and DNSLink, with a cache (each name for its
// record's TTL, at most Config.CacheTTL if set). Its Publish is not for use: publish with Manager.Publish.
func (m *Manager) NameSystem() namesys.NameSystem { return m.ns }

// ValueStore returns the routing records are read from and stored in
// (both DHTs, every record checked), for the gateway's ?format=ipns-record.
func (m *Manager) ValueStore() routing.ValueStore { return m.routes }

// Keys lists the keys: Self first, then the others by name.
func (m *Manager) Keys() ([]Key, error) { return m.keys.list() }

// Gen makes an ed25519 key called name (CheckKeyName) and keeps it in
// Config.Dir. A name taken fails with ErrExists.
func (m *Manager) Gen(name string) (Key, error) { return m.keys.gen(name) }

// Remove deletes the key name and forgets what it published (the record
// stays in the DHT until it expires). Self cannot be removed.
func (m *Manager) Remove(name string) error {
	if err := m.keys.remove(name); err != nil {
		return err
	}
	return m.book.forget(name)
}

// PublishOptions tune Publish. Zero fields take the defaults.
type PublishOptions struct {
	// Lifetime is how long the record is valid. Zero: DefaultLifetime.
	Lifetime time.Duration
	// TTL is how long a resolver may cache it. Zero: DefaultTTL.
	TTL time.Duration
}

// Published is a record Publish signed and stored.
type Published struct {
	Name     string        `json:"name"`  // the IPNS name, k51… (base36 libp2p-key CID)
	Value    string        `json:"value"` // the path it points at
	Sequence uint64        `json:"sequence"`
	Validity time.Time     `json:"validity"` // the end of its validity
	TTL      time.Duration `json:"ttl"`
}

// ParseValue reads what a name may point at: a CID, an /ipfs/ or /ipns/
// path.
func ParseValue(s string) (path.Path, error) {
	if !strings.HasPrefix(s, "/") {
		s = "/ipfs/" + s
	}
	p, err := path.NewPath(s)
	if err != nil {
		return nil, fmt.Errorf("%w: value %q: %w", ErrBadName, s, err)
	}
	return p, nil
}

// Publish signs a record pointing key's name ("" or Self: the user key) at
// value (a CID, /ipfs/… or /ipns/…) and stores it in nube's DHT, then in
// the public DHT in the background. The sequence is one more than the
// last this node published under key (or found in nube's DHT, for a key
// it never published under). The record is republished every
// Config.RepublishInterval while the node runs.
func (m *Manager) Publish(ctx context.Context, key, value string, opts PublishOptions) (Published, error) {
	if key == "" {
		key = Self
	}
	v, err := ParseValue(value)
	if err != nil {
		return Published{}, err
	}
	if opts.Lifetime < 0 || opts.TTL < 0 {
		return Published{}, fmt.Errorf("%w: a negative lifetime or TTL", ErrBadName)
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	sk, err := m.keys.signer(key)
	if err != nil {
		return Published{}, err
	}
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	e := entry{Key: key, Value: v.String(), Lifetime: opts.Lifetime, TTL: opts.TTL}
	if last, ok := m.book.get(key); ok {
		e.Sequence = last.Sequence + 1
	} else if seq, ok := m.networkSequence(ctx, sk); ok {
		e.Sequence = seq + 1
	}
	return m.publish(ctx, sk, e)
}

// networkSequence returns the sequence of the record nube's DHT holds
// for sk's name, looking for a few seconds at most. (Not the public DHT,
// whose lookups take tens of seconds: a key is made here, so a record of
// it that nube's DHT lacks would have been published by a copy of the
// key elsewhere.)
func (m *Manager) networkSequence(ctx context.Context, sk ic.PrivKey) (uint64, bool) {
	id, err := idOf(sk)
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := string(ipns.NameFromPeer(id).RoutingKey())
	raw, err := m.cfg.Routing.GetValue(ctx, key)
	if err != nil {
		return 0, false
	}
	rec, err := checkRecord(key, raw)
	if err != nil {
		return 0, false
	}
	seq, err := rec.Sequence()
	return seq, err == nil
}

// publish signs e with sk, stores it, and books it.
func (m *Manager) publish(ctx context.Context, sk ic.PrivKey, e entry) (Published, error) {
	id, err := idOf(sk)
	if err != nil {
		return Published{}, err
	}
	v, err := path.NewPath(e.Value)
	if err != nil {
		return Published{}, err
	}
	eol := m.cfg.Now().Add(e.Lifetime).UTC()
	rec, err := ipns.NewRecord(sk, v, e.Sequence, eol, e.TTL)
	if err != nil {
		return Published{}, fmt.Errorf("sign the record of %s: %w", e.Key, err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		return Published{}, err
	}
	name := ipns.NameFromPeer(id)
	if err := m.routes.PutValue(ctx, string(name.RoutingKey()), raw); err != nil {
		return Published{}, err
	}
	if err := m.book.put(e); err != nil {
		return Published{}, err
	}
	return Published{Name: name.String(), Value: e.Value, Sequence: e.Sequence, Validity: eol, TTL: e.TTL}, nil
}

// Resolved is where a name led.
type Resolved struct {
	Path string        `json:"path"` // an /ipfs/ path
	TTL  time.Duration `json:"ttl"`  // how long it may be cached
}

// ParseName reads a name as Resolve takes it: "/ipns/X[/path]" or "X",
// where X is an IPNS name (a peer ID or a libp2p-key CID) or a domain.
func ParseName(s string) (path.Path, error) {
	if !strings.HasPrefix(s, "/") {
		s = "/ipns/" + s
	}
	p, err := path.NewPath(s)
	if err != nil || p.Namespace() != path.IPNSNamespace {
		return nil, fmt.Errorf("%w: %q: want /ipns/NAME or NAME", ErrBadName, s)
	}
	return p, nil
}

// Resolve follows name (ParseName) to an immutable /ipfs/ path, asking
// the network (no cache). A name no router holds, or a domain with no
// DNSLink, fails with ErrNotFound; a record that fails validation is
// ignored as if absent.
func (m *Manager) Resolve(ctx context.Context, name string) (Resolved, error) {
	p, err := ParseName(name)
	if err != nil {
		return Resolved{}, err
	}
	res, err := m.fresh.Resolve(ctx, p, namesys.ResolveWithDepth(MaxDepth))
	if err != nil {
		var dnsErr *net.DNSError
		if isNotFound(err) || errors.Is(err, namesys.ErrResolveFailed) || errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return Resolved{}, fmt.Errorf("%w: %s: %w", ErrNotFound, p, err)
		}
		return Resolved{}, fmt.Errorf("resolve %s: %w", p, err)
	}
	return Resolved{Path: res.Path.String(), TTL: res.TTL}, nil
}

// routingKey returns the routing key of an IPNS name ("/ipns/X" or "X").
func routingKey(name string) (string, ipns.Name, error) {
	name = strings.TrimPrefix(name, "/ipns/")
	n, err := ipns.NameFromString(name)
	if err != nil {
		return "", ipns.Name{}, fmt.Errorf("%w: %q is not an IPNS name: %w", ErrBadName, name, err)
	}
	return string(n.RoutingKey()), n, nil
}

// Get returns the best raw record of an IPNS name ("/ipns/X" or "X") that
// the routers hold, validated; ErrNotFound if none.
func (m *Manager) Get(ctx context.Context, name string) ([]byte, error) {
	key, n, err := routingKey(name)
	if err != nil {
		return nil, err
	}
	raw, err := m.routes.GetValue(ctx, key)
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: no record of %s", ErrNotFound, n)
		}
		return nil, fmt.Errorf("get the record of %s: %w", n, err)
	}
	return raw, nil
}

// Put stores a raw record of an IPNS name, signed by someone else or
// published elsewhere, once it validates as that name's (ErrBadRecord if
// not).
func (m *Manager) Put(ctx context.Context, name string, raw []byte) error {
	key, n, err := routingKey(name)
	if err != nil {
		return err
	}
	if _, err := checkRecord(key, raw); err != nil {
		return fmt.Errorf("record of %s: %w", n, err)
	}
	return m.routes.PutValue(ctx, key, raw)
}

// lookupTXT is DNSLink's TXT lookup: Config.DNSLinks, then
// Config.LookupTXT or the system's resolver.
func (m *Manager) lookupTXT(ctx context.Context, name string) ([]string, error) {
	domain := strings.TrimSuffix(strings.TrimPrefix(name, "_dnslink."), ".")
	if p, ok := m.cfg.DNSLinks[domain]; ok {
		return []string{"dnslink=" + p}, nil
	}
	if m.cfg.LookupTXT != nil {
		return m.cfg.LookupTXT(ctx, name)
	}
	return net.DefaultResolver.LookupTXT(ctx, name)
}

// txtResolver is a madns.BasicResolver that only looks up TXT records.
type txtResolver func(ctx context.Context, name string) ([]string, error)

func (r txtResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r(ctx, name)
}

func (txtResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, errors.New("names: DNSLink looks up TXT records only")
}
