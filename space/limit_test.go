package space

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLimiter runs the token buckets through a table: two deep, one more
// a minute; a take of several keys takes from all or none.
func TestLimiter(t *testing.T) {
	const a, b, c peer.ID = "a", "b", "c"
	steps := []struct {
		at   time.Duration // since the start
		keys []peer.ID
		who  peer.ID // refused for, or "" if taken
		wait time.Duration
	}{
		{0, []peer.ID{a}, "", 0},
		{0, []peer.ID{a}, "", 0},
		{0, []peer.ID{a}, a, time.Minute},
		{0, []peer.ID{b}, "", 0},
		{0, []peer.ID{c, a}, a, time.Minute}, // c takes nothing either
		{0, []peer.ID{c}, "", 0},
		{0, []peer.ID{c}, "", 0},
		{0, []peer.ID{c}, c, time.Minute},
		{30 * time.Second, []peer.ID{a}, a, 30 * time.Second},
		{time.Minute, []peer.ID{a}, "", 0},
		{time.Minute, []peer.ID{a}, a, time.Minute},
		{time.Minute, []peer.ID{b}, "", 0}, // b had one back, and is full
		{time.Minute, []peer.ID{b}, "", 0},
		{time.Minute, []peer.ID{b}, b, time.Minute},
		{time.Hour, []peer.ID{a, b}, "", 0},
		{time.Hour, []peer.ID{a, b}, "", 0},
		{time.Hour, []peer.ID{b, a}, b, time.Minute},
	}
	start := time.Unix(1e9, 0)
	now := start
	l := newLimiter(2, time.Minute)
	l.now = func() time.Time { return now }
	for i, s := range steps {
		now = start.Add(s.at)
		who, wait := l.take(s.keys)
		if who != s.who || wait != s.wait {
			t.Fatalf("step %d: take(%v) at %v = %q, %v; want %q, %v", i, s.keys, s.at, who, wait, s.who, s.wait)
		}
	}
	// Full buckets take no room.
	now = start.Add(2 * time.Hour)
	l.take(nil)
	if len(l.full) != 0 {
		t.Fatalf("%d buckets kept once all were full again", len(l.full))
	}
}
