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
// from peers banned for misbehaving until their ban ends. A ban is for
// proof of misbehaviour only, never for something an honest peer can do
// by accident, and it always ends: afterwards the peer is dialled and
// accepted as before, its addresses still known.
type banList struct {
	mu    sync.Mutex
	until map[peer.ID]time.Time
	now   func() time.Time // time.Now; tests move it
}

func (b *banList) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

func (b *banList) ban(p peer.ID, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = make(map[peer.ID]time.Time)
	}
	now := b.clock()
	for q, t := range b.until { // forget bans that ended
		if !now.Before(t) {
			delete(b.until, q)
		}
	}
	b.until[p] = now.Add(d)
}

func (b *banList) unban(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.until, p)
}

func (b *banList) banned(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[p]
	return ok && b.clock().Before(t)
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
// The peer's addresses are kept, so that once the ban ends it can be
// dialled again. Ban only on proof that p misbehaved.
func (h *Host) Ban(p peer.ID, d time.Duration) {
	h.bans.ban(p, d)
	h.Network().ClosePeer(p)
}

// Unban ends p's ban now.
func (h *Host) Unban(p peer.ID) { h.bans.unban(p) }

// Banned reports whether p is banned now.
func (h *Host) Banned(p peer.ID) bool { return h.bans.banned(p) }
