// Package nube is the library a program imports to run a nube node: Start
// a Node with a Config whose zero value works, use it, Close it.
//
//	node, err := nube.Start(ctx, nube.Config{})
//	if err != nil { ... }
//	defer node.Close()
//	fmt.Println(node.ID())
//
// A Node wires the layers below it (ARCHITECTURE.md has the map): the p2p host with its
// discovery, the node and user identities, content (Add, Get, Pin), remote
// calls (Remote) and WebAssembly services (Service, Services). Later layers
// (spaces, ledger) hang off the same Node.
package nube

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/lockfile"
	"github.com/nubecloud/nube/internal/p2p"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/wasm"
)

// Version is this build's nube version.
const Version = "0.1.0-dev"

// DefaultPort is the TCP and UDP port a node listens on when Config gives
// no listen addresses. If it is taken (say, by a second node on the same
// machine), the node falls back to a port the OS picks.
const DefaultPort = 4040

// Files in a data dir.
const (
	NodeKeyFile  = "node.key"
	UserKeyFile  = "user.key"
	LockFile     = "lock"
	PeerBookFile = "peers.json"
	BlocksDir    = "blocks"
	GroupsDir    = "groups"
	SpacesDir    = "spaces"
)

// Config configures a Node. The zero value is a working node: an ephemeral
// identity, in-memory stores, listening on DefaultPort on every interface,
// discovering peers by mDNS and the DHT.
type Config struct {
	// DataDir holds the node's keys, peer book and (in later layers) its
	// stores. Empty means nothing is written to disk: a fresh identity
	// each start, as tests want. The directory is created (mode 0700) if
	// missing, and locked for as long as the node runs.
	DataDir string
	// ListenAddrs are multiaddrs to listen on, such as
	// "/ip4/127.0.0.1/tcp/0". Empty means TCP and QUIC on DefaultPort on
	// all IPv4 and IPv6 interfaces, or an OS-chosen port if that is taken.
	ListenAddrs []string
	// NoListen makes a dial-only node: it accepts no direct connections
	// and is reachable only through a relay, as a node behind a strict
	// NAT or firewall is. It cannot be combined with ListenAddrs.
	NoListen bool
	// Bootstrap lists peers to join through, as multiaddrs ending in
	// /p2p/<peer ID>.
	Bootstrap []string
	// NoMDNS turns off discovery on the local network.
	NoMDNS bool
	// NoIPFS keeps the node off the IPFS public DHT. By default the node
	// joins it as a client beside nube's own DHT: content that lives on
	// the IPFS network can then be fetched here, and content pinned here
	// is announced there too, so IPFS nodes find it.
	NoIPFS bool
	// Network names the nube network the node joins (1 to 32 lower-case
	// letters, digits or dashes). Nodes find the other nodes of their
	// network anywhere on the internet through a rendezvous on the IPFS
	// DHT, with nothing configured, and keep a DHT of their own: name a
	// network of your own so that strangers' nodes are not mixed into
	// yours. Empty means "nube", the network everyone shares.
	Network string
	// IPFSBootstrap lists the IPFS DHT's peers to join through, as
	// multiaddrs ending in /p2p/<peer ID>. Empty means the public
	// network's bootstrap peers (the list kubo uses).
	IPFSBootstrap []string
	// RelayService makes this node a circuit relay for peers that cannot
	// be reached directly. Turn it on only on a node others can dial.
	RelayService bool
	// NoPortMap stops the node from asking the router for a port mapping
	// (UPnP/NAT-PMP).
	NoPortMap bool
	// MaxMemory bounds the memory peers' connections and streams may
	// reserve. Zero means 512 MiB.
	MaxMemory int64
	// Dial, if set, opens the node's outgoing TCP connections in place
	// of the system's dialer (network is "tcp4" or "tcp6", address
	// "host:port"), with no port reuse, so no TCP hole punching. It is
	// for programs that carry or shape the node's links themselves:
	// nubetest's link shaping, a SOCKS proxy.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ProvideAll announces every block of pinned content to the DHT, not
	// only the roots.
	ProvideAll bool
	// Remote says which remote calls the node serves. The zero value
	// serves every function registered in the binary to any peer, up to
	// remote.DefaultMaxConcurrent calls at once per peer.
	Remote remote.Policy
	// NoCompute stops the node from running WebAssembly modules, for
	// others or for itself. It still publishes, finds and calls services
	// that other nodes run.
	NoCompute bool
	// ComputeSlots bounds the modules run at once. Zero means one per
	// CPU.
	ComputeSlots int
	// ComputeLimits are the most one run may take on this node. Zero
	// fields take service.DefaultMaxLimits.
	ComputeLimits wasm.Limits
	// ComputeInterpreter runs modules in wazero's interpreter instead of
	// compiling them: no compile step, but slower runs.
	ComputeInterpreter bool
	// GroupHeartbeat is how long a member of a replicated group waits for
	// its leader before it calls an election. Zero means one second.
	GroupHeartbeat time.Duration
	// SpaceRepairGrace is how long a holder of a space this node is home
	// of may be unreachable before a copy is placed elsewhere. Zero means
	// space.DefaultRepairGrace.
	SpaceRepairGrace time.Duration
	// SpaceRepairInterval is how often the node checks the holders of its
	// spaces. Zero means space.DefaultRepairInterval.
	SpaceRepairInterval time.Duration
	// NoStorage refuses to hold other users' spaces.
	NoStorage bool
	// Offer says what the node gives other nodes, to whom, and at what
	// price. The zero value serves this user's own nodes only.
	Offer Offer
	// SpacePayInterval is how often the home of a space challenges and
	// pays each holder of another user. Zero means space.DefaultPayInterval.
	SpacePayInterval time.Duration
	// LedgerTick is how often a leading ledger node returns expired
	// reserves. Zero means ledger.DefaultTickInterval.
	LedgerTick time.Duration
	// Logger receives the node's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
}

// Validate reports a field of c that makes no sense, or two that
// contradict each other, naming them. Start calls it first.
func (c Config) Validate() error {
	switch {
	case c.NoListen && len(c.ListenAddrs) > 0:
		return errors.New("Config.NoListen and Config.ListenAddrs are both set: a node either listens or does not")
	case c.MaxMemory < 0:
		return fmt.Errorf("Config.MaxMemory is negative (%d): want 0 for the default, or more", c.MaxMemory)
	case c.ComputeSlots < 0:
		return fmt.Errorf("Config.ComputeSlots is negative (%d): want 0 for one per CPU, or more", c.ComputeSlots)
	case c.SpaceRepairGrace < 0 || c.SpaceRepairInterval < 0 || c.SpacePayInterval < 0:
		return errors.New("Config.SpaceRepairGrace, Config.SpaceRepairInterval and Config.SpacePayInterval must not be negative")
	case c.LedgerTick < 0:
		return fmt.Errorf("Config.LedgerTick is negative (%v)", c.LedgerTick)
	case c.GroupHeartbeat < 0:
		return fmt.Errorf("Config.GroupHeartbeat is negative (%v): want 0 for one second, or more", c.GroupHeartbeat)
	}
	if _, err := parseAddrs(c.ListenAddrs); err != nil {
		return fmt.Errorf("Config.ListenAddrs: %w", err)
	}
	if _, err := ParseAddrInfos(c.Bootstrap); err != nil {
		return fmt.Errorf("Config.Bootstrap: %w", err)
	}
	if _, err := ParseAddrInfos(c.IPFSBootstrap); err != nil {
		return fmt.Errorf("Config.IPFSBootstrap: %w", err)
	}
	if c.Network != "" {
		if err := p2p.CheckNetwork(c.Network); err != nil {
			return fmt.Errorf("Config.Network: %w", err)
		}
	}
	if err := c.ComputeLimits.Validate(); err != nil {
		return fmt.Errorf("Config.ComputeLimits: %w", err)
	}
	if err := c.Remote.Validate(); err != nil {
		return fmt.Errorf("Config.Remote: %w", err)
	}
	if err := c.Offer.Validate(); err != nil {
		return fmt.Errorf("Config.%w", err)
	}
	return nil
}

// Node is a running nube node. Build it with Start and stop it with Close.
type Node struct {
	cfg     Config
	log     *slog.Logger
	host    *p2p.Host
	userKey ed25519.PrivateKey
	userID  peer.ID
	lock    *lockfile.Lock
	reg     *prometheus.Registry
	store   *content.Store
	content *content.Service
	remote  *remote.Endpoint
	svc     *service.Manager
	groups  *group.Manager
	spaces  *space.Manager
	ledger  *ledger.Manager
	started time.Time
}

// Start starts a node and returns once it listens. Connecting to bootstrap
// and known peers continues in the background; use WaitPeers to wait for
// them. ctx bounds only the start itself.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, started: time.Now()}
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	n.log.Info("node started", "peer", n.host.ID(), "user", n.userID, "addrs", n.host.Addrs())
	return n, nil
}

func (n *Node) start(ctx context.Context) error {
	cfg := n.cfg
	var listen, fallback []ma.Multiaddr
	if !cfg.NoListen {
		var err error
		if listen, fallback, err = listenAddrs(cfg.ListenAddrs); err != nil {
			return err
		}
	}
	boot, err := ParseAddrInfos(cfg.Bootstrap)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	var ipfsBoot []peer.AddrInfo // nil: the public network's peers
	if len(cfg.IPFSBootstrap) > 0 {
		if ipfsBoot, err = ParseAddrInfos(cfg.IPFSBootstrap); err != nil {
			return fmt.Errorf("IPFS bootstrap: %w", err)
		}
	}
	nodeKey, err := n.openDataDir()
	if err != nil {
		return err
	}
	libKey, err := identity.LibP2P(nodeKey)
	if err != nil {
		return err
	}
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	pcfg := p2p.Config{
		Key:         libKey,
		ListenAddrs: listen,
		Bootstrap:   boot,
		IPFS:        !cfg.NoIPFS,
		// nil, not empty: the public network's peers.
		IPFSBootstrap: ipfsBoot,
		Network:       cfg.Network,
		MDNS:          !cfg.NoMDNS,
		RelayService:  cfg.RelayService,
		PortMap:       !cfg.NoPortMap,
		MaxMemory:     cfg.MaxMemory,
		Dial:          cfg.Dial,
		Registerer:    n.reg,
		Logger:        n.log,
		// The remote-call policy, not the resource manager, decides how
		// many calls a peer may have waiting.
		ProtocolStreams: map[protocol.ID]int{remote.Protocol: max(256, cfg.Remote.Streams())},
	}
	pcfg.PeerBook = n.inDataDir(PeerBookFile)
	if err := ctx.Err(); err != nil {
		return err
	}
	n.host, err = p2p.New(ctx, pcfg)
	if errors.Is(err, p2p.ErrAddrInUse) && fallback != nil {
		n.log.Info("default port just taken; listening on a port the OS picks", "port", DefaultPort)
		pcfg.ListenAddrs = fallback
		n.host, err = p2p.New(ctx, pcfg)
	}
	if err != nil {
		return err
	}
	if n.store, err = content.OpenStore(n.inDataDir(BlocksDir)); err != nil {
		return err
	}
	ccfg := content.Config{
		Host:       n.host,
		Routing:    n.host.DHT,
		Store:      n.store,
		ProvideAll: cfg.ProvideAll,
		Logger:     n.log,
	}
	if n.host.IPFS != nil {
		ccfg.Public = n.host.IPFS
	}
	n.content, err = content.New(ctx, ccfg)
	if err != nil {
		return err
	}
	n.remote, err = remote.New(ctx, remote.Config{
		Host:     n.host,
		FindPeer: n.host.FindPeer,
		Policy:   cfg.Remote,
		Logger:   n.log,
	})
	if err != nil {
		return err
	}
	n.groups, err = group.New(ctx, group.Config{
		Host:             n.host,
		Remote:           n.remote,
		FindPeer:         n.host.FindPeer,
		Dir:              n.inDataDir(GroupsDir),
		HeartbeatTimeout: cfg.GroupHeartbeat,
		Logger:           n.log,
	})
	if err != nil {
		return err
	}
	n.ledger, err = ledger.New(ctx, ledger.Config{
		Host:            n.host,
		Remote:          n.remote,
		Groups:          n.groups,
		Routing:         n.host.DHT,
		UserKey:         n.userKey,
		Dir:             cfg.DataDir,
		Trust:           cfg.Offer.trustLedger(n.userID),
		StoragePrice:    cfg.Offer.StoragePrice,
		MaxStoragePrice: cfg.Offer.MaxStoragePrice,
		TickInterval:    cfg.LedgerTick,
		Logger:          n.log,
	})
	if err != nil {
		return err
	}
	n.svc, err = service.New(ctx, service.Config{
		Host:        n.host,
		Routing:     n.host.DHT,
		Content:     n.content,
		Remote:      n.remote,
		UserKey:     n.userKey,
		NoCompute:   cfg.NoCompute,
		Slots:       cfg.ComputeSlots,
		MaxLimits:   cfg.ComputeLimits,
		Interpreter: cfg.ComputeInterpreter,
		OtherSlots:  cfg.Offer.Jobs,
		Payments:    n.ledger.Compute(),
		Admit:       cfg.Offer.admitCompute(n.host.ID(), n.userID),
		Dir:         cfg.DataDir,
		Registerer:  n.reg,
		Logger:      n.log,
	})
	if err != nil {
		return err
	}
	n.spaces, err = space.New(ctx, space.Config{
		Host:           n.host,
		Content:        n.content,
		Remote:         n.remote,
		Routing:        n.host.DHT,
		UserKey:        n.userKey,
		Dir:            n.inDataDir(SpacesDir),
		RepairGrace:    cfg.SpaceRepairGrace,
		RepairInterval: cfg.SpaceRepairInterval,
		NoStorage:      cfg.NoStorage,
		Admit:          cfg.Offer.admitStorage(n.userID),
		Payments:       n.ledger.Storage(),
		PayInterval:    cfg.SpacePayInterval,
		Logger:         n.log,
	})
	return err
}

// inDataDir returns the path of name in the data dir, or "" (in memory)
// for a node without one.
func (n *Node) inDataDir(name string) string {
	if n.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(n.cfg.DataDir, name)
}

// openDataDir creates and locks the data dir and loads (or creates) the two
// keys in it. Without a data dir both keys are fresh.
func (n *Node) openDataDir() (ed25519.PrivateKey, error) {
	dir := n.cfg.DataDir
	if dir == "" {
		n.userKey = identity.Generate()
		var err error
		if n.userID, err = identity.ID(n.userKey.Public().(ed25519.PublicKey)); err != nil {
			return nil, err
		}
		return identity.Generate(), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := checkPermissions(dir); err != nil {
		return nil, err
	}
	l, err := lockfile.Acquire(filepath.Join(dir, LockFile))
	if errors.Is(err, lockfile.ErrLocked) {
		return nil, fmt.Errorf("%w: %s (%v)", ErrDataDirInUse, dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	n.lock = l
	nodeKey, created, err := identity.LoadOrCreate(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if created {
		n.log.Info("created node key", "path", filepath.Join(dir, NodeKeyFile))
	}
	n.userKey, created, err = identity.LoadOrCreate(filepath.Join(dir, UserKeyFile))
	if err != nil {
		return nil, fmt.Errorf("user key: %w", err)
	}
	if created {
		n.log.Info("created user key", "path", filepath.Join(dir, UserKeyFile))
	}
	n.userID, err = identity.ID(n.userKey.Public().(ed25519.PublicKey))
	return nodeKey, err
}

// checkPermissions refuses a data dir that group or others may write and
// key files that group or others may read, saying how to fix them. Windows
// has no such mode bits; its ACLs are left to the user.
func checkPermissions(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if m := st.Mode().Perm(); m&0o022 != 0 {
		return fmt.Errorf("%w: data dir %s has mode %04o, so others can write to it and replace its keys or API address; fix with: chmod go-w %s", ErrUnsafePermissions, dir, m, dir)
	}
	for _, name := range []string{NodeKeyFile, UserKeyFile} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if m := st.Mode().Perm(); m&0o077 != 0 {
			return fmt.Errorf("%w: key file %s has mode %04o, so others can read it; fix with: chmod 600 %s", ErrUnsafePermissions, p, m, p)
		}
	}
	return nil
}

// listenAddrs parses configured listen addresses, or returns the defaults:
// DefaultPort if it is free, else a port the OS picks. The fallback (port 0)
// covers the race where the port is taken between the check and the listen.
func listenAddrs(cfg []string) (addrs, fallback []ma.Multiaddr, err error) {
	if len(cfg) > 0 {
		addrs, err = parseAddrs(cfg)
		return addrs, nil, err
	}
	port := DefaultPort
	if !p2p.PortFree(port) {
		port = 0
	}
	for _, t := range []string{
		"/ip4/0.0.0.0/tcp/%d", "/ip4/0.0.0.0/udp/%d/quic-v1",
		"/ip6/::/tcp/%d", "/ip6/::/udp/%d/quic-v1",
	} {
		addrs = append(addrs, ma.StringCast(fmt.Sprintf(t, port)))
		fallback = append(fallback, ma.StringCast(fmt.Sprintf(t, 0)))
	}
	if port == 0 {
		fallback = nil
	}
	return addrs, fallback, nil
}

func parseAddrs(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("bad multiaddr %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// ParseAddrInfos parses multiaddrs that end in /p2p/<peer ID>, merging the
// addresses of the same peer.
func ParseAddrInfos(ss []string) ([]peer.AddrInfo, error) {
	addrs, err := parseAddrs(ss)
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_P2P); err != nil {
			return nil, fmt.Errorf("multiaddr %q has no /p2p/<peer ID> part", ss[i])
		}
	}
	return peer.AddrInfosFromP2pAddrs(addrs...)
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// UserID returns the ID of the user key the node runs for.
func (n *Node) UserID() peer.ID { return n.userID }

// UserKey returns the signer of the user the node runs for (an ed25519 key). Layers that
// sign on the user's behalf use it; never send it anywhere.
func (n *Node) UserKey() crypto.Signer { return n.userKey }

// Host returns the node's libp2p host, for layers that speak their own
// protocols on it.
func (n *Node) Host() host.Host { return n.host }

// DHT returns the node's Kademlia DHT (the /nube network's, not IPFS's).
func (n *Node) DHT() *dht.IpfsDHT { return n.host.DHT }

// IPFSDHT returns the node's client of the IPFS public DHT, or nil if the
// node stays off it (Config.NoIPFS).
func (n *Node) IPFSDHT() *dht.IpfsDHT { return n.host.IPFS }

// WaitConnected waits until the node has a connection to p.
func (n *Node) WaitConnected(ctx context.Context, p peer.ID) error {
	return n.host.WaitConnected(ctx, p)
}

// Ban cuts every connection to p and refuses new ones, both ways, for d.
// The peer's addresses are kept, so that once the ban ends it can be
// dialled again. Ban only on proof that p misbehaved.
func (n *Node) Ban(p peer.ID, d time.Duration) { n.host.Ban(p, d) }

// Unban ends p's ban now.
func (n *Node) Unban(p peer.ID) { n.host.Unban(p) }

// Banned reports whether p is banned now.
func (n *Node) Banned(p peer.ID) bool { return n.host.Banned(p) }

// Remote returns the node's remote-call endpoint. With it the node is a
// remote.Node: F.At(node, peer).Call(ctx, x) calls F on peer.
func (n *Node) Remote() *remote.Endpoint { return n.remote }

// Services is the node's service layer as a program uses it: what a
// service.Manager does, without its lifecycle or its sandbox runtime, which
// the node owns.
type Services interface {
	// Publish adds a module, signs its descriptor and announces it.
	Publish(ctx context.Context, code io.Reader, opt service.PublishOptions) (*service.Descriptor, error)
	// Resolve finds the descriptor a name or CID stands for.
	Resolve(ctx context.Context, ref string) (*service.Descriptor, error)
	// Find asks this node's peers for services matching query.
	Find(ctx context.Context, query string) ([]service.Info, error)
	// Known lists the catalogue's services matching query.
	Known(query string) []service.Info
	// Runs lists the latest runs this node did for callers.
	Runs() []service.Record
	// Calls lists the latest calls this node made.
	Calls() []service.CallRecord
	// Service returns the service or pipeline ref names, ready to call.
	Service(ref string) *service.Pipeline
	// Computes reports whether this node runs modules.
	Computes() bool
}

var _ Services = (*service.Manager)(nil)

// Services returns the node's service layer: publish, find, run.
func (n *Node) Services() Services { return n.svc }

// Service returns the service (or pipeline, "a | b") ref names, ready to
// call: node.Service("wc").Call(ctx, text).
func (n *Node) Service(ref string) *service.Pipeline { return n.svc.Service(ref) }

// Metrics returns the registry holding the node's Prometheus metrics.
func (n *Node) Metrics() *prometheus.Registry { return n.reg }

// DataDir returns the node's data dir, empty for an in-memory node.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Addrs returns the node's full multiaddrs (with /p2p/<peer ID>), the ones
// to give another node to connect or bootstrap to.
func (n *Node) Addrs() []ma.Multiaddr {
	if len(n.host.Addrs()) == 0 {
		return nil
	}
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return out
}

// AddrInfo returns the node's peer ID with its listen addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Connect dials the peer at addr, a multiaddr ending in /p2p/<peer ID>, and
// returns its ID once connected. A circuit address (…/p2p/<relay>/p2p-circuit/p2p/<peer>)
// gives a relayed connection, which the relay limits in time and bytes.
func (n *Node) Connect(ctx context.Context, addr string) (peer.ID, error) {
	ais, err := ParseAddrInfos([]string{addr})
	if err != nil {
		return "", err
	}
	ai := ais[0]
	if ai.ID == n.ID() {
		return "", fmt.Errorf("connect %s: that is this node", ai.ID)
	}
	if err := n.host.Connect(network.WithAllowLimitedConn(ctx, "nube connect"), ai); err != nil {
		return "", fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return ai.ID, nil
}

// Ping measures the round-trip time to p, finding and dialling it first if
// need be.
func (n *Node) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	if p == n.ID() {
		return 0, fmt.Errorf("ping %s: that is this node", p)
	}
	if c := n.host.Network().Connectedness(p); c != network.Connected && c != network.Limited && len(n.host.Peerstore().Addrs(p)) == 0 {
		if _, err := n.host.FindPeer(ctx, p); err != nil {
			return 0, err
		}
	}
	return n.host.Ping(ctx, p)
}

// FindPeer returns p's addresses, looking it up in the DHT when it is not
// connected.
func (n *Node) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	return n.host.FindPeer(ctx, p)
}

// PeerInfo describes a connected peer.
type PeerInfo struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Direction string   `json:"direction"` // "inbound" or "outbound"
	Relayed   bool     `json:"relayed"`   // the connection goes through a relay
	LatencyMS float64  `json:"latency_ms,omitempty"`
	Agent     string   `json:"agent,omitempty"`
}

// Peers lists the connected peers, sorted by ID.
func (n *Node) Peers() []PeerInfo {
	net := n.host.Network()
	ps := n.host.Peerstore()
	var out []PeerInfo
	for _, p := range net.Peers() {
		conns := net.ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		pi := PeerInfo{ID: p.String(), Direction: conns[0].Stat().Direction.String()}
		pi.Direction = strings.ToLower(pi.Direction)
		for _, c := range conns {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
			if p2p.IsRelayed(c) || c.Stat().Limited {
				pi.Relayed = true
			}
		}
		if l := ps.LatencyEWMA(p); l > 0 {
			pi.LatencyMS = float64(l.Microseconds()) / 1000
		}
		if v, err := ps.Get(p, "AgentVersion"); err == nil {
			pi.Agent, _ = v.(string)
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Status is a summary of the node's state.
type Status struct {
	ID           string   `json:"id"`
	UserID       string   `json:"user_id"`
	Version      string   `json:"version"`
	Addrs        []string `json:"addrs"`
	Peers        int      `json:"peers"`
	RoutingTable int      `json:"routing_table"` // DHT routing table size
	Reachability string   `json:"reachability"`  // Unknown, Public or Private
	RelayService bool     `json:"relay_service"`
	MDNS         bool     `json:"mdns"`
	Network      string   `json:"network"` // the nube network joined
	// IPFSRoutingTable is the size of the IPFS DHT's routing table; -1
	// when the node is off the IPFS DHT.
	IPFSRoutingTable int       `json:"ipfs_routing_table"`
	DataDir          string    `json:"data_dir"`
	StartedAt        time.Time `json:"started_at"`
	Uptime           string    `json:"uptime"`
}

// Status returns a summary of the node's state.
func (n *Node) Status() Status {
	st := Status{
		ID:               n.ID().String(),
		UserID:           n.userID.String(),
		Version:          Version,
		Peers:            len(n.host.Network().Peers()),
		RoutingTable:     n.host.DHT.RoutingTable().Size(),
		Reachability:     n.host.Reachability().String(),
		RelayService:     n.host.RelayService(),
		MDNS:             !n.cfg.NoMDNS,
		IPFSRoutingTable: -1,
		Network:          cmp.Or(n.cfg.Network, p2p.DefaultNetwork),
		DataDir:          n.cfg.DataDir,
		StartedAt:        n.started.UTC(),
		Uptime:           time.Since(n.started).Round(time.Second).String(),
	}
	if n.host.IPFS != nil {
		st.IPFSRoutingTable = n.host.IPFS.RoutingTable().Size()
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	return st
}

// WaitPeers blocks until the node is connected to at least k peers or ctx
// ends.
func (n *Node) WaitPeers(ctx context.Context, k int) error {
	return n.host.WaitPeers(ctx, k)
}

// Close stops the node and everything it started, saves its peer book and
// releases the data dir. It is safe to call more than once.
func (n *Node) Close() error {
	var err error
	if n.spaces != nil {
		err = n.spaces.Close()
	}
	if n.svc != nil {
		err = errors.Join(err, n.svc.Close())
	}
	if n.ledger != nil {
		err = errors.Join(err, n.ledger.Close())
	}
	if n.groups != nil {
		err = errors.Join(err, n.groups.Close())
	}
	if n.remote != nil {
		err = errors.Join(err, n.remote.Close())
	}
	if n.content != nil {
		err = errors.Join(err, n.content.Close())
	}
	if n.host != nil {
		err = errors.Join(err, n.host.Close())
	}
	if n.store != nil {
		err = errors.Join(err, n.store.Close())
	}
	if n.lock != nil {
		err = errors.Join(err, n.lock.Unlock())
	}
	return err
}

// Traffic is what the node has sent and received over libp2p: bytes since
// it started, and rates over the last seconds, in all and per protocol.
type Traffic struct {
	In        int64             `json:"in"`
	Out       int64             `json:"out"`
	RateIn    float64           `json:"rate_in"`  // bytes per second
	RateOut   float64           `json:"rate_out"` // bytes per second
	Protocols []ProtocolTraffic `json:"protocols"`
}

// ProtocolTraffic is one protocol's share of the Traffic.
type ProtocolTraffic struct {
	Protocol string  `json:"protocol"`
	In       int64   `json:"in"`
	Out      int64   `json:"out"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
}

// Traffic returns the node's traffic, protocols sorted by bytes moved.
func (n *Node) Traffic() Traffic {
	total, by := n.host.Bandwidth()
	t := Traffic{In: total.TotalIn, Out: total.TotalOut, RateIn: total.RateIn, RateOut: total.RateOut,
		Protocols: make([]ProtocolTraffic, 0, len(by))}
	for p, s := range by {
		t.Protocols = append(t.Protocols, ProtocolTraffic{Protocol: string(p), In: s.TotalIn, Out: s.TotalOut, RateIn: s.RateIn, RateOut: s.RateOut})
	}
	slices.SortFunc(t.Protocols, func(a, b ProtocolTraffic) int {
		return cmp.Compare(b.In+b.Out, a.In+a.Out)
	})
	return t
}
