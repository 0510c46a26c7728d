package nube_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/netns"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nubetest"
)

// TestRelay: A and B listen nowhere, as nodes behind strict NATs: neither
// can dial the other. Knowing only relay R, each takes a reservation on its
// own (auto-relay) and advertises a circuit address; A dials B at the
// address R holds for it and exchanges framed messages and pings with it
// over the relayed connection. (TestRelayFoundByDHT reaches B through a
// DHT lookup instead.)
//
// libp2p advertises circuit addresses only through relays with public
// addresses, so the test runs in a network namespace of its own where R
// listens on a public-looking address given to the loopback interface.
func TestRelay(t *testing.T) {
	t.Parallel()
	if !netns.Isolate(t) {
		return
	}
	ctx := nubetest.Context(t, time.Minute)
	r, a, b := publicRelay(t), listenNowhere(t), listenNowhere(t)
	if !r.Status().RelayService || b.Status().RelayService {
		t.Fatal("RelayService not reported as configured")
	}
	if got := b.Status().Reachability; got != "Private" {
		t.Errorf("a node that listens nowhere reports reachability %q, want Private", got)
	}
	waitRelayAddr(ctx, t, r, a, b)

	serveEcho(b)

	if len(a.Sys().Host().Network().ConnsToPeer(b.ID())) > 0 {
		t.Fatal("A is connected to B before dialling it: B must have dialled A, which listens nowhere")
	}
	ai := peer.AddrInfo{ID: b.ID(), Addrs: r.Sys().Host().Peerstore().Addrs(b.ID())}
	if !hasCircuit(ai.Addrs) {
		t.Fatalf("R holds no relay address for B: %v", ai.Addrs)
	}
	if err := a.Sys().Host().Connect(network.WithAllowLimitedConn(ctx, "test"), ai); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	// Neither listens, so every connection between them goes through R.
	conns := a.Sys().Host().Network().ConnsToPeer(b.ID())
	if len(conns) == 0 {
		t.Fatal("A has no connection to B after connecting")
	}
	for _, c := range conns {
		if !strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
			t.Fatalf("A reached B at %s, not through the relay", c.RemoteMultiaddr())
		}
		// A nube relay puts no byte or time limit on what it relays, so
		// every protocol runs over the connection, not only those that
		// accept a limited one.
		if c.Stat().Limited {
			t.Fatalf("the relayed connection is limited")
		}
	}

	if got, err := echo(network.WithAllowLimitedConn(ctx, "test"), a, b, "hi"); err != nil || got != "echo: hi" {
		t.Fatalf("echo over the relay = %q, %v", got, err)
	}
	if _, err := a.Ping(ctx, b.ID()); err != nil {
		t.Fatalf("ping over the relay: %v", err)
	}
}

// TestRelayFoundByDHT: B listens nowhere and A knows it by peer ID alone.
// Round after round, with their connection closed and B's addresses
// forgotten each time, A connects to B (the lookup goes through the
// relay, the one DHT server, which answers with B's circuit address) and
// opens new streams over the relayed connection. A lookup followed by
// streams over a relayed connection once stalled until the streams'
// deadlines.
func TestRelayFoundByDHT(t *testing.T) {
	t.Parallel()
	if !netns.Isolate(t) {
		return
	}
	ctx := nubetest.Context(t, 2*time.Minute)
	// The relay first, so that it closes last: closed first, it sent A's
	// and B's auto-relay dialling again while they closed, and a QUIC dial
	// that starts after libp2p's QUIC transports have closed opens one of
	// its own that nothing closes (goleak found its goroutines).
	r := publicRelay(t)
	a, b := listenNowhere(t), listenNowhere(t)
	waitRelayAddr(ctx, t, r, a, b)
	serveEcho(b)
	for round := range 4 {
		a.Sys().Host().Network().ClosePeer(b.ID())
		a.Sys().Host().Peerstore().ClearAddrs(b.ID())
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := a.Sys().Host().Connect(rctx, peer.AddrInfo{ID: b.ID()}); err != nil {
			cancel()
			t.Fatalf("round %d: connect to B by its peer ID: %v", round, err)
		}
		if !hasCircuit(a.Sys().Host().Peerstore().Addrs(b.ID())) {
			t.Errorf("round %d: the lookup gave no circuit address for B: %v", round, a.Sys().Host().Peerstore().Addrs(b.ID()))
		}
		for i := range 3 {
			if got, err := echo(rctx, a, b, "hi"); err != nil || got != "echo: hi" {
				cancel()
				t.Fatalf("round %d: echo %d on a new stream over the relay = %q, %v", round, i, got, err)
			}
		}
		cancel()
	}
}

// echoProtocol is a test protocol: one message in, "echo: " and it out.
var echoProtocol = wire.Protocol("test-echo", 1)

// serveEcho makes n answer echoProtocol.
func serveEcho(n *nube.Node) {
	n.Sys().Host().SetStreamHandler(echoProtocol, func(s network.Stream) {
		defer s.Close()
		ws := wire.NewStream(s)
		var m string
		if err := ws.Recv(context.Background(), &m); err == nil {
			ws.Send(context.Background(), "echo: "+m)
		}
	})
}

// echo sends m to b on a new echoProtocol stream from a and returns the
// answer.
func echo(ctx context.Context, a, b *nube.Node, m string) (string, error) {
	s, err := a.Sys().Host().NewStream(ctx, b.ID(), echoProtocol)
	if err != nil {
		return "", fmt.Errorf("new stream: %w", err)
	}
	defer s.Close()
	ws := wire.NewStream(s)
	if err := ws.Send(ctx, m); err != nil {
		return "", err
	}
	var got string
	err = ws.Recv(ctx, &got)
	return got, err
}

// publicRelay starts a relay on a public-looking address (11.0.0.1) given
// to the loopback interface of the test's own namespace: libp2p advertises
// circuit addresses only through relays with public addresses.
func publicRelay(t *testing.T) *nube.Node {
	const public = "11.0.0.1"
	netns.AddAddr(t, public+"/32")
	return nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, cfg *nube.Config) {
		cfg.RelayService = true
		cfg.ListenAddrs = []string{"/ip4/" + public + "/tcp/0", "/ip4/" + public + "/udp/0/quic-v1"}
	})).Node(0)
}

// listenNowhere starts a node that listens on no address, as one behind
// a strict NAT.
func listenNowhere(t *testing.T) *nube.Node {
	return nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, cfg *nube.Config) {
		cfg.ListenAddrs, cfg.NoListen = nil, true
	})).Node(0)
}

// waitRelayAddr connects each node to relay r and waits until it
// advertises a circuit address through r and r has learnt it (by
// identify push, a moment later: there is no event for that, so that
// part polls).
func waitRelayAddr(ctx context.Context, t *testing.T, r *nube.Node, nodes ...*nube.Node) {
	t.Helper()
	for _, n := range nodes {
		waitRelayAddrOf(ctx, t, r, n)
	}
}

func waitRelayAddrOf(ctx context.Context, t *testing.T, r, n *nube.Node) {
	t.Helper()
	addrs, err := n.Sys().Host().EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		t.Fatal(err)
	}
	defer addrs.Close()
	if _, err := n.Connect(ctx, r.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	for !hasCircuit(n.Addrs()) {
		select {
		case <-addrs.Out():
		case <-ctx.Done():
			t.Fatalf("%s never advertised a relay address; its addresses: %v", n.ID(), n.Addrs())
		}
	}
	nubetest.Eventually(t, ctx, func() bool { return hasCircuit(r.Sys().Host().Peerstore().Addrs(n.ID())) }, func() string {
		return fmt.Sprintf("relay never learnt %s's circuit address; it knows %v", n.ID(), r.Sys().Host().Peerstore().Addrs(n.ID()))
	})
}

func hasCircuit(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if strings.Contains(a.String(), "/p2p-circuit") {
			return true
		}
	}
	return false
}

func TestNoListenWithListenAddrs(t *testing.T) {
	t.Parallel()
	_, err := nube.Start(context.Background(), nube.Config{NoListen: true, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err == nil || !strings.Contains(err.Error(), "NoListen") {
		t.Fatalf("Start with NoListen and ListenAddrs: %v, want an error naming NoListen", err)
	}
}

// TestRelayedClosedOnceDirect: two nodes connected through a relay that
// then get a direct connection (as after a hole punch) drop the relayed
// one, so the relay carries nothing more for them, and keep talking.
func TestRelayedClosedOnceDirect(t *testing.T) {
	t.Parallel()
	if !netns.Isolate(t) {
		return
	}
	r := publicRelay(t)
	a := nubetest.Cluster(t, 1).Node(0) // reachable on loopback
	b := listenNowhere(t)
	ctx := nubetest.Context(t, time.Minute)
	waitRelayAddr(ctx, t, r, b)
	ai := peer.AddrInfo{ID: b.ID(), Addrs: r.Sys().Host().Peerstore().Addrs(b.ID())}
	if err := a.Sys().Host().Connect(ctx, ai); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	relayed := func() int {
		n := 0
		for _, c := range a.Sys().Host().Network().ConnsToPeer(b.ID()) {
			if strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
				n++
			}
		}
		return n
	}
	if relayed() == 0 {
		t.Fatal("A is not connected to B through the relay")
	}
	// B reaches A directly, as a hole punch would have it. (A plain
	// Connect would return at once: the relayed connection is a full one.)
	if err := b.Sys().Host().Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: a.ID(), Addrs: a.Sys().Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool { return relayed() == 0 }, func() string {
		return fmt.Sprintf("A still has %d relayed connections to B beside a direct one", relayed())
	})
	if _, err := a.Ping(ctx, b.ID()); err != nil {
		t.Fatalf("ping after the relayed connection closed: %v", err)
	}
}
