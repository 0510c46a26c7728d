package nube_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/netns"
	"github.com/nubecloud/nube/nubetest"
)

// natRole is the environment variable that makes the test binary play one
// part of TestNATRendezvous inside a namespace, instead of the test.
const natRole = "NUBE_NAT_ROLE"

// TestNATRendezvous puts nube on an internet in miniature (network
// namespaces: a bridge for the public side, home routers that masquerade
// and drop unsolicited packets) with a private IPFS-style DHT standing in
// for the public one. Every node is given only that DHT's address: no
// nube bootstrap, no mDNS. A relay and three more nodes are public; A sits
// behind a cone NAT, B behind a symmetric one (no hole punching gets
// through that: the relay carries their link). B knows A only by its peer
// ID. The nodes meet through the network's rendezvous on the DHT; then B
// calls A and fetches a file of A's, again and again, each time with A's
// connection closed and its addresses forgotten, so that each round finds
// A through a DHT lookup afresh. Every round must succeed.
//
// It needs Linux, root, iproute2 and nftables, and skips without them.
// NUBE_NAT_ROUNDS sets the number of rounds (5). Skipped in -short mode.
func TestNATRendezvous(t *testing.T) {
	if role := os.Getenv(natRole); role != "" {
		playNATRole(t, role)
		return
	}
	if testing.Short() {
		t.Skip("builds an internet of namespaces and takes half a minute; skipped in -short mode (the plain run has it)")
	}
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("NUBE_NAT_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	net := netns.NewNet(t)
	ctx := nubetest.Context(t, 6*time.Minute)
	a := net.Home("a", "11.0.0.2", netns.Cone)
	b := net.Home("b", "11.0.0.3", netns.Symmetric)
	for _, ip := range []string{"11.0.0.11", "11.0.0.12", "11.0.0.13", "11.0.0.20"} {
		net.Public(ip)
	}

	dhtServer := startNATRole(t, net, netns.Internet, "ipfs", "LISTEN=/ip4/11.0.0.20/tcp/4001")
	ipfsAddr := dhtServer.wait(t, ctx, "addr")
	public := func(ip string) []string {
		return []string{"LISTEN=/ip4/" + ip + "/tcp/4001 /ip4/" + ip + "/udp/4001/quic-v1", "IPFS=" + ipfsAddr}
	}
	startNATRole(t, net, netns.Internet, "node", append(public("11.0.0.1"), "RELAY=1")...)
	for _, ip := range []string{"11.0.0.11", "11.0.0.12", "11.0.0.13"} {
		startNATRole(t, net, netns.Internet, "node", public(ip)...)
	}
	home := []string{"LISTEN=/ip4/0.0.0.0/tcp/4001 /ip4/0.0.0.0/udp/4001/quic-v1", "IPFS=" + ipfsAddr}
	nodeA := startNATRole(t, net, a, "node", append(home, fmt.Sprintf("FILES=%d", rounds))...)
	idA := nodeA.wait(t, ctx, "id")
	var cids []string
	for range rounds {
		cids = append(cids, nodeA.wait(t, ctx, "cid"))
	}
	// A settles first: it has met the network through the rendezvous
	// (it is in a DHT) and holds a relay reservation.
	t.Logf("A has a relayed address and a DHT %s its start", nodeA.wait(t, ctx, "relayed"))
	nodeB := startNATRole(t, net, b, "caller", append(home, "TARGET="+idA, "CIDS="+strings.Join(cids, " "))...)
	met := nodeB.wait(t, ctx, "met")
	t.Logf("B first reached A, known only by its peer ID, %s after it started", met)
	for i := range rounds {
		t.Logf("round %d: %s", i, nodeB.wait(t, ctx, "round"))
	}
	if err := nodeB.end(ctx); err != nil {
		t.Fatalf("node B: %v\n%s", err, nodeB.output())
	}
}

// natProcess is the test binary playing a role in a namespace; it reports
// on lines "NAT key value" of its output.
type natProcess struct {
	role  string
	cmd   *exec.Cmd
	lines chan [2]string
	done  chan struct{} // closed when the process has exited, err set
	err   error
	// skipped holds, by key, the values of lines a wait passed over; only
	// the test's goroutine touches it.
	skipped map[string][]string
	mu      sync.Mutex
	out     bytes.Buffer
}

// startNATRole starts the test binary in namespace ns, playing role: it
// runs the top-level test t belongs to, which must hand over to
// playNATRole when natRole is set. Each of env ("KEY=value") reaches the
// role as NUBE_NAT_KEY.
func startNATRole(t *testing.T, net *netns.Net, ns, role string, env ...string) *natProcess {
	t.Helper()
	top, _, _ := strings.Cut(t.Name(), "/")
	args := []string{"-test.run=^" + top + "$", "-test.v"}
	cmd := net.Command(ns, os.Args[0], args...)
	cmd.Env = append(os.Environ(), natRole+"="+role)
	for _, e := range env {
		cmd.Env = append(cmd.Env, "NUBE_NAT_"+e)
	}
	stdin, err := cmd.StdinPipe() // the role ends when its input closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &natProcess{role: role, cmd: cmd, lines: make(chan [2]string, 64), done: make(chan struct{}), skipped: map[string][]string{}}
	cmd.Stderr = &lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if f := strings.SplitN(line, " ", 3); len(f) == 3 && f[0] == "NAT" {
				p.lines <- [2]string{f[1], f[2]}
			}
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	// Ending: every process is told at once (the cleanups run one after
	// the other), then each is waited for.
	t.Cleanup(func() {
		net.End()
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", p.role, p.output())
		}
	})
	net.OnEnd(func() { stdin.Close() })
	return p
}

// wait returns the value of the next line the process reports with key.
// Lines with other keys that come first are kept for later waits, in
// order, so a test may wait for a role's reports in any order.
func (p *natProcess) wait(t *testing.T, ctx context.Context, key string) string {
	t.Helper()
	if vs := p.skipped[key]; len(vs) > 0 {
		p.skipped[key] = vs[1:]
		return vs[0]
	}
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s ended before it reported %q:\n%s", p.role, key, p.output())
			}
			if l[0] == key {
				return l[1]
			}
			if l[0] == "fail" {
				t.Fatalf("%s: %s", p.role, l[1])
			}
			p.skipped[l[0]] = append(p.skipped[l[0]], l[1])
		case <-ctx.Done():
			t.Fatalf("%s never reported %q:\n%s", p.role, key, p.output())
		}
	}
}

// end waits for the process to exit of itself.
func (p *natProcess) end(ctx context.Context) error {
	for range p.lines {
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *natProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct{ p *natProcess }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// playNATRole is the test binary's part inside a namespace: "ipfs", a
// server of the private IPFS DHT; "node", a nube node; "caller", node B of
// TestNATRendezvous; "punch", node B of TestHolePunch. Each reports with
// natReport, and ends when its input closes (a caller or a puncher: when
// its work is done).
func playNATRole(t *testing.T, role string) {
	ctx := nubetest.Context(t, 4*time.Minute)
	if role == "ipfs" {
		h, err := libp2p.New(libp2p.ListenAddrStrings(natEnv("LISTEN")))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		kad, err := dht.New(h, dht.Mode(dht.ModeServer))
		if err != nil {
			t.Fatal(err)
		}
		defer kad.Close()
		natReport("addr", fmt.Sprintf("%s/p2p/%s", natEnv("LISTEN"), h.ID()))
		io.Copy(io.Discard, os.Stdin)
		return
	}
	node := startNATNode(t, ctx)
	switch role {
	case "caller":
		callNATTarget(t, ctx, node)
	case "punch":
		punchNATTarget(t, ctx, node)
	default:
		io.Copy(io.Discard, os.Stdin)
	}
}

func natEnv(k string) string { return os.Getenv("NUBE_NAT_" + k) }

// startNATNode starts the node a role plays, as its environment says:
// LISTEN (addresses, space-separated), IPFS (the private IPFS DHT's
// server; empty: none), BOOTSTRAP (nube peers, space-separated), RELAY=1
// (serve as a relay), FILES=n (add n random files of 256 KiB). It reports
// "id", a "cid" per file, "status" every 10 s, and once each: "relayed"
// (a circuit address and a DHT), "circuit" (a circuit address) and
// "dcutr" (hole punching ready: libp2p serves DCUtR once it knows a public
// address of its own).
func startNATNode(t *testing.T, ctx context.Context) *nube.Node {
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.ListenAddrs = strings.Fields(natEnv("LISTEN"))
	if ipfs := natEnv("IPFS"); ipfs != "" {
		cfg.NoIPFS = false
		cfg.IPFSBootstrap = []string{ipfs}
		cfg.Network = "nat-test"
	}
	cfg.Bootstrap = strings.Fields(natEnv("BOOTSTRAP"))
	cfg.RelayService = natEnv("RELAY") == "1"
	started := time.Now()
	node, err := nube.Start(ctx, cfg)
	if err != nil {
		natReport("fail", err.Error())
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	natReport("id", node.ID().String())
	sub, err := node.Sys().Host().EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtLocalProtocolsUpdated)})
	if err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-stopped; sub.Close() })
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		once := map[string]bool{}
		report := func(key string, now bool) {
			if now && !once[key] {
				once[key] = true
				natReport(key, fmt.Sprintf("after %v", time.Since(started).Round(time.Millisecond)))
			}
		}
		for ticks := 0; ; {
			select {
			case <-stop:
				return
			case <-sub.Out():
			case <-tick.C:
				// What the node sees, every 10 s, for the log of a
				// failed run.
				if ticks++; ticks%10 == 0 {
					st := node.Status()
					natReport("status", fmt.Sprintf("%s, %d peers, nube DHT %d, IPFS DHT %d, addrs %v", st.Reachability, st.Peers, st.RoutingTable, st.IPFSRoutingTable, st.Addrs))
				}
			}
			circuit := slices.ContainsFunc(node.Addrs(), isCircuit)
			report("circuit", circuit)
			report("relayed", circuit && node.Status().RoutingTable > 0)
			report("dcutr", slices.Contains(node.Sys().Host().Mux().Protocols(), holepunch.Protocol))
		}
	}()
	if n, _ := strconv.Atoi(natEnv("FILES")); n > 0 {
		for range n {
			data := make([]byte, 256<<10)
			rand.Read(data)
			id, err := node.Add(ctx, bytes.NewReader(data))
			if err != nil {
				natReport("fail", err.Error())
				t.Fatal(err)
			}
			natReport("cid", id.String())
		}
	}
	return node
}

// callNATTarget is node B of TestNATRendezvous: it reaches TARGET (a peer
// ID) and, round after round, calls it and fetches each of CIDS from it.
func callNATTarget(t *testing.T, ctx context.Context, node *nube.Node) {
	target, err := peer.Decode(natEnv("TARGET"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := greet.At(node, target).Call(cctx, "B")
		cancel()
		if err == nil {
			break
		}
		natReport("retry", err.Error())
		if ctx.Err() != nil {
			natReport("fail", "never reached A: "+err.Error())
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	natReport("met", time.Since(start).Round(time.Millisecond).String())
	for i, c := range strings.Fields(natEnv("CIDS")) {
		// Forget A: this round must find it again through the DHT.
		node.Sys().Host().Network().ClosePeer(target)
		node.Sys().Host().Peerstore().ClearAddrs(target)
		round := time.Now()
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		call := func() error {
			got, err := greet.At(node, target).Call(rctx, "B")
			if err == nil && got != "hello, B" {
				err = fmt.Errorf("answered %q", got)
			}
			return err
		}
		fetch := func() error { return fetchNAT(rctx, node, c) }
		// Even rounds call first; odd rounds fetch first, so that the
		// fetch too must find A by itself.
		steps := []func() error{call, fetch}
		what := "call, then fetch"
		if i%2 == 1 {
			steps[0], steps[1], what = fetch, call, "fetch, then call"
		}
		for _, step := range steps {
			if err := step(); err != nil {
				var conns []string
				for _, c := range node.Sys().Host().Network().ConnsToPeer(target) {
					conns = append(conns, fmt.Sprintf("%s limited=%v", c.RemoteMultiaddr(), c.Stat().Limited))
				}
				natReport("state", fmt.Sprintf("%v to A, connections %v, A's addresses %v", node.Sys().Host().Network().Connectedness(target), conns, node.Sys().Host().Peerstore().Addrs(target)))
				cancel()
				natReport("fail", fmt.Sprintf("round %d (%s): %v", i, what, err))
				t.Fatalf("round %d (%s): %v", i, what, err)
			}
		}
		cancel()
		natReport("round", fmt.Sprintf("%s in %v, %s", what, time.Since(round).Round(time.Millisecond), linkKind(node, target)))
	}
}

// linkKind says whether n's connections to p go through a relay.
func linkKind(n *nube.Node, p peer.ID) string {
	for _, c := range n.Sys().Host().Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !strings.Contains(c.RemoteMultiaddr().String(), "p2p-circuit") {
			return "direct"
		}
	}
	return "relayed"
}

// isCircuit reports whether a is a relayed (p2p-circuit) address.
func isCircuit(a multiaddr.Multiaddr) bool {
	_, err := a.ValueForProtocol(multiaddr.P_CIRCUIT)
	return err == nil
}

func natReport(key, value string) { fmt.Printf("NAT %s %s\n", key, value) }

// TestConnectAfterStaleAddresses: a node whose known addresses for a peer
// no longer reach it (a record announced before the peer moved) still
// connects, by asking the DHT for the peer's addresses now.
func TestConnectAfterStaleAddresses(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.BootstrapOnly())
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(1), c.Node(2)
	stale, err := multiaddr.NewMultiaddr("/ip4/127.0.0.1/tcp/1")
	if err != nil {
		t.Fatal(err)
	}
	b.Sys().Host().Network().ClosePeer(a.ID())
	b.Sys().Host().Peerstore().ClearAddrs(a.ID())
	if err := b.Sys().Host().Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []multiaddr.Multiaddr{stale}}); err != nil {
		t.Fatalf("connect with a stale address: %v", err)
	}
	if got := b.Sys().Host().Network().Connectedness(a.ID()); got != network.Connected {
		t.Fatalf("after Connect: %v", got)
	}
}

// TestIdentifyFailedRedials: libp2p identifies a connection once, and the
// DHT takes in only peers that identify showed to speak it. When a node's
// identify of a peer it dialled fails, it dials the peer again, and the
// new connection's identify puts the peer back in the routing table. The
// failure is simulated: the peer's protocols are forgotten and the event
// libp2p emits for a failed identify is sent.
func TestIdentifyFailedRedials(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a, b := c.Node(0), c.Node(1)
	protos, err := a.Sys().Host().Peerstore().GetProtocols(b.ID())
	if err != nil || len(protos) == 0 {
		t.Fatalf("node 1's protocols: %v, %v", protos, err)
	}
	em, err := a.Sys().Host().EventBus().Emitter(new(event.EvtPeerIdentificationFailed))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := a.Sys().Host().Peerstore().RemoveProtocols(b.ID(), protos...); err != nil {
		t.Fatal(err)
	}
	a.Sys().DHT().RoutingTable().RemovePeer(b.ID())
	if err := em.Emit(event.EvtPeerIdentificationFailed{Peer: b.ID(), Reason: errors.New("test: identify failed")}); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool { return a.Sys().DHT().RoutingTable().Find(b.ID()) != "" },
		func() string { return "a peer whose identify failed never came back into the DHT's table" })
}
