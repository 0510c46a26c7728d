package p2p

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestBanEnds checks that a ban refuses the peer both ways while it lasts
// and lets it through again, with no other step, once its time is up.
func TestBanEnds(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := &banList{now: func() time.Time { return now }}
	p, q := peer.ID("peer-p"), peer.ID("peer-q")
	b.ban(p, 10*time.Minute)
	if !b.banned(p) || b.InterceptPeerDial(p) || b.InterceptAddrDial(p, nil) || b.InterceptSecured(0, p, nil) {
		t.Fatal("a banned peer was let through")
	}
	if b.banned(q) || !b.InterceptPeerDial(q) {
		t.Fatal("a peer nobody banned was refused")
	}
	now = now.Add(10*time.Minute - time.Second)
	if !b.banned(p) {
		t.Fatal("the ban ended early")
	}
	now = now.Add(time.Second)
	if b.banned(p) || !b.InterceptPeerDial(p) || !b.InterceptSecured(0, p, nil) {
		t.Fatal("the ban did not end on time")
	}
	// An ended ban is forgotten at the next ban, so the list cannot grow
	// without bound.
	b.ban(q, time.Minute)
	if _, ok := b.until[p]; ok || len(b.until) != 1 {
		t.Fatalf("ended bans kept: %v", b.until)
	}
	b.unban(q)
	if b.banned(q) {
		t.Fatal("Unban left the ban in place")
	}
}
