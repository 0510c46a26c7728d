package topic

import (
	"strconv"
	"testing"
	"time"
)

// TestRecentKeys: the filter never calls a key stored within the dedup
// window absent, across generations, and calls nothing absent until a
// window has passed since it began; most keys never stored are absent.
func TestRecentKeys(t *testing.T) {
	w := int64(DedupWindow)
	start := int64(1000 * time.Hour)
	r := newRecentKeys(start)
	if r.absent("never", start+w/2) {
		t.Fatal("absent before a window passed since the filter began")
	}
	// 40000 keys over three windows, one every few ms of log time.
	const n = 40000
	step := 3 * w / n
	now := start
	for i := range n {
		now = start + int64(i)*step
		r.add("k"+strconv.Itoa(i), now)
	}
	for i := range n {
		at := start + int64(i)*step
		if at >= now-w && r.absent("k"+strconv.Itoa(i), now) {
			t.Fatalf("key %d stored %v before now, within the window, called absent", i, time.Duration(now-at))
		}
	}
	absent := 0
	for i := range 10000 {
		if r.absent("other"+strconv.Itoa(i), now) {
			absent++
		}
	}
	if absent < 9000 {
		t.Fatalf("%d of 10000 keys never stored called absent, want most", absent)
	}
}
