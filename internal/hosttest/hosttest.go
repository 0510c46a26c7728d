// Package hosttest gives a layer's tests bare libp2p hosts on loopback,
// connected to each other, so that content, remote and service can be
// tested with just the hosts they speak over (nubetest starts whole
// nodes). The hosts listen on 127.0.0.1 only and close when the test ends.
package hosttest

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Hosts starts n hosts on loopback TCP and connects every pair.
func Hosts(t testing.TB, n int) []host.Host {
	t.Helper()
	hs := make([]host.Host, n)
	for i := range hs {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range hs {
		for j := i + 1; j < n; j++ {
			if err := hs[i].Connect(ctx, peer.AddrInfo{ID: hs[j].ID(), Addrs: hs[j].Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return hs
}
