package nube

import (
	"cmp"
	"context"
	"crypto"
	"slices"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Sys is the node's plumbing: the libp2p host and its DHTs, the metrics
// registry, the user's signer, and controls over single peers. It is for
// programs and tests that reach under the layers, as tsnet's Server.Sys
// is.
//
// Sys is not stable: its methods follow the libraries below nube and the
// layers' needs, and change without notice between releases. A program
// that keeps to the layers' accessors (Content, Services, Groups, Spaces,
// Ledger, Remote) never needs it.
type Sys struct{ n *Node }

// Sys returns the node's plumbing. See Sys for what is (not) promised.
func (n *Node) Sys() Sys { return Sys{n} }

// UserKey returns the signer of the user the node runs for (an ed25519
// key). Layers that sign on the user's behalf use it; never send it
// anywhere. On a node that joined its user by invite it names the user
// but refuses to sign (ErrNoUserKey).
func (s Sys) UserKey() crypto.Signer { return s.n.signer }

// Host returns the node's libp2p host, for layers that speak their own
// protocols on it.
func (s Sys) Host() host.Host { return s.n.host }

// DHT returns the node's Kademlia DHT (the nube network's, not IPFS's).
func (s Sys) DHT() *dht.IpfsDHT { return s.n.host.DHT }

// IPFSDHT returns the node's client of the IPFS public DHT, or nil if the
// node stays off it (Config.NoIPFS).
func (s Sys) IPFSDHT() *dht.IpfsDHT { return s.n.host.IPFS }

// Metrics returns the registry holding the node's Prometheus metrics.
func (s Sys) Metrics() *prometheus.Registry { return s.n.reg }

// AddrInfo returns the node's peer ID with its listen addresses.
func (s Sys) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: s.n.host.ID(), Addrs: s.n.host.Addrs()}
}

// FindPeer returns p's addresses, looking it up in the DHT when it is not
// connected.
func (s Sys) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	return s.n.host.FindPeer(ctx, p)
}

// WaitConnected waits until the node has a connection to p or ctx ends.
func (s Sys) WaitConnected(ctx context.Context, p peer.ID) error {
	return s.n.host.WaitConnected(ctx, p)
}

// Ban cuts every connection to p and refuses new ones, both ways, for d.
// The peer's addresses are kept, so that once the ban ends it can be
// dialled again. Ban only on proof that p misbehaved.
func (s Sys) Ban(p peer.ID, d time.Duration) { s.n.host.Ban(p, d) }

// Unban ends p's ban now.
func (s Sys) Unban(p peer.ID) { s.n.host.Unban(p) }

// Banned reports whether p is banned now.
func (s Sys) Banned(p peer.ID) bool { return s.n.host.Banned(p) }

// Traffic is what the node has sent and received over libp2p: bytes since
// it started, and rates over the last seconds, in all and per protocol.
type Traffic struct {
	In        int64             `json:"in"`
	Out       int64             `json:"out"`
	RateIn    float64           `json:"rate_in"`  // bytes per second
	RateOut   float64           `json:"rate_out"` // bytes per second
	Protocols []ProtocolTraffic `json:"protocols"`
}

// ProtocolTraffic is one protocol's share of the Traffic.
type ProtocolTraffic struct {
	Protocol string  `json:"protocol"`
	In       int64   `json:"in"`
	Out      int64   `json:"out"`
	RateIn   float64 `json:"rate_in"`
	RateOut  float64 `json:"rate_out"`
}

// Traffic returns the node's traffic, protocols sorted by bytes moved.
func (s Sys) Traffic() Traffic {
	total, by := s.n.host.Bandwidth()
	t := Traffic{In: total.TotalIn, Out: total.TotalOut, RateIn: total.RateIn, RateOut: total.RateOut,
		Protocols: make([]ProtocolTraffic, 0, len(by))}
	for p, st := range by {
		t.Protocols = append(t.Protocols, ProtocolTraffic{Protocol: string(p), In: st.TotalIn, Out: st.TotalOut, RateIn: st.RateIn, RateOut: st.RateOut})
	}
	slices.SortFunc(t.Protocols, func(a, b ProtocolTraffic) int {
		return cmp.Compare(b.In+b.Out, a.In+a.Out)
	})
	return t
}
