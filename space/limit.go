package space

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// limiter paces what several keys do: a token bucket per key, burst
// tokens deep, one more each every. A bucket is kept as the time it will
// be full again (the generic cell rate algorithm), so a key whose bucket
// is full takes no memory.
type limiter struct {
	burst int
	every time.Duration
	now   func() time.Time // time.Now; tests set their own

	mu   sync.Mutex
	full map[peer.ID]time.Time // when each bucket is full again
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: burst, every: every, now: time.Now, full: map[peer.ID]time.Time{}}
}

// take takes a token from the bucket of each of keys, all or none. If
// one has none, it returns that key and how long until it has one.
func (l *limiter) take(keys []peer.ID) (peer.ID, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k, f := range l.full {
		if !f.After(now) {
			delete(l.full, k)
		}
	}
	window := time.Duration(l.burst) * l.every
	next := func(k peer.ID) time.Time {
		f, ok := l.full[k]
		if !ok || f.Before(now) {
			f = now
		}
		return f.Add(l.every)
	}
	for _, k := range keys {
		if wait := next(k).Sub(now) - window; wait > 0 {
			return k, wait
		}
	}
	for _, k := range keys {
		l.full[k] = next(k)
	}
	return "", 0
}
