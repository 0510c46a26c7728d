package nube_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/netns"
	"github.com/nubecloud/nube/internal/p2p"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/wasm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}

// TestZeroConfig starts a node on the zero Config, as a library user would,
// inside a private network namespace: the zero Config listens on every
// interface and multicasts mDNS, and tests must not do that on the host.
func TestZeroConfig(t *testing.T) {
	t.Parallel()
	if !netns.Isolate(t) {
		return
	}
	ctx := nubetest.Context(t, time.Minute)
	a, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A second zero-config node in the same namespace takes another port
	// (the default one is taken) and finds the first by mDNS alone.
	b, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Sys().WaitConnected(ctx, a.ID()); err != nil {
		t.Fatalf("zero-config nodes did not find each other by mDNS: %v", err)
	}
	if a.ID() == b.ID() || a.UserID() == b.UserID() {
		t.Fatal("two ephemeral nodes share an identity")
	}
}

func TestClusterPing(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, 30*time.Second)
	for i, n := range c.Nodes() {
		if got := len(n.Peers()); got != 2 {
			t.Errorf("node %d has %d peers, want 2", i, got)
		}
	}
	rtt, err := c.Node(0).Ping(ctx, c.Node(2).ID())
	if err != nil {
		t.Fatal(err)
	}
	if rtt <= 0 {
		t.Fatalf("ping rtt %v", rtt)
	}
	if _, err := c.Node(0).Ping(ctx, c.Node(0).ID()); err == nil {
		t.Fatal("ping of self succeeded")
	}
}

func TestConnectByMultiaddr(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 2, nubetest.BootstrapOnly())
	ctx := nubetest.Context(t, 30*time.Second)
	extra := nubetest.Cluster(t, 1)
	addr := extra.Node(0).Addrs()[0].String()
	id, err := c.Node(1).Connect(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if id != extra.Node(0).ID() {
		t.Fatalf("connected to %s, want %s", id, extra.Node(0).ID())
	}
	for _, bad := range []string{"not-a-multiaddr", "/ip4/127.0.0.1/tcp/1"} {
		if _, err := c.Node(1).Connect(ctx, bad); err == nil {
			t.Errorf("Connect(%q) succeeded", bad)
		}
	}
}

func TestRestartKeepsIdentityAndReconnects(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 3, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, time.Minute)
	before := c.Node(0).ID()
	user := c.Node(0).UserID()
	n, err := c.Restart(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID() != before {
		t.Fatalf("peer ID changed across restart: %s -> %s", before, n.ID())
	}
	if n.UserID() != user {
		t.Fatalf("user ID changed across restart: %s -> %s", user, n.UserID())
	}
	// No bootstrap peers are configured: only the peer book can lead the
	// restarted node back to the others.
	for _, j := range []int{1, 2} {
		if err := c.WaitConnected(ctx, 0, j); err != nil {
			t.Fatalf("restarted node did not reconnect to node %d: %v", j, err)
		}
	}
}

// TestDHTFindsEveryPeer is the discovery test of the foundation issue: in a
// 20-node cluster where each node knows only the first, every node finds
// every other node's addresses through the DHT. Before each lookup the
// seeker forgets the target (connection, addresses, routing-table entry), so
// the answer can only come from other nodes' DHT replies. Lookups run one at
// a time: while a seeker has forgotten a target it cannot tell others where
// the target is, and overlapping lookups would test that artifact instead.
func TestDHTFindsEveryPeer(t *testing.T) {
	n := 20
	if testing.Short() {
		n = 8
	}
	c := nubetest.Cluster(t, n, nubetest.BootstrapOnly())
	ctx := nubetest.Context(t, 4*time.Minute)
	for i := 0; i < n; i++ {
		seeker := c.Node(i)
		for j := 0; j < n; j++ {
			if i == j {
				continue
			}
			target := c.Node(j)
			forget(seeker, target.ID())
			ai, err := seeker.Sys().FindPeer(ctx, target.ID())
			if err != nil {
				inRT, withAddrs := 0, 0
				for _, n := range c.Nodes() {
					if n.Sys().DHT().RoutingTable().Find(target.ID()) != "" {
						inRT++
					}
					if len(n.Sys().Host().Peerstore().Addrs(target.ID())) > 0 {
						withAddrs++
					}
				}
				t.Logf("seeker routing table: %d peers; target is in %d routing tables; %d nodes know its addresses", seeker.Sys().DHT().RoutingTable().Size(), inRT, withAddrs)
				t.Fatalf("node %d looking for node %d: %v", i, j, err)
			}
			if !sharesAddr(ai.Addrs, target.Sys().AddrInfo().Addrs) {
				t.Fatalf("node %d found node %d at %s, but it listens on %s", i, j,
					addrsString(ai.Addrs), addrsString(target.Sys().AddrInfo().Addrs))
			}
		}
	}
}

// forget makes n behave as if it had never met p.
func forget(n *nube.Node, p peer.ID) {
	// Close first: while a connection lives, traffic on it can put p back
	// into the routing table. p may dial back at any moment (its own DHT
	// refresh); forget again until it has not, so that the lookup starts
	// from nothing rather than from a fresh connection whose addresses
	// were just cleared.
	h := n.Sys().Host()
	for range 20 {
		h.Network().ClosePeer(p)
		h.Peerstore().ClearAddrs(p)
		n.Sys().DHT().RoutingTable().RemovePeer(p)
		if h.Network().Connectedness(p) != network.Connected {
			return
		}
	}
}

func sharesAddr[T interface{ String() string }](a, b []T) bool {
	for _, x := range a {
		for _, y := range b {
			if x.String() == y.String() {
				return true
			}
		}
	}
	return false
}

func addrsString[T interface{ String() string }](as []T) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	ctx := nubetest.Context(t, 30*time.Second)
	a, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = nube.Start(ctx, cfg)
	if !errors.Is(err, nube.ErrDataDirInUse) {
		t.Fatalf("second Start on the same data dir = %v, want ErrDataDirInUse", err)
	}
	a.Close()
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start after the first node closed: %v", err)
	}
	b.Close()
}

func TestCorruptKeyRefused(t *testing.T) {
	t.Parallel()
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	p := filepath.Join(cfg.DataDir, nube.NodeKeyFile)
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := nube.Start(nubetest.Context(t, 30*time.Second), cfg)
	if !errors.Is(err, identity.ErrBadKeyFile) {
		t.Fatalf("Start with a corrupt node key = %v, want ErrBadKeyFile", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "garbage" {
		t.Fatal("corrupt key file was replaced")
	}
}

// TestBanKeepsAddresses bans a peer, then lifts the ban: the node dials
// the peer again by its ID alone, from the addresses it kept.
func TestBanKeepsAddresses(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, 30*time.Second)
	a.Sys().Ban(b.ID(), time.Hour)
	if _, err := a.Ping(ctx, b.ID()); err == nil {
		t.Fatal("ping of a banned peer succeeded")
	}
	a.Sys().Unban(b.ID())
	if err := a.Sys().Host().Connect(ctx, peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatalf("dial by ID after the ban: %v", err)
	}
	if _, err := a.Ping(ctx, b.ID()); err != nil {
		t.Fatalf("ping after the ban: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx := nubetest.Context(t, 30*time.Second)
	cases := []struct {
		name string
		cfg  func(*nube.Config)
		want func(error) bool
	}{
		{"port in use", func(c *nube.Config) {
			c.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)}
		}, func(err error) bool { return errors.Is(err, p2p.ErrAddrInUse) }},
		{"bad listen addr", func(c *nube.Config) { c.ListenAddrs = []string{"/ip4/nope"} },
			func(err error) bool { return strings.Contains(err.Error(), `bad multiaddr "/ip4/nope"`) }},
		{"bootstrap without peer ID", func(c *nube.Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4040"} },
			func(err error) bool { return strings.Contains(err.Error(), "no /p2p/<peer ID>") }},
		{"data dir is a file", func(c *nube.Config) {
			f := filepath.Join(t.TempDir(), "file")
			os.WriteFile(f, nil, 0o600)
			c.DataDir = f
		}, func(err error) bool { return strings.Contains(err.Error(), "data dir") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := nubetest.TestConfig()
			tc.cfg(&cfg)
			n, err := nube.Start(ctx, cfg)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded")
			}
			if !tc.want(err) {
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
}

// TestPortNotShared: TCP listens with SO_REUSEPORT (for hole punching),
// yet a second node asked for the port a running node holds is refused
// rather than let in to share it.
func TestPortNotShared(t *testing.T) {
	t.Parallel()
	ctx := nubetest.Context(t, 30*time.Second)
	first := nubetest.Cluster(t, 1).Node(0)
	var port string
	for _, a := range first.Sys().Host().Network().ListenAddresses() {
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			port = p
		}
	}
	if port == "" {
		t.Fatal("the first node listens on no TCP port")
	}
	cfg := nubetest.TestConfig()
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/" + port}
	n, err := nube.Start(ctx, cfg)
	if err == nil {
		n.Close()
		t.Fatalf("a second node started on TCP port %s, which the first holds", port)
	}
	if !errors.Is(err, p2p.ErrAddrInUse) {
		t.Fatalf("err = %v, want ErrAddrInUse", err)
	}
}

// TestConfigValidate gives Start configs that make no sense: each is
// refused before anything starts, with an error naming the field.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ctx := nubetest.Context(t, 30*time.Second)
	for want, cfg := range map[string]nube.Config{
		"NoListen":        {NoListen: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}},
		"MaxMemory":       {MaxMemory: -1},
		"ComputeSlots":    {ComputeSlots: -5},
		"ListenAddrs":     {ListenAddrs: []string{"not a multiaddr"}},
		"Bootstrap":       {Bootstrap: []string{"/ip4/127.0.0.1/tcp/1"}},
		"IPFSBootstrap":   {IPFSBootstrap: []string{"/ip4/127.0.0.1/tcp/1"}},
		"Network":         {Network: "My Network"},
		"ComputeLimits":   {ComputeLimits: wasm.Limits{Timeout: -time.Second}},
		"MaxConcurrent":   {Remote: remote.Policy{MaxConcurrent: -1}},
		"Limits.MaxInput": {ComputeLimits: wasm.Limits{MaxInput: -1}},
	} {
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of a bad %s: %v", want, err)
		}
		if n, err := nube.Start(ctx, cfg); err == nil {
			n.Close()
			t.Errorf("Start with a bad %s succeeded", want)
		}
	}
	if err := (nube.Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config: %v", err)
	}
}

// TestOldDataDirLayout starts a node on a data dir laid out as before each
// layer had a directory of its own (ledger.json, services.json,
// wasm-cache/ and peers.json at the top): the files move into their
// layers' directories with their content, and the node keeps its identity.
func TestOldDataDirLayout(t *testing.T) {
	t.Parallel()
	ctx := nubetest.Context(t, 60*time.Second)
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	a, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	dir := cfg.DataDir
	// Put it back as an older nube kept it.
	old := map[string]string{ // old path → new path
		"ledger.json":   filepath.Join(nube.LedgerDir, "ledger.json"),
		"services.json": filepath.Join(nube.ServicesDir, "services.json"),
		"peers.json":    filepath.Join(nube.HostDir, nube.PeerBookFile),
		"wasm-cache":    filepath.Join(nube.ServicesDir, "wasm-cache"),
	}
	for _, to := range old {
		if err := os.RemoveAll(filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{
		"ledger.json":   `{"leader":"` + id.String() + `"}`,
		"services.json": `{"descriptors":[]}`,
		"peers.json":    `{}`,
	}
	for name, body := range want {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "wasm-cache"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm-cache", "module"), []byte("compiled"), 0o600); err != nil {
		t.Fatal(err)
	}

	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start on the old layout: %v", err)
	}
	if b.ID() != id {
		t.Errorf("identity changed: %s, was %s", b.ID(), id)
	}
	for from, to := range old {
		if _, err := os.Lstat(filepath.Join(dir, from)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still at the data dir's top (%v)", from, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, to)); err != nil {
			t.Errorf("%s not moved to %s: %v", from, to, err)
		}
	}
	for _, name := range []string{"ledger.json", "services.json"} {
		got, err := os.ReadFile(filepath.Join(dir, old[name]))
		if err != nil || string(got) != want[name] {
			t.Errorf("%s = %q, %v; want %q", old[name], got, err, want[name])
		}
	}
	if got, err := os.ReadFile(filepath.Join(dir, nube.ServicesDir, "wasm-cache", "module")); err != nil || string(got) != "compiled" {
		t.Errorf("wasm-cache/module = %q, %v", got, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// And it starts again on the layout it made.
	c, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart on the new layout: %v", err)
	}
	c.Close()
}
