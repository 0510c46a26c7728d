package nube_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/netns"
	"github.com/nubecloud/nube/nubetest"
)

// TestHolePunch is bench/nat.sh's finding kept in CI: on an internet in
// miniature (internal/netns), A and B sit behind home routers that
// masquerade and drop unsolicited packets, and know only relay R. B
// reaches A through R. Where both NATs are cone (one public address per
// host, whatever the destination), DCUtR must open a direct connection,
// over QUIC alone and over TCP alone; new streams must take it, the
// relayed connection must then be closed, and a fetch must work. Where B's
// NAT is symmetric no punch gets through, and a fetch must work through R.
//
// Each case has an internet of its own, every node the test binary itself
// in its namespace (as in TestNATRendezvous). The cases run side by side:
// each step starts a process in every case before it waits for any, so
// the waits overlap (the longest: A's reservation on R, which waits for
// AutoNAT's first check, 15 s after a node starts), whatever -parallel is.
// It needs Linux, root, iproute2 and nftables, and skips without them.
func TestHolePunch(t *testing.T) {
	if role := os.Getenv(natRole); role != "" {
		playNATRole(t, role)
		return
	}
	if testing.Short() {
		t.Skip("builds three internets of namespaces and takes half a minute; skipped in -short mode (the plain run has it)")
	}
	cases := []*punchCase{
		{name: "cone-cone-quic", transport: "quic", kindB: netns.Cone},
		{name: "cone-cone-tcp", transport: "tcp", kindB: netns.Cone},
		{name: "cone-symmetric-tcp", transport: "tcp", kindB: netns.Symmetric},
	}
	ctx := nubetest.Context(t, 3*time.Minute)
	for _, c := range cases {
		c.net = netns.NewNet(t)
		c.homeA = c.net.Home("a", "11.0.0.2", netns.Cone)
		c.homeB = c.net.Home("b", "11.0.0.3", c.kindB)
		c.relay = c.start(t, netns.Internet, "node", "RELAY=1",
			"LISTEN=/ip4/11.0.0.1/tcp/4001 /ip4/11.0.0.1/udp/4001/quic-v1")
	}
	for _, c := range cases {
		// A and B know R only by its address on their transport: a node
		// learns its public address from what peers observe of its
		// connections from its listen port, and it would dial R by QUIC
		// (which libp2p prefers), from another port, if it knew R's QUIC
		// address first.
		idR := c.relay.wait(t, ctx, "id")
		c.listen, c.r = "LISTEN=/ip4/0.0.0.0/tcp/4001", "/ip4/11.0.0.1/tcp/4001/p2p/"+idR
		if c.transport == "quic" {
			c.listen, c.r = "LISTEN=/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/11.0.0.1/udp/4001/quic-v1/p2p/"+idR
		}
		c.a = c.start(t, c.homeA, "node", c.listen, "BOOTSTRAP="+c.r, "FILES=1")
	}
	for _, c := range cases {
		idA := c.a.wait(t, ctx, "id")
		cid := c.a.wait(t, ctx, "cid")
		// B can reach A through R only once A holds a reservation there.
		t.Logf("%s: A has a circuit address through R %s its start", c.name, c.a.wait(t, ctx, "circuit"))
		direct := "0"
		if c.kindB == netns.Cone {
			direct = "1"
		}
		c.b = c.start(t, c.homeB, "punch", c.listen, "BOOTSTRAP="+c.r,
			"TARGET="+c.r+"/p2p-circuit/p2p/"+idA, "CID="+cid, "DIRECT="+direct)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Logf("B can hole-punch %s its start", c.b.wait(t, ctx, "dcutr"))
			if c.kindB == netns.Cone {
				t.Logf("direct connection %s", c.b.wait(t, ctx, "direct"))
				t.Logf("relayed connection closed %s", c.b.wait(t, ctx, "unrelayed"))
			}
			t.Logf("fetch: %s", c.b.wait(t, ctx, "fetched"))
			if err := c.b.end(ctx); err != nil {
				t.Fatalf("node B: %v\n%s", err, c.b.output())
			}
		})
	}
}

// punchCase is one case of TestHolePunch: A behind a cone NAT, B behind
// one of kindB, both listening on transport alone.
type punchCase struct {
	name         string
	transport    string // "quic" or "tcp"
	kindB        netns.NAT
	net          *netns.Net
	homeA, homeB string // the hosts' namespaces
	listen       string // A's and B's LISTEN
	r            string // R's address on transport
	relay, a, b  *natProcess
}

// start starts a role in namespace ns of the case's internet, named for
// the case in the test's messages.
func (c *punchCase) start(t *testing.T, ns, role string, env ...string) *natProcess {
	t.Helper()
	p := startNATRole(t, c.net, ns, role, env...)
	p.role = c.name + " " + role
	return p
}

// punchNATTarget is node B of TestHolePunch. It waits until libp2p serves
// DCUtR (A asks for a punch once, when B's relayed connection comes in),
// connects to A at TARGET (its circuit addresses through R), and then, if
// DIRECT=1, waits for a direct connection to A, checks that a new stream
// takes it, that the relayed one is closed, and fetches CID; else it
// fetches CID and checks that only relayed connections carried it.
func punchNATTarget(t *testing.T, ctx context.Context, node *nube.Node) {
	fail := func(format string, args ...any) {
		t.Helper()
		natReport("fail", fmt.Sprintf(format, args...))
		t.Fatalf(format, args...)
	}
	ai, err := circuitAddrInfo(natEnv("TARGET"))
	if err != nil {
		fail("TARGET: %v", err)
	}
	h := node.Sys().Host()
	if err := waitProtocol(ctx, h, holepunch.Protocol, time.Minute); err != nil {
		fail("%v", err)
	}

	conns := watchConns(h, ai.ID)
	defer conns.close()
	waitConns := func(what string, ok func(direct, relayed int) bool) {
		t.Helper()
		if err := conns.wait(ctx, time.Minute, ok); err != nil {
			fail("%s: %v", what, err)
		}
	}

	dialed := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = h.Connect(cctx, ai)
	cancel()
	if err != nil {
		fail("connect to A through R: %v", err)
	}
	// The relayed connection stays open (relayedGrace) even if a punch
	// is quicker than Connect.
	if _, relayed := conns.count(); relayed == 0 {
		fail("connected to A, but not through R")
	}
	if natEnv("DIRECT") == "1" {
		waitConns("a direct connection", func(direct, _ int) bool { return direct > 0 })
		natReport("direct", fmt.Sprintf("%v after B dialled A through R", time.Since(dialed).Round(time.Millisecond)))
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s, err := h.NewStream(sctx, ai.ID, ping.ID)
		cancel()
		if err != nil {
			fail("new stream to A: %v", err)
		}
		over := s.Conn().RemoteMultiaddr()
		s.Reset()
		if isCircuit(over) {
			fail("a new stream to A went through R (%s) though a direct connection is open", over)
		}
		// The host closes the relayed connection once a direct one has
		// been open a while (p2p's relayedGrace).
		waitConns("the relayed connection closed", func(direct, relayed int) bool { return direct > 0 && relayed == 0 })
		natReport("unrelayed", fmt.Sprintf("%v after B dialled A through R", time.Since(dialed).Round(time.Millisecond)))
	}
	fetched := time.Now()
	if err := fetchNAT(ctx, node, natEnv("CID")); err != nil {
		direct, relayed := conns.count()
		fail("fetch from A (%d direct, %d relayed connections): %v", direct, relayed, err)
	}
	direct, relayed := conns.count()
	switch {
	case natEnv("DIRECT") == "1" && (direct == 0 || relayed > 0):
		fail("after the fetch: %d direct and %d relayed connections to A, want only direct ones", direct, relayed)
	case natEnv("DIRECT") != "1" && (direct > 0 || relayed == 0):
		fail("after the fetch: %d direct and %d relayed connections to A through a symmetric NAT, want only relayed ones", direct, relayed)
	}
	natReport("fetched", fmt.Sprintf("256 KiB in %v, %d direct and %d relayed connections to A", time.Since(fetched).Round(time.Millisecond), direct, relayed))
}

// peerConns watches a host's connections to one peer.
type peerConns struct {
	h       host.Host
	p       peer.ID
	changed chan struct{} // a connection to p opened or closed
	nb      *network.NotifyBundle
}

func watchConns(h host.Host, p peer.ID) *peerConns {
	w := &peerConns{h: h, p: p, changed: make(chan struct{}, 1)}
	wake := func(_ network.Network, c network.Conn) {
		if c.RemotePeer() == p {
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}
	w.nb = &network.NotifyBundle{ConnectedF: wake, DisconnectedF: wake}
	h.Network().Notify(w.nb)
	return w
}

func (w *peerConns) close() { w.h.Network().StopNotify(w.nb) }

// count returns the numbers of direct and relayed connections open to p.
func (w *peerConns) count() (direct, relayed int) {
	for _, c := range w.h.Network().ConnsToPeer(w.p) {
		if isCircuit(c.RemoteMultiaddr()) {
			relayed++
		} else {
			direct++
		}
	}
	return direct, relayed
}

// wait waits, for at most d, until ok holds of count: it checks again
// each time a connection to p opens or closes, so no change goes unseen.
func (w *peerConns) wait(ctx context.Context, d time.Duration, ok func(direct, relayed int) bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		direct, relayed := w.count()
		if ok(direct, relayed) {
			return nil
		}
		select {
		case <-w.changed:
		case <-ctx.Done():
			return fmt.Errorf("not within %v: %d direct and %d relayed connections", d, direct, relayed)
		}
	}
}

// fetchNAT reads the file c (256 KiB) from whichever peer has it.
func fetchNAT(ctx context.Context, node *nube.Node, c string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	f, err := node.Content().Get(ctx, c)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err == nil && n != 256<<10 {
		err = fmt.Errorf("%d bytes, not %d", n, 256<<10)
	}
	return err
}

// waitProtocol waits until h serves proto, for at most d.
func waitProtocol(ctx context.Context, h host.Host, proto protocol.ID, d time.Duration) error {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalProtocolsUpdated))
	if err != nil {
		return err
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !slices.Contains(h.Mux().Protocols(), proto) {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			return fmt.Errorf("%s not served within %v (libp2p serves it once it knows a public address of its own): %w", proto, d, ctx.Err())
		}
	}
	return nil
}

// circuitAddrInfo parses space-separated circuit addresses of one peer.
func circuitAddrInfo(s string) (peer.AddrInfo, error) {
	var addrs []multiaddr.Multiaddr
	for _, f := range strings.Fields(s) {
		m, err := multiaddr.NewMultiaddr(f)
		if err != nil {
			return peer.AddrInfo{}, err
		}
		addrs = append(addrs, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	if len(infos) != 1 {
		return peer.AddrInfo{}, fmt.Errorf("%d peers in %q, want one", len(infos), s)
	}
	return infos[0], nil
}
