package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// banList is the host's connection gater: it refuses connections to and
// from peers banned for misbehaving (a peer that sends forged content, for
// instance) until their ban ends.
type banList struct {
	mu    sync.Mutex
	until map[peer.ID]time.Time
}

func (b *banList) ban(p peer.ID, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = make(map[peer.ID]time.Time)
	}
	now := time.Now()
	for q, t := range b.until { // forget bans that ended
		if now.After(t) {
			delete(b.until, q)
		}
	}
	b.until[p] = now.Add(d)
}

func (b *banList) banned(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[p]
	return ok && time.Now().Before(t)
}

func (b *banList) InterceptPeerDial(p peer.ID) bool                 { return !b.banned(p) }
func (b *banList) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !b.banned(p) }
func (b *banList) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (b *banList) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
func (b *banList) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !b.banned(p)
}

// Ban cuts every connection to p and refuses new ones, both ways, for d.
func (h *Host) Ban(p peer.ID, d time.Duration) {
	h.bans.ban(p, d)
	h.Network().ClosePeer(p)
	h.Peerstore().RemovePeer(p)
}

// Banned reports whether p is banned now.
func (h *Host) Banned(p peer.ID) bool { return h.bans.banned(p) }
