// Package nube is the library a program imports to run a nube node: Start
// a Node with a Config whose zero value works, use it, Close it.
//
// A Node wires the layers below it (ARCHITECTURE.md has the map) and gives
// each through one accessor returning an interface of what a program does
// with it:
//
//	node, err := nube.Start(ctx, nube.Config{})
//	if err != nil { ... }
//	defer node.Close()
//
//	c, err := node.Content().Add(ctx, file, content.AddOptions{}) // files, directories, pins, GC
//	out, err := node.Services().Service("wc").Call(ctx, text)     // WebAssembly services
//	g, err := node.Groups().Open(ctx, "jobs", group.Options{})    // replicated groups
//	sp, err := node.Spaces().Create(ctx, "notes", space.Policy{Local: true}) // user-owned data
//	acct, err := node.Ledger().Account(ctx, "")                    // credit
//	pub, err := node.Names().Publish(ctx, "", c.String(), names.PublishOptions{}) // IPNS names
//	res, err := wordCount.At(node, peer).Call(ctx, text)           // typed remote calls (Remote)
//
// Three shortcuts cover the commonest calls: Add and Get (store a file,
// read one by CID) and Service (a service ready to call). What lies under
// the layers (the libp2p host, the DHTs, the metrics registry, the user's
// signer, bans) is behind Sys, which is not a stable API.
//
// Each layer keeps its state in a directory of its own in Config.DataDir
// (BlocksDir, GroupsDir, LedgerDir, ServicesDir, SpacesDir, HostDir,
// NamesDir);
// the node's keys and lock stay at its top.
package nube

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/lockfile"
	"github.com/nubecloud/nube/internal/p2p"
	"github.com/nubecloud/nube/invite"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
	"github.com/nubecloud/nube/wasm"
)

// Version is this build's nube version.
const Version = "0.1.0-dev"

// DefaultPort is the TCP and UDP port a node listens on when Config gives
// no listen addresses. If it is taken (say, by a second node on the same
// machine), the node falls back to a port the OS picks.
const DefaultPort = 4040

// Files in a data dir. The layers' directories are named beside their
// starters (layers.go).
const (
	NodeKeyFile = "node.key"
	UserKeyFile = "user.key"
	LockFile    = "lock"
	// PeerBookFile is the p2p host's peer book, in HostDir.
	PeerBookFile = "peers.json"
)

// Config configures a Node. The zero value is a working node: an ephemeral
// identity, in-memory stores, listening on DefaultPort on every interface,
// discovering peers by mDNS and the DHT.
type Config struct {
	// DataDir holds the node's keys and lock, and a directory per layer
	// (BlocksDir, GroupsDir, …) for its state. Empty means nothing is written to disk: a fresh identity
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
	// DNSLinks maps domains to the paths their DNSLink names
	// ("example.com": "/ipfs/CID"), looked up before DNS: for tests and
	// offline use (IPFS_NS_MAP, as in kubo, is read too). See package
	// names.
	DNSLinks map[string]string
	// SiteDebounce is how long after a change to a space published as a
	// site (Names().PublishSpace) it is published again: a burst of puts
	// makes one snapshot. Zero means DefaultSiteDebounce (2 s).
	SiteDebounce time.Duration
	// RelayService makes this node a circuit relay for peers that cannot
	// be reached directly. Turn it on only on a node others can dial.
	RelayService bool
	// NoPortMap stops the node from asking the router for a port mapping
	// (UPnP/NAT-PMP).
	NoPortMap bool
	// MaxMemory bounds the memory peers' connections and streams may
	// reserve. Zero means 512 MiB.
	MaxMemory int64
	// CacheMemory bounds the values all the node's caches keep (package
	// cache). Zero means cache.DefaultNodeBytes (256 MiB).
	CacheMemory int64
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
	// JoinUser is an invite (the text 'nube user invite' prints, see
	// package invite) that makes a new node one of another node's user's
	// nodes: at start the node dials the inviter, proves the invite's
	// secret and keeps the cert it gets in the data dir (UserCertFile),
	// with no copy of the user key. Such a node serves and is served as
	// its user's, but cannot sign as the user (ErrNoUserKey). It is for a
	// data dir with no user key yet; once joined, it is ignored.
	JoinUser string
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
	case c.CacheMemory < 0:
		return fmt.Errorf("Config.CacheMemory is negative (%d): want 0 for the default, or more", c.CacheMemory)
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
	if c.JoinUser != "" {
		if _, err := invite.Parse(c.JoinUser); err != nil {
			return fmt.Errorf("Config.JoinUser: %w", err)
		}
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
	userKey ed25519.PrivateKey // nil on a node that joined its user by invite
	userID  peer.ID
	signer  crypto.Signer  // userKey, or a keyless stand-in naming the user (users.go)
	cert    *nodecert.Cert // the user's cert of this node
	joined  *joinedCert    // set on a node that joined its user by invite
	// pendingJoin is Config.JoinUser's invite until the user layer spends it.
	pendingJoin *invite.Invite
	invites     *invite.Book
	nodes       *nodeBook
	unserveUser []func()
	lock        *lockfile.Lock
	reg         *prometheus.Registry
	store       *content.Store
	content     *content.Service
	remote      *remote.Endpoint
	svc         *service.Manager
	groups      *group.Manager
	spaces      *space.Manager
	topics      *topic.Manager
	names       *names.Manager
	caches      *cache.Manager
	sites       *sites
	jobs        *job.Manager
	ledger      *ledger.Manager
	nodeKey     ed25519.PrivateKey
	up          int // layers begun (layers.go)
	started     time.Time
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

// openDataDir creates and locks the data dir and loads (or creates) the two
// keys in it. Without a data dir both keys are fresh.
func (n *Node) openDataDir() (ed25519.PrivateKey, error) {
	dir := n.cfg.DataDir
	if dir == "" {
		return identity.Generate(), n.loadUser("")
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
	return nodeKey, n.loadUser(dir)
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

// Remote returns the node's remote-call endpoint, the remote layer: with
// it the node is a remote.Node, so F.At(node, peer).Call(ctx, x) calls F
// on peer.
func (n *Node) Remote() *remote.Endpoint { return n.remote }

// Config returns the Config the node was started with, defaults not
// filled in: its data dir, its offer, whether it holds others' spaces.
func (n *Node) Config() Config { return n.cfg }

// Addrs returns the node's full multiaddrs (with /p2p/<peer ID>), the ones
// to give another node to connect or bootstrap to.
func (n *Node) Addrs() []ma.Multiaddr {
	if len(n.host.Addrs()) == 0 {
		return nil
	}
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return out
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
			// Two connections from one address (a simultaneous dial)
			// show it once.
			if a := c.RemoteMultiaddr().String(); !slices.Contains(pi.Addrs, a) {
				pi.Addrs = append(pi.Addrs, a)
			}
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

// Close stops the node and every layer it started, in reverse order,
// saves its peer book and releases the data dir. It is safe to call more
// than once.
func (n *Node) Close() error { return n.closeLayers() }
