package nube_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// ipfsPeer is a stand-in for a kubo node: a libp2p host on loopback with
// a DHT speaking the IPFS protocol (/ipfs/kad/1.0.0) and bitswap over a
// store of its own.
type ipfsPeer struct {
	h     host.Host
	dht   *dht.IpfsDHT
	store blockstore.Blockstore
	bs    *bitswap.Bitswap
}

func (p *ipfsPeer) info() peer.AddrInfo { return peer.AddrInfo{ID: p.h.ID(), Addrs: p.h.Addrs()} }

func (p *ipfsPeer) addr(t *testing.T) string {
	t.Helper()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: p.h.ID(), Addrs: p.h.Addrs()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0].String()
}

// newIPFSPeer starts an IPFS-style peer: a DHT server, or with client a
// DHT client (one that others' routing tables never hold, so it can only
// be found through the records it announces).
func newIPFSPeer(t *testing.T, ctx context.Context, client bool, boot ...peer.AddrInfo) *ipfsPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	mode := dht.ModeServer
	if client {
		mode = dht.ModeClient
	}
	kad, err := dht.New(h, dht.Mode(mode), dht.BootstrapPeers(boot...))
	if err != nil {
		t.Fatal(err)
	}
	p := &ipfsPeer{h: h, dht: kad, store: blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))}
	p.bs = bitswap.New(ctx, bsnet.NewFromIpfsHost(h), kad, p.store)
	t.Cleanup(func() {
		p.bs.Close()
		kad.Close()
		h.Close()
	})
	for _, b := range boot {
		if err := h.Connect(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if len(boot) > 0 {
		nubetest.Eventually(t, ctx, func() bool { return kad.RoutingTable().Size() > 0 },
			func() string { return "an IPFS peer's routing table stayed empty" })
	}
	return p
}

// privateIPFS starts n DHT servers that all know each other: the IPFS
// public DHT in miniature, on loopback.
func privateIPFS(t *testing.T, ctx context.Context, n int) []*ipfsPeer {
	t.Helper()
	first := newIPFSPeer(t, ctx, false)
	peers := []*ipfsPeer{first}
	for range n - 1 {
		peers = append(peers, newIPFSPeer(t, ctx, false, first.info()))
	}
	for _, p := range peers {
		for _, q := range peers {
			if p != q {
				if err := p.h.Connect(ctx, q.info()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	nubetest.Eventually(t, ctx, func() bool {
		for _, p := range peers {
			if p.dht.RoutingTable().Size() < n-1 {
				return false
			}
		}
		return true
	}, func() string { return "the private IPFS DHT's routing tables never filled" })
	return peers
}

// TestIPFSDHT joins a nube node to a private IPFS-style DHT, given only
// one server's address. The node fetches a CID that only an IPFS client
// provides (one it never connected to, found only through its provider
// record), and an IPFS client finds, and fetches over bitswap, a CID that
// only the nube node provides.
func TestIPFSDHT(t *testing.T) {
	ctx := nubetest.Context(t, 2*time.Minute)
	servers := privateIPFS(t, ctx, 4)
	node := nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, c *nube.Config) {
		c.NoIPFS = false
		c.IPFSBootstrap = []string{servers[0].addr(t)}
	})).Node(0)
	nubetest.Eventually(t, ctx, func() bool { return node.Status().IPFSRoutingTable > 0 },
		func() string { return "the node's IPFS DHT routing table stayed empty" })
	if node.Status().RoutingTable != 0 {
		t.Fatal("IPFS DHT servers entered the node's nube DHT routing table")
	}

	// A CID that lives only on the IPFS side, with a provider that no
	// routing table holds.
	provider := newIPFSPeer(t, ctx, true, servers[1].info())
	data := bytes.Repeat([]byte("from the IPFS network "), 1000)
	blk, _ := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, blocks.NewBlock(data).Cid().Hash()))
	if err := provider.store.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := provider.dht.Provide(ctx, blk.Cid(), true); err != nil {
		t.Fatalf("the IPFS peer's announcement: %v", err)
	}
	f, err := node.Get(ctx, blk.Cid())
	if err != nil {
		t.Fatalf("nube get of a CID only IPFS provides: %v", err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes (%v), want the %d the IPFS peer provides", len(got), err, len(data))
	}

	// And the other way: what the node adds, IPFS finds.
	mine := bytes.Repeat([]byte("from a nube node "), 1000)
	c, err := node.Add(ctx, bytes.NewReader(mine))
	if err != nil {
		t.Fatal(err)
	}
	seeker := newIPFSPeer(t, ctx, true, servers[2].info())
	// The node announces in the background; look until the record is
	// there.
	nubetest.Eventually(t, ctx, func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for ai := range seeker.dht.FindProvidersAsync(fctx, c, 1) {
			if ai.ID == node.ID() {
				return true
			}
		}
		return false
	}, func() string { return "the IPFS DHT never named the nube node as the provider of its content" })
	b, err := seeker.bs.GetBlock(ctx, c)
	if err != nil {
		t.Fatalf("an IPFS peer fetching the nube node's content: %v", err)
	}
	if !b.Cid().Equals(c) {
		t.Fatalf("got block %s, want %s", b.Cid(), c)
	}
}

// greet is a remote function for the rendezvous test.
var greet = remote.Func("test.rendezvous.greet", func(ctx context.Context, name string) (string, error) {
	return "hello, " + name, nil
})

// TestRendezvous starts two nodes of one network that know nothing but
// one server of a private IPFS-style DHT (no nube bootstrap, no mDNS):
// they find each other through the network's rendezvous on that DHT and
// call each other. A node of another network, on the same DHT, stays out
// of their DHT.
func TestRendezvous(t *testing.T) {
	ctx := nubetest.Context(t, 2*time.Minute)
	servers := privateIPFS(t, ctx, 3)
	start := func(network string, server int) *nube.Node {
		return nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, c *nube.Config) {
			c.NoIPFS = false
			c.Network = network
			c.IPFSBootstrap = []string{servers[server].addr(t)}
		})).Node(0)
	}
	a, b := start("team", 0), start("team", 1)
	if err := a.Sys().WaitConnected(ctx, b.ID()); err != nil {
		t.Fatalf("the two nodes of one network never met: %v", err)
	}
	for _, p := range []struct{ from, to *nube.Node }{{a, b}, {b, a}} {
		got, err := greet.At(p.from, p.to.ID()).Call(ctx, p.from.ID().String())
		if err != nil || got != "hello, "+p.from.ID().String() {
			t.Fatalf("call across the rendezvous: %q, %v", got, err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool { return a.Status().RoutingTable > 0 && b.Status().RoutingTable > 0 },
		func() string { return "the two nodes never entered each other's DHT" })
	if a.Status().Network != "team" {
		t.Fatalf("status names network %q", a.Status().Network)
	}

	// A stranger's network: it may meet them (any libp2p peer may dial
	// any other), but shares no DHT with them.
	other := start("other", 2)
	if _, err := other.Connect(ctx, a.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	// Once identify has told each the other's protocols, a DHT decides.
	nubetest.Eventually(t, ctx, func() bool {
		ps, _ := other.Sys().Host().Peerstore().GetProtocols(a.ID())
		qs, _ := a.Sys().Host().Peerstore().GetProtocols(other.ID())
		return len(ps) > 0 && len(qs) > 0
	}, func() string { return "identify never completed between the networks" })
	if <-other.Sys().DHT().ForceRefresh(); other.Status().RoutingTable != 0 || a.Sys().DHT().RoutingTable().Find(other.ID()) != "" {
		t.Fatalf("nodes of two networks share a DHT: %d peers in the stranger's table", other.Status().RoutingTable)
	}
}
