package p2p

import (
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"
)

// Nodes of one nube network find each other across the internet with no
// server of nube's own: each announces the network's rendezvous CID on the
// IPFS public DHT, as if it provided that content, and looks up who else
// does. A node that meets one other nube node then finds the rest through
// nube's own DHT. A network's name keeps its nodes apart from other
// networks': its own rendezvous CID, and its own DHT protocol.

// DefaultNetwork is the network nodes join unless told another.
const DefaultNetwork = "nube"

// networkName is what a network's name may be: it goes into protocol IDs.
var networkName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// CheckNetwork reports whether name can name a network.
func CheckNetwork(name string) error {
	if !networkName.MatchString(name) {
		return fmt.Errorf("network name %q: want 1 to 32 lower-case letters, digits or dashes, starting with a letter or digit", name)
	}
	return nil
}

// RendezvousCID is the CID whose providers on the IPFS DHT are the nodes
// of the network name: a raw CID of the SHA-256 of "nube network " + name,
// content nobody has.
func RendezvousCID(name string) cid.Cid {
	sum := sha256.Sum256([]byte("nube network " + name))
	h, _ := mh.Encode(sum[:], mh.SHA2_256) // a 32-byte digest always encodes
	return cid.NewCidV1(cid.Raw, h)
}

// dhtPrefix is the protocol prefix of the network's DHT: DHTPrefix for the
// default network, DHTPrefix/name for any other.
func dhtPrefix(name string) protocol.ID {
	if name == "" || name == DefaultNetwork {
		return DHTPrefix
	}
	return DHTPrefix + "/" + protocol.ID(name)
}

// How often a node looks for, and announces itself to, its network on the
// IPFS DHT. Provider records there live 48 hours.
const (
	rendezvousLonely   = 30 * time.Second // while it knows no node of its network
	rendezvousEvery    = 10 * time.Minute // once it does
	rendezvousAnnounce = 12 * time.Hour
	rendezvousMaxWait  = 30 * time.Second // for the IPFS DHT to have peers
)

// rendezvous finds the network's nodes on the IPFS DHT and announces this
// one there, until the host closes.
func (h *Host) rendezvous(name string) {
	defer h.wg.Done()
	key := RendezvousCID(name)
	var announced time.Time
	wait := time.Second
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		switch {
		case h.IPFS.RoutingTable().Size() == 0:
			// Not on the IPFS DHT yet (or offline): look again soon.
			wait = min(2*wait, rendezvousMaxWait)
		default:
			if time.Since(announced) > rendezvousAnnounce {
				ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
				if err := h.IPFS.Provide(ctx, key, true); err != nil {
					h.log.Debug("rendezvous: announce", "network", name, "err", err)
				} else {
					announced = time.Now()
				}
				cancel()
			}
			met := h.meet(key)
			wait = rendezvousEvery
			if h.DHT.RoutingTable().Size() == 0 {
				wait = rendezvousLonely
			}
			h.log.Debug("rendezvous", "network", name, "met", met, "next", wait)
		}
		t.Reset(wait)
	}
}

// meet connects to the providers of key that the node is not connected
// to, and returns how many it reached.
func (h *Host) meet(key cid.Cid) int {
	ctx, cancel := context.WithTimeout(h.ctx, time.Minute)
	defer cancel()
	met := 0
	for ai := range h.IPFS.FindProvidersAsync(ctx, key, 20) {
		if ai.ID == h.ID() || h.Network().Connectedness(ai.ID) == network.Connected || len(ai.Addrs) == 0 {
			continue
		}
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		if err := h.Host.Connect(dctx, ai); err != nil {
			h.log.Debug("rendezvous: dial", "peer", ai.ID, "err", err)
		} else {
			met++
		}
		dcancel()
	}
	return met
}
