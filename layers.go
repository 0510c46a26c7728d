package nube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/lockfile"
	"github.com/nubecloud/nube/internal/p2p"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// Each layer owns one subdirectory of the data dir, named here; the
// facade's own files (keys, lock) and the daemon's (api, api.token,
// api.sock, sessions.json) stay at its top.
const (
	// HostDir holds the p2p host's peer book (PeerBookFile).
	HostDir = "p2p"
	// BlocksDir holds the content layer's block store.
	BlocksDir = "blocks"
	// GroupsDir holds the groups' raft logs and snapshots.
	GroupsDir = "groups"
	// LedgerDir holds ledger.json, the ledger's roster as this node
	// learned it.
	LedgerDir = "ledger"
	// ServicesDir holds the service catalogue (services.json) and the
	// compiled modules (wasm-cache/).
	ServicesDir = "services"
	// SpacesDir holds the heads and grants of the spaces the node keeps.
	SpacesDir = "spaces"
	// TopicsDir holds the topics' own state (consumers, dedup windows).
	TopicsDir = "topics"
	// NamesDir holds the IPNS keys (NAME.key) and what this node
	// published (published.json), which it republishes.
	NamesDir = "names"
)

// layer is one layer of a node: start builds it on the layers before it
// in the list, close stops it. Adding a layer is a field in Node, a
// starter and its close, and a line in layers.
type layer struct {
	name  string
	start func(ctx context.Context, n *Node) error
	close func(n *Node) error
}

// layers are started in order and closed in reverse.
// A close is called for a layer whose start failed too, so it checks
// what the start got as far as making.
var layers = []layer{
	{"data dir", startDataDir, func(n *Node) error { return closeIf(n.lock, (*lockfile.Lock).Unlock) }},
	{"block store", startStore, func(n *Node) error { return closeIf(n.store, (*content.Store).Close) }},
	{"p2p host", startHost, func(n *Node) error { return closeIf(n.host, (*p2p.Host).Close) }},
	{"content", startContent, func(n *Node) error { return closeIf(n.content, (*content.Service).Close) }},
	{"remote", startRemote, func(n *Node) error { return closeIf(n.remote, (*remote.Endpoint).Close) }},
	{"user", startUser, closeUser},
	{"groups", startGroups, func(n *Node) error { return closeIf(n.groups, (*group.Manager).Close) }},
	{"ledger", startLedger, func(n *Node) error { return closeIf(n.ledger, (*ledger.Manager).Close) }},
	{"services", startServices, func(n *Node) error { return closeIf(n.svc, (*service.Manager).Close) }},
	{"spaces", startSpaces, func(n *Node) error { return closeIf(n.spaces, (*space.Manager).Close) }},
	{"topics", startTopics, func(n *Node) error { return closeIf(n.topics, (*topic.Manager).Close) }},
	{"names", startNames, closeNames},
	{"jobs", startJobs, func(n *Node) error { return closeIf(n.jobs, (*job.Manager).Close) }},
	{"caches", startCaches, func(n *Node) error { return closeIf(n.caches, (*cache.Manager).Close) }},
}

func closeIf[T any](x *T, close func(*T) error) error {
	if x == nil {
		return nil
	}
	return close(x)
}

// start starts the layers in order. n.up counts those begun, the one that
// failed included, so that Close stops exactly them.
func (n *Node) start(ctx context.Context) error {
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		n.up++
		if err := l.start(ctx, n); err != nil {
			return fmt.Errorf("start %s: %w", l.name, err)
		}
	}
	return nil
}

// closeLayers stops the layers begun, in reverse. A second call finds
// none.
func (n *Node) closeLayers() error {
	var err error
	for ; n.up > 0; n.up-- {
		err = errors.Join(err, layers[n.up-1].close(n))
	}
	return err
}

// layerDir returns the layer's subdirectory of the data dir, created
// (0700), with the files an older nube kept at the data dir's top moved
// into it; "" (in memory) for a node without a data dir.
func (n *Node) layerDir(name string, old ...string) (string, error) {
	if n.cfg.DataDir == "" {
		return "", nil
	}
	dir := filepath.Join(n.cfg.DataDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	for _, f := range old {
		from, to := filepath.Join(n.cfg.DataDir, f), filepath.Join(dir, f)
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if _, err := os.Lstat(to); err == nil {
			// Both: the new one is the one this nube wrote last.
			n.log.Warn("data dir holds an old copy beside the new; the old one is left", "old", from, "new", to)
			continue
		}
		if err := os.Rename(from, to); err != nil {
			return "", fmt.Errorf("move %s into %s: %w", from, dir, err)
		}
		n.log.Info("moved into the layer's directory", "from", from, "to", to)
	}
	return dir, nil
}

// startDataDir creates and locks the data dir, loads (or creates) the
// keys, and makes the metrics registry.
func startDataDir(_ context.Context, n *Node) error {
	nodeKey, err := n.openDataDir()
	if err != nil {
		return err
	}
	n.nodeKey = nodeKey
	n.reg = prometheus.NewRegistry()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return nil
}

func startStore(_ context.Context, n *Node) error {
	dir, err := n.layerDir(BlocksDir)
	if err != nil {
		return err
	}
	n.store, err = content.OpenStore(dir)
	return err
}

func startHost(ctx context.Context, n *Node) error {
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
	libKey, err := identity.LibP2P(n.nodeKey)
	if err != nil {
		return err
	}
	dir, err := n.layerDir(HostDir, PeerBookFile)
	if err != nil {
		return err
	}
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
		// Spaces keep their newest heads in nube's DHT.
		Validators: map[string]record.Validator{space.HeadNamespace: space.HeadValidator{}},
	}
	if dir != "" {
		pcfg.PeerBook = filepath.Join(dir, PeerBookFile)
	}
	n.host, err = p2p.New(ctx, pcfg)
	if errors.Is(err, p2p.ErrAddrInUse) && fallback != nil {
		n.log.Info("default port just taken; listening on a port the OS picks", "port", DefaultPort)
		pcfg.ListenAddrs = fallback
		n.host, err = p2p.New(ctx, pcfg)
	}
	return err
}

func startContent(ctx context.Context, n *Node) error {
	ccfg := content.Config{
		Host:       n.host,
		Routing:    n.host.DHT,
		Store:      n.store,
		ProvideAll: n.cfg.ProvideAll,
		Logger:     n.log,
	}
	if n.host.IPFS != nil {
		ccfg.Public = n.host.IPFS
	}
	var err error
	n.content, err = content.New(ctx, ccfg)
	return err
}

func startRemote(ctx context.Context, n *Node) error {
	var err error
	n.remote, err = remote.New(ctx, remote.Config{
		Host:     n.host,
		FindPeer: n.host.FindPeer,
		Policy:   n.cfg.Remote,
		Logger:   n.log,
	})
	return err
}

func startGroups(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(GroupsDir)
	if err != nil {
		return err
	}
	n.groups, err = group.New(ctx, group.Config{
		Host:             n.host,
		Remote:           n.remote,
		FindPeer:         n.host.FindPeer,
		Dir:              dir,
		HeartbeatTimeout: n.cfg.GroupHeartbeat,
		Logger:           n.log,
		Registerer:       n.reg,
	})
	return err
}

func startLedger(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(LedgerDir, "ledger.json")
	if err != nil {
		return err
	}
	n.ledger, err = ledger.New(ctx, ledger.Config{
		Host:            n.host,
		Remote:          n.remote,
		Groups:          n.groups,
		Routing:         n.host.DHT,
		UserKey:         n.signer,
		Cert:            n.cert,
		Dir:             dir,
		Trust:           n.trustLedger(),
		StoragePrice:    n.cfg.Offer.StoragePrice,
		MaxStoragePrice: n.cfg.Offer.MaxStoragePrice,
		TickInterval:    n.cfg.LedgerTick,
		Logger:          n.log,
	})
	return err
}

func startServices(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(ServicesDir, "services.json", "wasm-cache")
	if err != nil {
		return err
	}
	cfg := n.cfg
	n.svc, err = service.New(ctx, service.Config{
		Host:        n.host,
		Routing:     n.host.DHT,
		Content:     n.content,
		Remote:      n.remote,
		UserKey:     n.signer,
		Cert:        n.cert,
		Revoked:     n.revoked,
		NoCompute:   cfg.NoCompute,
		Slots:       cfg.ComputeSlots,
		MaxLimits:   cfg.ComputeLimits,
		Interpreter: cfg.ComputeInterpreter,
		OtherSlots:  cfg.Offer.Jobs,
		Payments:    n.ledger.Compute(),
		Admit:       cfg.Offer.admitCompute(n.host.ID(), n.userID),
		Spaces:      runSpaces{n},
		Locate:      n.locate,
		NodeKey:     n.nodeKey,
		Dir:         dir,
		Registerer:  n.reg,
		Logger:      n.log,
	})
	return err
}

func startSpaces(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(SpacesDir)
	if err != nil {
		return err
	}
	cfg := n.cfg
	n.spaces, err = space.New(ctx, space.Config{
		Host:           n.host,
		Content:        n.content,
		Remote:         n.remote,
		Routing:        n.host.DHT,
		Values:         n.host.DHT,
		UserKey:        n.signer,
		NodeKey:        n.nodeKey,
		Cert:           n.cert,
		Holder:         n.holder,
		Dir:            dir,
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

func startTopics(ctx context.Context, n *Node) error {
	dir, err := n.layerDir(TopicsDir)
	if err != nil {
		return err
	}
	n.topics, err = topic.New(ctx, topic.Config{
		Host:     n.host,
		Endpoint: n.remote,
		Spaces:   n.spaces,
		Groups:   n.groups,
		UserKey:  n.signer,
		Cert:     n.cert,
		Dir:      dir,
		Registry: n.reg,
		Logger:   n.log,
	})
	return err
}

// trustLedger is the offer's ledger trust, less the nodes this user
// removed.
func (n *Node) trustLedger() func(node, u peer.ID) bool {
	trust := n.cfg.Offer.trustLedger(n.userID)
	return func(node, u peer.ID) bool { return !n.revoked(node) && trust(node, u) }
}
