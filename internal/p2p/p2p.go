// Package p2p is nube's network layer: a libp2p host with the transports,
// security, limits and discovery every node needs, and nothing nube-specific
// above the wire.
//
// A Host listens on TCP and QUIC, secures connections with Noise or TLS,
// multiplexes them with yamux, and bounds what peers can make it spend with
// a resource manager and a connection manager. It finds peers with zero
// configuration: mDNS on the local network, a Kademlia DHT under the /nube
// prefix (a network of its own, not the IPFS one), bootstrap peers it is
// given, and the peers it saw in earlier runs, whose addresses it keeps in a
// peer book on disk. For reachability it runs AutoNAT, the circuit relay v2
// client with auto-relay, and hole punching (DCUtR); it can offer a relay
// service itself.
package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
)

// DHTPrefix is the protocol prefix of nube's DHT. It keeps a nube network
// apart from the IPFS Amino DHT while content CIDs stay IPFS-compatible.
// A network other than the default has DHTPrefix/name.
const DHTPrefix protocol.ID = "/nube"

// MDNSService is the mDNS service name nube nodes announce and browse, so
// that a nube node finds other nube nodes on the LAN and not every libp2p
// program there.
const MDNSService = "_nube._udp"

// relayHop is the circuit relay v2 protocol that relays speak; a peer that
// supports it is a relay candidate for auto-relay.
const relayHop protocol.ID = "/libp2p/circuit/relay/0.2.0/hop"

// relayCandidateWait is how long one call of the auto-relay peer source
// keeps offering relays as they are identified.
const relayCandidateWait = time.Minute

// Config says how to build a Host. Only Key is required.
type Config struct {
	// Key is the node's private key; its peer ID derives from it.
	Key crypto.PrivKey
	// ListenAddrs are the multiaddrs to listen on. Empty means no listener:
	// the node dials out, counts itself unreachable, and takes a relay
	// reservation as soon as it meets a relay, so that others reach it
	// through the relay.
	ListenAddrs []ma.Multiaddr
	// Bootstrap peers are dialled at start and seed the DHT.
	Bootstrap []peer.AddrInfo
	// IPFS joins the IPFS public DHT (Amino, /ipfs/kad/1.0.0) beside
	// nube's own, as a client: the node looks content up there and
	// announces what it provides, but answers no DHT queries.
	IPFS bool
	// IPFSBootstrap seeds the IPFS DHT. Nil means the public network's
	// bootstrap peers (kubo's list); tests give a private network's.
	IPFSBootstrap []peer.AddrInfo
	// Network names the nube network the node joins: it has a DHT of its
	// own and, with IPFS, meets its other nodes through a rendezvous on
	// the IPFS DHT. Empty means DefaultNetwork.
	Network string
	// MDNS turns on discovery of nube nodes on the local network.
	MDNS bool
	// RelayService makes the node relay connections for peers that cannot
	// be reached directly. Only useful on a node others can reach.
	RelayService bool
	// PortMap asks the router for a port mapping (UPnP / NAT-PMP). It
	// multicasts on the LAN, so tests leave it off.
	PortMap bool
	// PeerBook is the file in which the addresses of peers seen are kept
	// and from which they are re-dialled at start. Empty keeps them in
	// memory only.
	PeerBook string
	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections it trims back to ConnLow. Zero means 64 and 192.
	ConnLow, ConnHigh int
	// MaxMemory bounds the memory the resource manager lets all peers'
	// connections and streams reserve. Zero means 512 MiB.
	MaxMemory int64
	// MaxFD bounds the file descriptors libp2p may use. Zero means 512.
	MaxFD int
	// Dial, if set, opens every outgoing TCP connection in place of the
	// system's dialer, without SO_REUSEPORT (so TCP hole punching is
	// lost). Nil dials as usual.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Validators adds namespaces to nube's DHT, each checked by its
	// validator (beside the DHT's own "pk" and "ipns"), so upper layers
	// can keep records of their own there. Nil adds none.
	Validators map[string]record.Validator
	// ProtocolStreams raises the resource manager's cap on the streams one
	// peer may have open on a protocol (64 inbound by default), for
	// protocols whose own policy decides how many it takes.
	ProtocolStreams map[protocol.ID]int
	// Registerer receives the libp2p and resource-manager metrics. Nil
	// means no metrics are registered.
	Registerer prometheus.Registerer
	// Logger receives the layer's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
}

// Validate reports a missing or nonsensical field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Key == nil:
		return errors.New("p2p: Config.Key is required")
	case c.ConnLow < 0 || c.ConnHigh < 0:
		return fmt.Errorf("p2p: Config.ConnLow and ConnHigh (%d, %d) must not be negative", c.ConnLow, c.ConnHigh)
	case c.ConnHigh > 0 && c.ConnLow > c.ConnHigh:
		return fmt.Errorf("p2p: Config.ConnLow (%d) is above ConnHigh (%d)", c.ConnLow, c.ConnHigh)
	case c.MaxMemory < 0:
		return fmt.Errorf("p2p: Config.MaxMemory is negative (%d): want 0 for the default, or more", c.MaxMemory)
	case c.MaxFD < 0:
		return fmt.Errorf("p2p: Config.MaxFD is negative (%d): want 0 for the default, or more", c.MaxFD)
	}
	if c.Network != "" {
		if err := CheckNetwork(c.Network); err != nil {
			return fmt.Errorf("p2p: Config.Network: %w", err)
		}
	}
	for p, n := range c.ProtocolStreams {
		if n < 0 {
			return fmt.Errorf("p2p: Config.ProtocolStreams[%s] is negative (%d)", p, n)
		}
	}
	return nil
}

// Host is a running libp2p node. Its zero value is not usable; build it
// with New and stop it with Close.
type Host struct {
	host.Host
	// DHT is the node's Kademlia DHT (mode auto, server while reachability
	// is unknown).
	DHT *dht.IpfsDHT
	// IPFS is the node's client of the IPFS public DHT; nil unless
	// Config.IPFS.
	IPFS *dht.IpfsDHT

	log   *slog.Logger
	book  *peerBook
	mdns  mdns.Service
	relay *relayv2.Relay
	bans  banList
	bw    *metrics.BandwidthCounter

	built []io.Closer   // parts made before the libp2p host
	ready chan struct{} // closed once Host is set

	mu           sync.Mutex
	reachability network.Reachability
	closing      bool            // set by Close under mu; no goroutine starts after
	redials      map[peer.ID]int // redials after a failed identify, since redialsSince
	redialsSince time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New builds a Host, starts listening and starts discovery. It returns once
// the host listens; connecting to bootstrap and known peers goes on in the
// background.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkFree(cfg.ListenAddrs); err != nil {
		return nil, err
	}
	h := &Host{log: cfg.Logger.With("layer", "p2p"), ready: make(chan struct{}), bw: metrics.NewBandwidthCounter()}
	h.ctx, h.cancel = context.WithCancel(context.Background())

	book, err := openPeerBook(cfg.PeerBook, h.log)
	if err != nil {
		h.cancel()
		return nil, err
	}
	h.book = book

	opts, err := h.hostOptions(cfg)
	if err != nil {
		h.cancel()
		return nil, err
	}
	lh, err := libp2p.New(opts...)
	if err != nil {
		h.closeOnFail()
		return nil, listenError(err, cfg.ListenAddrs)
	}
	h.Host = lh
	close(h.ready)
	if err := checkListening(lh, cfg.ListenAddrs); err != nil {
		h.Close()
		return nil, err
	}

	if err := h.startServices(cfg); err != nil {
		h.Close()
		return nil, err
	}
	h.connectInitial(cfg.Bootstrap)
	return h, nil
}

// tcpOptions are the TCP transport's options: Config.Dial as its only
// dialer, if set.
func (h *Host) tcpOptions(cfg Config) []any {
	if cfg.Dial == nil {
		return nil
	}
	return []any{tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) {
		return dialFunc(cfg.Dial), nil
	})}
}

// dialFunc is a tcp.ContextDialer made of a function.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return f(ctx, network, address)
}

func (h *Host) hostOptions(cfg Config) ([]libp2p.Option, error) {
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low <= 0 {
		low = 64
	}
	if high <= low {
		high = 3 * low
	}
	cm, err := connmgr.NewConnManager(low, high, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	rm, err := resourceManager(cfg)
	if err != nil {
		cm.Close()
		return nil, err
	}
	// libp2p closes these with the host; if building the host fails,
	// closeOnFail does.
	h.built = []io.Closer{cm, rm}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Key),
		libp2p.ListenAddrs(cfg.ListenAddrs...),
		// SO_REUSEPORT, so that TCP dials leave from the listen port:
		// peers then see one stable address for this node behind a NAT,
		// which is what TCP hole punching needs. A second node on this
		// machine cannot share the port through it: checkFree binds every
		// fixed listen port without SO_REUSEPORT before the host starts,
		// which fails while this node holds it.
		libp2p.Transport(tcp.NewTCPTransport, h.tcpOptions(cfg)...),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(&h.bans),
		libp2p.BandwidthReporter(h.bw),
		libp2p.UserAgent("nube"),
		// libp2p is assembled with fx, which logs its own start-up at
		// error level to the default logger; our errors say enough.
		libp2p.WithFxOption(fx.NopLogger),
		libp2p.Ping(true),
		// Reachability: find out whether we are reachable (AutoNAT, and
		// serve that check to others), use relays when we are not, and
		// upgrade relayed connections to direct ones by hole punching.
		libp2p.EnableAutoNATv2(),
		libp2p.EnableRelay(),
		// One relay candidate is enough to take a reservation: nube
		// networks are often a handful of machines with a single relay,
		// and libp2p's default (four candidates, else wait three
		// minutes) would leave a node unreachable that long.
		libp2p.EnableAutoRelayWithPeerSource(h.relayCandidates, autorelay.WithMinCandidates(1)),
		libp2p.EnableHolePunching(),
	}
	if len(cfg.ListenAddrs) == 0 {
		// Nobody can dial us, so we are private by definition. (And no
		// AutoNAT service: with reachability forced, libp2p never closes
		// the service's dialer, leaking its goroutines.)
		opts = append(opts, libp2p.ForceReachabilityPrivate())
		h.reachability = network.ReachabilityPrivate
	} else {
		opts = append(opts, libp2p.EnableNATService())
	}
	if cfg.PortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	return opts, nil
}

func (h *Host) closeOnFail() {
	for _, c := range h.built {
		c.Close()
	}
	h.cancel()
}

// resourceManager builds libp2p's resource manager with limits scaled to
// the memory and file descriptors we allow, rather than to the machine, so
// that twenty nodes in one test process do not each claim the whole box.
func resourceManager(cfg Config) (network.ResourceManager, error) {
	mem, fd := cfg.MaxMemory, cfg.MaxFD
	if mem <= 0 {
		mem = 512 << 20
	}
	if fd <= 0 {
		fd = 512
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for proto, n := range cfg.ProtocolStreams {
		limits.AddProtocolPeerLimit(proto,
			rcmgr.BaseLimit{StreamsInbound: n, StreamsOutbound: n, Streams: 2 * n, Memory: 64 << 20},
			rcmgr.BaseLimitIncrease{})
	}
	var ropts []rcmgr.Option
	if cfg.Registerer != nil {
		rcmgr.MustRegisterWith(cfg.Registerer)
		str, err := rcmgr.NewStatsTraceReporter()
		if err != nil {
			return nil, fmt.Errorf("p2p: resource manager metrics: %w", err)
		}
		ropts = append(ropts, rcmgr.WithTraceReporter(str))
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(mem, fd)), ropts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return rm, nil
}

func (h *Host) startServices(cfg Config) error {
	opts := []dht.Option{
		dht.ProtocolPrefix(dhtPrefix(cfg.Network)),
		dht.Mode(dht.ModeAutoServer),
		dht.Datastore(dssync.MutexWrap(datastore.NewMapDatastore())),
		dht.BootstrapPeersFunc(h.bootstrapPeers(cfg.Bootstrap)),
	}
	for ns, v := range cfg.Validators {
		opts = append(opts, dht.NamespacedValidator(ns, v))
	}
	kad, err := dht.New(h.Host, opts...)
	if err != nil {
		return fmt.Errorf("p2p: dht: %w", err)
	}
	h.DHT = kad

	if cfg.IPFS {
		boot := cfg.IPFSBootstrap
		if boot == nil {
			boot = dht.GetDefaultBootstrapPeerAddrInfos()
		}
		ipfs, err := dht.New(h.Host,
			dht.Mode(dht.ModeClient),
			dht.Datastore(dssync.MutexWrap(datastore.NewMapDatastore())),
			dht.BootstrapPeers(boot...),
		)
		if err != nil {
			return fmt.Errorf("p2p: IPFS dht: %w", err)
		}
		h.IPFS = ipfs
		h.joinDHT(ipfs, boot)
		network := cfg.Network
		if network == "" {
			network = DefaultNetwork
		}
		h.wg.Add(1)
		go h.rendezvous(network)
	}

	if cfg.RelayService {
		// A relay's connections carry whole calls and fetches, not only
		// the few kilobytes that coordinate a hole punch (libp2p's default:
		// 128 KiB and 2 minutes per connection): between two nodes that
		// cannot punch through their NATs (a symmetric NAT on either
		// side), the relay is the only way. Such a connection is then not
		// "limited", so every protocol runs over it; the relay's resource
		// manager and its circuit counts still bound what it carries.
		res := relayv2.DefaultResources()
		res.Limit = nil
		res.BufferSize = 32 << 10
		r, err := relayv2.New(h.Host, relayv2.WithACL(reservationBook{h}), relayv2.WithResources(res))
		if err != nil {
			return fmt.Errorf("p2p: relay service: %w", err)
		}
		h.relay = r
	}

	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtPeerIdentificationFailed),
	})
	if err != nil {
		return fmt.Errorf("p2p: subscribe to events: %w", err)
	}
	h.wg.Add(1)
	go h.watch(sub)
	h.Network().Notify(&network.NotifyBundle{ConnectedF: h.connected})

	if cfg.MDNS {
		h.mdns = mdns.NewMdnsService(h.Host, MDNSService, mdnsNotifee{h})
		if err := h.mdns.Start(); err != nil {
			// A machine with no multicast interface is not a reason to
			// refuse to start: the DHT and bootstrap still work.
			h.log.Warn("mDNS discovery unavailable (no multicast interface?): peers are found through the DHT and bootstrap peers only", "err", err)
			h.mdns = nil
		}
	}
	return nil
}

// bootstrapPeers gives the DHT the configured bootstrap peers and, after
// them, the peers we knew in earlier runs, for when its routing table runs
// low.
func (h *Host) bootstrapPeers(static []peer.AddrInfo) func() []peer.AddrInfo {
	return func() []peer.AddrInfo {
		return append(append([]peer.AddrInfo(nil), static...), h.book.list(h.ID())...)
	}
}

// connectInitial dials the bootstrap peers and the peer book in the
// background, then bootstraps the DHT. (The IPFS DHT joins its own
// bootstrap peers as it starts.)
func (h *Host) connectInitial(bootstrap []peer.AddrInfo) {
	h.joinDHT(h.DHT, h.bootstrapPeers(bootstrap)())
}

// joinDHT dials peers in the background, then bootstraps kad.
func (h *Host) joinDHT(kad *dht.IpfsDHT, peers []peer.AddrInfo) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, ai := range peers {
			if ai.ID == h.ID() {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(h.ctx, 15*time.Second)
				defer cancel()
				if err := h.Host.Connect(ctx, ai); err != nil {
					h.log.Debug("initial dial failed", "peer", ai.ID, "err", err)
				}
			}()
		}
		wg.Wait()
		if h.ctx.Err() == nil {
			if err := kad.Bootstrap(h.ctx); err != nil {
				h.log.Warn("dht bootstrap", "err", err)
			}
		}
	}()
}

// watch follows connection and reachability events: connected peers go
// into the peer book, which is saved now and then and at Close.
func (h *Host) watch(sub event.Subscription) {
	defer h.wg.Done()
	defer sub.Close()
	save := time.NewTicker(30 * time.Second)
	defer save.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-save.C:
			h.saveBook()
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := ev.(type) {
			case event.EvtPeerConnectednessChanged:
				if e.Connectedness == network.Connected {
					h.book.saw(e.Peer, h.Peerstore().Addrs(e.Peer))
				}
			case event.EvtLocalReachabilityChanged:
				h.mu.Lock()
				h.reachability = e.Reachability
				h.mu.Unlock()
				h.log.Info("reachability changed", "reachability", e.Reachability.String())
			case event.EvtPeerIdentificationFailed:
				h.spawn(func() { h.reidentify(e.Peer) })
			}
		}
	}
}

// reidentify redials a peer whose identify failed on a connection this
// node dialled. libp2p identifies a connection once and never again, and
// the DHT takes in only peers whose protocols identify learnt: a peer
// whose one identify failed (a stream reset, a timeout under load) would
// stay out of the routing table for as long as the connection lasts. A
// new connection is identified afresh. Connections the peer dialled are
// left alone (this node may not be able to dial back), and a peer is
// redialled at most maxReidentify times an hour.
func (h *Host) reidentify(p peer.ID) {
	t := time.NewTimer(reidentifyGrace)
	defer t.Stop()
	select {
	case <-h.ctx.Done():
		return
	case <-t.C:
	}
	if protos, _ := h.Peerstore().GetProtocols(p); len(protos) > 0 {
		return // another connection's identify succeeded
	}
	var outbound []network.Conn
	for _, c := range h.Network().ConnsToPeer(p) {
		if c.Stat().Direction == network.DirOutbound {
			outbound = append(outbound, c)
		}
	}
	if len(outbound) == 0 || !h.reidentifyAllowed(p) {
		return
	}
	h.log.Debug("identify failed: dialling the peer again", "peer", p)
	for _, c := range outbound {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(h.ctx, 15*time.Second)
	defer cancel()
	if err := h.Host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		h.log.Debug("redial after a failed identify", "peer", p, "err", err)
	}
}

// reidentifyAllowed counts a redial of p and reports whether it is within
// maxReidentify this hour.
func (h *Host) reidentifyAllowed(p peer.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	if h.redials == nil || now.Sub(h.redialsSince) > time.Hour {
		h.redials, h.redialsSince = map[peer.ID]int{}, now
	}
	h.redials[p]++
	return h.redials[p] <= maxReidentify
}

const (
	// reidentifyGrace lets a peer's other connections be identified
	// before a failed identify counts.
	reidentifyGrace = time.Second
	maxReidentify   = 3
)

func (h *Host) saveBook() {
	// Refresh addresses of peers still connected: identify may have
	// taught us better ones since they connected.
	for _, p := range h.Network().Peers() {
		h.book.saw(p, h.Peerstore().Addrs(p))
	}
	if err := h.book.save(); err != nil {
		h.log.Warn("save peer book", "err", err)
	}
}

// reservationBook is the relay's ACL: it lets every peer reserve and
// connect (the relay's resource limits still apply) and, when a peer
// reserves, records the circuit addresses through this relay at which
// others can reach it. The peer also announces them by identify push, but
// that push is sent once, and a relay that missed it could not tell a DHT
// lookup where the peer is.
type reservationBook struct{ h *Host }

func (b reservationBook) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	var circuits []ma.Multiaddr
	for _, a := range b.h.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue // not a relay's address to relay through
		}
		c, err := ma.NewMultiaddr("/p2p/" + b.h.ID().String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		circuits = append(circuits, a.Encapsulate(c))
	}
	b.h.Peerstore().AddAddrs(p, circuits, reservationTTL)
	return true
}

func (reservationBook) AllowConnect(peer.ID, ma.Multiaddr, peer.ID) bool { return true }

// reservationTTL is how long a relay keeps the circuit addresses of a peer
// that reserved: relay v2's reservations last an hour.
const reservationTTL = time.Hour

// relayCandidates is auto-relay's source of relays: the connected peers that
// offer the relay hop protocol, then, for up to relayCandidateWait, each
// such peer as soon as identify reveals it, so that a node that needs a
// relay takes a reservation the moment it meets one rather than at
// auto-relay's next poll.
func (h *Host) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	started := h.spawn(func() {
		defer close(out)
		// Auto-relay may ask while libp2p.New is still building the host.
		select {
		case <-h.ready:
		case <-ctx.Done():
			return
		case <-h.ctx.Done():
			return
		}
		// Subscribe before listing the connected peers, so that a relay
		// identified in between is not missed.
		sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
		if err != nil {
			return
		}
		defer sub.Close()
		sent := make(map[peer.ID]bool)
		offer := func(p peer.ID) bool {
			if sent[p] || p == h.ID() {
				return true
			}
			if ok, _ := h.Peerstore().SupportsProtocols(p, relayHop); len(ok) == 0 {
				return true
			}
			sent[p] = true
			select {
			case out <- h.Peerstore().PeerInfo(p):
			case <-ctx.Done():
				return false
			case <-h.ctx.Done():
				return false
			}
			return len(sent) < num
		}
		for _, p := range h.Network().Peers() {
			if !offer(p) {
				return
			}
		}
		// Then keep offering relays as they are identified, for a while:
		// auto-relay asks again later if it still lacks candidates.
		wait := time.NewTimer(relayCandidateWait)
		defer wait.Stop()
		for {
			select {
			case e, ok := <-sub.Out():
				if !ok || !offer(e.(event.EvtPeerIdentificationCompleted).Peer) {
					return
				}
			case <-wait.C:
				return
			case <-ctx.Done():
				return
			case <-h.ctx.Done():
				return
			}
		}
	})
	if !started {
		close(out)
	}
	return out
}

// spawn runs f on a goroutine that Close waits for, unless Close has begun
// (then it returns false and f does not run). Callbacks from libp2p and
// mDNS use it: they can arrive while the host is closing.
func (h *Host) spawn(f func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		f()
	}()
	return true
}

// Bandwidth returns the bytes sent and received, with their rates, in all
// and per protocol.
func (h *Host) Bandwidth() (metrics.Stats, map[protocol.ID]metrics.Stats) {
	return h.bw.GetBandwidthTotals(), h.bw.GetBandwidthByProtocol()
}

// Reachability reports what AutoNAT has concluded about whether others can
// dial us: unknown, public or private.
func (h *Host) Reachability() network.Reachability {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reachability
}

// RelayService reports whether this host relays for others.
func (h *Host) RelayService() bool { return h.relay != nil }

// Ping measures one round trip to p with the libp2p ping protocol (so any
// libp2p node answers), dialling p first if need be. It closes the stream
// gracefully and waits for p to close its side: p allows only two ping
// streams per peer, and pings in a row must not outrun its clean-up.
func (h *Host) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	rtt, err := h.ping(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("ping %s: %w", p, err)
	}
	return rtt, nil
}

func (h *Host) ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	// A relayed connection will do: a ping is a few bytes.
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "ping"), p, ping.ID)
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	out := make([]byte, ping.PingSize)
	if _, err := rand.Read(out); err != nil {
		s.Reset()
		return 0, err
	}
	in := make([]byte, ping.PingSize)
	start := time.Now()
	if _, err := s.Write(out); err != nil {
		s.Reset()
		return 0, ctxErr(ctx, err)
	}
	if _, err := io.ReadFull(s, in); err != nil {
		s.Reset()
		return 0, ctxErr(ctx, err)
	}
	rtt := time.Since(start)
	if !bytes.Equal(in, out) {
		s.Reset()
		return 0, errors.New("peer answered with other bytes than were sent")
	}
	h.Peerstore().RecordLatency(p, rtt)
	// Half-close and wait for the peer's end: its handler has then let go
	// of the stream.
	s.CloseWrite()
	if _, err := s.Read(in[:1]); err != io.EOF {
		s.Reset()
		return rtt, nil
	}
	s.Close()
	return rtt, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Connect connects to ai.ID with the addresses given and those known. If
// that fails, it asks the DHT for the peer's addresses now and tries them:
// a peer behind a NAT changes addresses (a relay reservation taken after
// it announced itself, a new port), and the addresses a provider record
// or an old peer book gave may no longer reach it.
//
// libp2p's dial worker for a peer hands every new request the
// connection it made earlier to an address, for as long as the worker
// runs (while any dial to that peer is under way, such as one to an
// address a NAT drops), even once that connection has closed. Connect
// sees it closed and dials again until a fresh dial is made, ctx ends, or
// staleDialsFor has passed (a peer that closes every connection at once
// is not waited for for ever).
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	start := time.Now()
	for {
		if err := h.connect(ctx, ai); err != nil {
			return err
		}
		switch h.Network().Connectedness(ai.ID) {
		case network.Connected, network.Limited:
			return nil
		}
		if time.Since(start) > staleDialsFor {
			return fmt.Errorf("connect to %s: every connection closed as soon as it was made, for %v", ai.ID, staleDialsFor)
		}
		t := time.NewTimer(staleDialPause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("connect to %s: the connection libp2p handed back had closed: %w", ai.ID, ctx.Err())
		case <-t.C:
		}
	}
}

// staleDialPause is how long Connect waits before dialling again when it
// was handed a closed connection, and staleDialsFor how long it keeps
// trying. A dial worker lives as long as its slowest dial: a QUIC
// handshake to an address a NAT drops gives up after about 5 s.
const (
	staleDialPause = 250 * time.Millisecond
	staleDialsFor  = 15 * time.Second
)

func (h *Host) connect(ctx context.Context, ai peer.AddrInfo) error {
	err := h.Host.Connect(ctx, ai)
	if err == nil || ctx.Err() != nil || h.DHT == nil || ai.ID == h.ID() {
		return err
	}
	found, ferr := h.FindPeer(ctx, ai.ID)
	if ferr != nil {
		return fmt.Errorf("%w (and a DHT lookup of the peer: %v)", err, ferr)
	}
	return h.Host.Connect(ctx, found)
}

// FindPeer returns p's addresses, asking the DHT if we are not connected.
func (h *Host) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	ai, err := h.DHT.FindPeer(ctx, p)
	if errors.Is(err, routing.ErrNotFound) && ctx.Err() == nil {
		// kad-dht finds a peer only if its lookup could query it as a DHT
		// server, or connected to it. A node behind a NAT serves no DHT,
		// and its relayed address may fail the lookup's one quick dial;
		// yet the peers connected to it answered the lookup with its
		// addresses, which are in the peerstore now: those are worth a
		// dial.
		if addrs := h.Peerstore().Addrs(p); len(addrs) > 0 {
			return peer.AddrInfo{ID: p, Addrs: addrs}, nil
		}
	}
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("find peer %s: %w", p, err)
	}
	if len(ai.Addrs) == 0 {
		// The DHT answers at once for a peer connected to us, with the
		// addresses we know. A connection that has just come in has
		// taught us none yet: identify on it will.
		if ids, ok := h.Host.(interface{ IDService() identify.IDService }); ok {
			for _, c := range h.Network().ConnsToPeer(p) {
				select {
				case <-ids.IDService().IdentifyWait(c):
				case <-ctx.Done():
					return peer.AddrInfo{}, fmt.Errorf("find peer %s: %w", p, ctx.Err())
				}
			}
		}
		ai.Addrs = h.Peerstore().Addrs(p)
	}
	return ai, nil
}

// Close stops discovery, saves the peer book and closes the libp2p host. It
// is safe to call more than once.
// relayedGrace is how long a peer's relayed connections stay open after a
// direct one to it opens: streams begun over the relay finish, new ones
// already take the direct connection.
const relayedGrace = 10 * time.Second

// connected closes a peer's relayed connections relayedGrace after a
// direct one opens (a hole punch succeeded, or the peer became
// reachable), if it is still open then, so that the relay carries nothing
// more for the two.
func (h *Host) connected(_ network.Network, c network.Conn) {
	if IsRelayed(c) {
		return
	}
	p := c.RemotePeer()
	if !slices.ContainsFunc(h.Network().ConnsToPeer(p), IsRelayed) {
		return
	}
	time.AfterFunc(relayedGrace, func() {
		if h.ctx.Err() != nil {
			return
		}
		conns := h.Network().ConnsToPeer(p)
		if !slices.ContainsFunc(conns, func(c network.Conn) bool { return !IsRelayed(c) }) {
			return
		}
		for _, c := range conns {
			if IsRelayed(c) {
				h.log.Debug("closing a relayed connection: a direct one is open", "peer", p)
				c.Close()
			}
		}
	})
}

// IsRelayed reports whether c goes through a relay (a circuit address).
// A nube relay's connections are not limited, so Stat().Limited does not
// tell.
func IsRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func (h *Host) Close() error {
	var err error
	h.once.Do(func() {
		if h.mdns != nil {
			h.mdns.Close()
		}
		h.mu.Lock()
		h.closing = true
		h.mu.Unlock()
		h.cancel()
		h.wg.Wait()
		if h.Host != nil {
			h.saveBook()
		}
		if h.relay != nil {
			h.relay.Close()
		}
		if h.DHT != nil {
			err = errors.Join(err, h.DHT.Close())
		}
		if h.IPFS != nil {
			err = errors.Join(err, h.IPFS.Close())
		}
		if h.Host != nil {
			err = errors.Join(err, h.Host.Close())
		}
	})
	return err
}

type mdnsNotifee struct{ h *Host }

// HandlePeerFound connects to a peer mDNS found, in the background: mDNS
// calls it on its own goroutine and must not be held up by a slow dial.
func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	h := n.h
	if ai.ID == h.ID() || h.ctx.Err() != nil {
		return
	}
	h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	if h.Network().Connectedness(ai.ID) == network.Connected {
		return
	}
	h.spawn(func() {
		ctx, cancel := context.WithTimeout(h.ctx, 15*time.Second)
		defer cancel()
		if err := h.Host.Connect(ctx, ai); err != nil {
			h.log.Debug("mdns dial failed", "peer", ai.ID, "err", err)
			return
		}
		h.log.Info("found peer on the local network", "peer", ai.ID)
	})
}

// WaitPeers blocks until at least k peers are connected or ctx ends. It
// waits on connection events, not on a timer.
func (h *Host) WaitPeers(ctx context.Context, k int) error {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	for len(h.Network().Peers()) < k {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d peers (have %d): %w", k, len(h.Network().Peers()), ctx.Err())
		case <-sub.Out():
		}
	}
	return nil
}

// WaitConnected blocks until the host has a connection to p or ctx ends.
func (h *Host) WaitConnected(ctx context.Context, p peer.ID) error {
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return err
	}
	defer sub.Close()
	for h.Network().Connectedness(p) != network.Connected {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for connection to %s: %w", p, ctx.Err())
		case <-sub.Out():
		}
	}
	return nil
}
