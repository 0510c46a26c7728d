package topic

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBadCommandFailsAlone: a command out of the log's bounds gets an
// error of its own; the commands beside it in the entry are applied.
func TestBadCommandFailsAlone(t *testing.T) {
	r := newReviewLog(t)
	const now = int64(1_000_000_000_000)
	out := r.apply(now,
		command{Op: opAppend, Raw: []byte("a")},
		command{Op: opAck, Consumer: strings.Repeat("x", maxConsumerName+1), Worker: "w"},
		command{Op: opFetch, Consumer: "q", Worker: "w", Max: 1, Wait: -1},
		command{Op: opAppend, Raw: []byte("b")},
	)
	if out[1].Err == "" || out[2].Err == "" {
		t.Fatalf("out-of-bounds commands applied: %+v", out[1:3])
	}
	if out[0].Err != "" || out[3].Err != "" || out[3].Offset != out[0].Offset+1 {
		t.Fatalf("the honest appends beside them: %+v, %+v", out[0], out[3])
	}
}

// TestStoreTimeWindow: a holder stores a message stamped within its
// window and refuses one from before the dedup window (a replay whose
// key the log may have forgotten) or far ahead.
func TestStoreTimeWindow(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		at time.Time
		ok bool
	}{
		{now, true},
		{now.Add(-maxStoreAge + time.Second), true},
		{now.Add(-DedupWindow), false},
		{now.Add(-time.Hour), false},
		{now.Add(maxFuture - time.Second), true},
		{now.Add(2 * maxFuture), false},
	} {
		err := checkStoreTime(&record{Time: c.at.UnixNano()}, now)
		if (err == nil) != c.ok {
			t.Errorf("stamped %v from now: %v", c.at.Sub(now), err)
		}
	}
	if maxStoreAge+maxFuture >= DedupWindow {
		t.Errorf("a message %v behind plus %v ahead outlives the dedup window %v", maxStoreAge, maxFuture, DedupWindow)
	}
}

// TestAckRemovesOnlyAcked: an ack drops the offsets it names from the
// pending ones, and only those.
func TestAckRemovesOnlyAcked(t *testing.T) {
	var ps []pending
	for o := uint64(1); o <= 10; o++ {
		ps = append(ps, pending{Off: o})
	}
	left := removeAcked(ps, []uint64{9, 2, 2, 42, 5})
	var offs []uint64
	for _, p := range left {
		offs = append(offs, p.Off)
	}
	if want := []uint64{1, 3, 4, 6, 7, 8, 10}; !slices.Equal(offs, want) {
		t.Fatalf("left %v, want %v", offs, want)
	}
}
