package nube_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"

	"github.com/nubecloud/nube/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/wire"
)

// TestRelay: node B is reachable only through relay R (a node started with
// RelayService). A connects to B through R's circuit address, and a framed
// message crosses the relayed connection both ways.
func TestRelay(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.RelayService = i == 0
	}))
	ctx := ctxT(t, time.Minute)
	r, b, a := c.Node(0), c.Node(1), c.Node(2)
	if !r.Status().RelayService || b.Status().RelayService {
		t.Fatal("RelayService not reported as configured")
	}
	// A must not be able to reach B directly.
	a.Host().Network().ClosePeer(b.ID())
	a.Host().Peerstore().ClearAddrs(b.ID())
	a.Host().ConnManager().Protect(r.ID(), "test")

	if _, err := client.Reserve(ctx, b.Host(), r.AddrInfo()); err != nil {
		t.Fatalf("B reserving a slot on R: %v", err)
	}
	proto := wire.Protocol("test-echo", 1)
	b.Host().SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		ws := wire.NewStream(s)
		var m string
		if err := ws.Recv(context.Background(), &m); err == nil {
			ws.Send(context.Background(), "echo: "+m)
		}
	})

	circuit := "/p2p/" + r.ID().String() + "/p2p-circuit/p2p/" + b.ID().String()
	if _, err := a.Connect(ctx, circuit); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	relayed := false
	for _, pi := range a.Peers() {
		if pi.ID == b.ID().String() {
			relayed = pi.Relayed
		}
	}
	if !relayed {
		t.Fatal("A's connection to B is not marked relayed")
	}
	s, err := a.Host().NewStream(network.WithAllowLimitedConn(ctx, "test"), b.ID(), proto)
	if err != nil {
		t.Fatalf("stream over the relayed connection: %v", err)
	}
	defer s.Close()
	ws := wire.NewStream(s)
	if err := ws.Send(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := ws.Recv(ctx, &got); err != nil || got != "echo: hi" {
		t.Fatalf("echo over the relay = %q, %v", got, err)
	}
}
