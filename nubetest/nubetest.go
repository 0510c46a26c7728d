// Package nubetest starts clusters of real nube nodes in one process for
// tests. The nodes speak real libp2p over loopback (TCP and QUIC on
// 127.0.0.1); nothing is mocked. Tests cause faults on purpose through the
// cluster: Kill or Crash a node, Restart it on its data dir, Disconnect
// two nodes, Partition the cluster until Heal, and (WithShaping) Shape a
// link's latency, loss and bandwidth.
//
//	c := nubetest.Cluster(t, 5)
//	a, b := c.Node(0), c.Node(1)
//
// Nodes never multicast (mDNS and port mapping are off) and listen only on
// loopback, so tests send no traffic off the machine.
package nubetest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/identity"
)

// LoopbackListen are the listen addresses every test node uses.
var LoopbackListen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

type options struct {
	bootstrapOnly bool
	dataDirs      bool
	shaping       bool
	trustFirst    int
	timeout       time.Duration
	config        func(i int, c *nube.Config)
}

// Option changes how Cluster builds its nodes.
type Option func(*options)

// BootstrapOnly gives every node but the first only the first node as its
// bootstrap peer, instead of connecting every pair. Cluster waits until each
// node is connected to the first; finding the others is up to discovery.
func BootstrapOnly() Option { return func(o *options) { o.bootstrapOnly = true } }

// WithDataDirs gives each node a data dir of its own under t.TempDir(), so
// that Restart brings it back with the same identity and peer book.
func WithDataDirs() Option { return func(o *options) { o.dataDirs = true } }

// TrustFirst has every node trust the users of the first k nodes
// (Config.Offer.Users), as a community trusts those who keep its ledger:
// they admit one another to the ledger, and every node believes what they
// say the ledger is. Each of the k starts on a data dir holding a user key
// made beforehand (its own, if WithDataDirs gave it none), so that its
// user is known before any node starts. A WithConfig that changes one of
// their DataDirs loses that user.
func TrustFirst(k int) Option { return func(o *options) { o.trustFirst = k } }

// WithConfig lets a test adjust node i's Config before it starts.
func WithConfig(f func(i int, c *nube.Config)) Option {
	return func(o *options) { o.config = f }
}

// WithTimeout bounds how long Cluster waits for the nodes to start and
// connect. The default is one minute.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// C is a running cluster.
type C struct {
	t     testing.TB
	opts  options
	mu    sync.Mutex
	nodes []*nube.Node
	cfgs  []nube.Config
	cut   map[[2]int]bool // node pairs a partition holds apart, lower index first
	links map[[2]int]Link // shaped links, lower index first
	ids   []peer.ID       // each node's ID as last started
	// carried counts the bytes the shaped links carried, both ways.
	carried atomic.Int64
}

// Cluster starts n nodes, connects them (every pair, or each to the first
// with BootstrapOnly) and closes them all when the test ends. It fails the
// test if a node cannot start or connect.
func Cluster(t testing.TB, n int, opts ...Option) *C {
	t.Helper()
	o := options{timeout: time.Minute}
	for _, f := range opts {
		f(&o)
	}
	c := &C{t: t, opts: o, nodes: make([]*nube.Node, n), cfgs: make([]nube.Config, n), ids: make([]peer.ID, n)}
	// Data dirs first: cleanups run last-registered first, and the nodes
	// must close before their directories are removed.
	dirs := make([]string, n)
	if o.dataDirs {
		for i := range dirs {
			dirs[i] = t.TempDir()
		}
	}
	var trusted []peer.ID
	for i := range min(o.trustFirst, n) {
		if dirs[i] == "" {
			dirs[i] = t.TempDir()
		}
		key := identity.Generate()
		if err := identity.Save(filepath.Join(dirs[i], nube.UserKeyFile), key); err != nil {
			t.Fatalf("nubetest: user key of node %d: %v", i, err)
		}
		u, err := identity.ID(key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, u)
	}
	t.Cleanup(c.closeAll)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()

	for i := 0; i < n; i++ {
		cfg := TestConfig()
		cfg.DataDir = dirs[i]
		cfg.Offer.Users = append(cfg.Offer.Users, trusted...)
		if o.bootstrapOnly && i > 0 {
			for _, a := range c.nodes[0].Addrs() {
				cfg.Bootstrap = append(cfg.Bootstrap, a.String())
			}
		}
		if o.shaping {
			cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
			cfg.Dial = c.dialer(i)
		}
		if o.config != nil {
			o.config(i, &cfg)
		}
		c.cfgs[i] = cfg
		node, err := nube.Start(ctx, cfg)
		if err != nil {
			t.Fatalf("nubetest: start node %d: %v", i, err)
		}
		c.nodes[i] = node
		c.ids[i] = node.ID()
	}
	if o.bootstrapOnly {
		for i := 1; i < n; i++ {
			if err := c.WaitConnected(ctx, i, 0); err != nil {
				t.Fatalf("nubetest: node %d did not reach its bootstrap node: %v", i, err)
			}
		}
		if err := c.WaitRoutingTables(ctx, 1); err != nil {
			t.Fatalf("nubetest: %v", err)
		}
		if err := c.RefreshDHT(ctx); err != nil {
			t.Fatalf("nubetest: %v", err)
		}
		return c
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if err := c.Connect(ctx, i, j); err != nil {
				t.Fatalf("nubetest: %v", err)
			}
		}
	}
	return c
}

// TestConfig is the Config test nodes start from: loopback only, no mDNS,
// no port mapping, no data dir, serving any node (nube.OfferAnyone), logs
// discarded unless NUBE_TEST_LOG is set.
func TestConfig() nube.Config {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("NUBE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nube.Config{
		ListenAddrs: LoopbackListen,
		NoMDNS:      true,
		NoPortMap:   true,
		// Off the IPFS public DHT: test traffic stays on this machine.
		// A test of it gives a private one's peers in IPFSBootstrap.
		NoIPFS:    true,
		MaxMemory: 128 << 20,
		Logger:    log,
		// Each test node has a user of its own; they serve each other as
		// strangers would once their owners open them up.
		Offer: nube.Offer{To: nube.OfferAnyone},
		// See raceEnabled.
		ComputeInterpreter: raceEnabled,
	}
}

// Len returns the number of nodes, killed ones included.
func (c *C) Len() int { return len(c.nodes) }

// Node returns node i (nil if it was killed and not restarted).
func (c *C) Node(i int) *nube.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Nodes returns the nodes that are running.
func (c *C) Nodes() []*nube.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*nube.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// IDs returns the peer IDs of the running nodes.
func (c *C) IDs() []peer.ID {
	var out []peer.ID
	for _, n := range c.Nodes() {
		out = append(out, n.ID())
	}
	return out
}

// Connect connects node i to node j and waits until both see the link.
func (c *C) Connect(ctx context.Context, i, j int) error {
	a, b := c.Node(i), c.Node(j)
	if err := a.Sys().Host().Connect(ctx, b.Sys().AddrInfo()); err != nil {
		return fmt.Errorf("connect node %d to node %d: %w", i, j, err)
	}
	return nil
}

// WaitConnected waits until node i has a connection to node j.
func (c *C) WaitConnected(ctx context.Context, i, j int) error {
	return c.Node(i).Sys().WaitConnected(ctx, c.Node(j).ID())
}

// WaitRoutingTables waits until every running node has at least k peers in
// its DHT routing table. A peer enters the table only once identify has
// shown that it speaks the DHT, a moment after it connects; there is no
// event for it, so this polls.
func (c *C) WaitRoutingTables(ctx context.Context, k int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		short := -1
		for i, n := range c.Nodes() {
			if n.Sys().DHT().RoutingTable().Size() < k {
				short = i
				break
			}
		}
		if short < 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d has fewer than %d peers in its DHT routing table: %w", short, k, ctx.Err())
		case <-tick.C:
		}
	}
}

// RefreshDHT makes every running node refresh its DHT routing table (the
// lookups a node does at bootstrap) and waits until all have finished. After
// it, each node's table holds what a settled network would give it.
func (c *C) RefreshDHT(ctx context.Context) error {
	nodes := c.Nodes()
	errs := make(chan error, len(nodes))
	for i, n := range nodes {
		go func() {
			select {
			case err := <-n.Sys().DHT().RefreshRoutingTable():
				if err != nil {
					err = fmt.Errorf("node %d: refresh DHT routing table: %w", i, err)
				}
				errs <- err
			case <-ctx.Done():
				errs <- fmt.Errorf("node %d: refresh DHT routing table: %w", i, ctx.Err())
			}
		}()
	}
	var first error
	for range nodes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Disconnect closes every connection between nodes i and j. Discovery may
// dial again later; a test that needs the link to stay down should Kill.
func (c *C) Disconnect(i, j int) error {
	return c.Node(i).Sys().Host().Network().ClosePeer(c.Node(j).ID())
}

// Kill stops node i abruptly for the others: its connections drop. With
// WithDataDirs its data dir stays for Restart.
func (c *C) Kill(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Close()
	}
}

// Crash stops node i as kill -9 stops a process, as far as the others
// can tell: its libp2p host goes first, so its connections reset in the
// middle of whatever they carried and no layer says goodbye over the
// network (no raft leave, no cancels, no last peer-book save); then the
// rest of the node stops. With WithDataDirs its store is left for
// Restart, which reopens it as it was left. (A crash of the process
// itself, with unsynced writes lost, is crash_test.go's, with real
// processes.)
func (c *C) Crash(i int) {
	c.mu.Lock()
	n := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if n != nil {
		n.Sys().Host().Close()
		n.Close()
	}
}

// Partition splits the running nodes into groups that cannot reach each
// other until Heal: each node of a group cuts its connections to every
// node of the other groups and refuses new ones both ways (a connection
// gater, as a firewall would). Nodes in no group keep their links. A
// second Partition adds to the first.
func (c *C) Partition(groups ...[]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut == nil {
		c.cut = map[[2]int]bool{}
	}
	for gi, g := range groups {
		for _, hj := range groups[gi+1:] {
			for _, i := range g {
				for _, j := range hj {
					a, b := c.nodes[i], c.nodes[j]
					if a == nil || b == nil {
						continue
					}
					a.Sys().Ban(b.ID(), partitionHold)
					b.Sys().Ban(a.ID(), partitionHold)
					c.cut[[2]int{min(i, j), max(i, j)}] = true
				}
			}
		}
	}
}

// id returns node i's peer ID, running or not (as last started).
func (c *C) id(i int) peer.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[i]
}

// partitionHold is how long a partition's refusals last: for the test,
// for ever, unless Heal ends them.
const partitionHold = 24 * time.Hour

// Heal ends every partition and connects again each pair of running nodes
// that a partition cut.
func (c *C) Heal(ctx context.Context) error {
	c.mu.Lock()
	cut := c.cut
	c.cut = nil
	c.mu.Unlock()
	var errs []error
	for pair := range cut {
		a, b := c.Node(pair[0]), c.Node(pair[1])
		// A node down now keeps its ID: the other must let it back in
		// when it restarts (its own refusals end with its process).
		ida, idb := c.id(pair[0]), c.id(pair[1])
		if a != nil {
			a.Sys().Unban(idb)
		}
		if b != nil {
			b.Sys().Unban(ida)
		}
		if a == nil || b == nil {
			continue
		}
		// The dials refused during the partition left the swarm backing
		// off from these addresses; a healed link is dialled at once.
		hctx := network.WithForceDirectDial(ctx, "nubetest: heal")
		if err := c.Connect(hctx, pair[0], pair[1]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Restart kills node i if it is running and starts it again with the same
// Config (and so, with WithDataDirs, the same identity and peer book). The
// listen ports are new: the OS picks them again.
func (c *C) Restart(ctx context.Context, i int) (*nube.Node, error) {
	c.Kill(i)
	n, err := nube.Start(ctx, c.cfgs[i])
	if err != nil {
		return nil, fmt.Errorf("restart node %d: %w", i, err)
	}
	c.mu.Lock()
	c.nodes[i] = n
	c.ids[i] = n.ID()
	// A partition holds across a restart: the new process refuses, and
	// is refused by, the nodes it was cut from.
	for pair := range c.cut {
		j := pair[0]
		if j == i {
			j = pair[1]
		} else if pair[1] != i {
			continue
		}
		if o := c.nodes[j]; o != nil {
			n.Sys().Ban(o.ID(), partitionHold)
			o.Sys().Ban(n.ID(), partitionHold)
		}
	}
	c.mu.Unlock()
	return n, nil
}

func (c *C) closeAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Kill(i)
		}()
	}
	wg.Wait()
}

// Context returns a context that ends after d or when the test ends,
// whichever comes first: the bound on how long a test may wait.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// with the message failure returns (it may describe the state it found)
// if ctx ends first. It is for states no event reports; where an event
// does, wait on the event.
func Eventually(t testing.TB, ctx context.Context, cond func() bool, failure func() string) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal(failure())
		case <-tick.C:
		}
	}
}
