package ledger

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
)

// The door: what a ledger node checks before it proposes a transaction,
// so that what the members would refuse as they apply it never reaches
// the log (each entry is replicated and synced to disk on every member).

// DefaultSubmitRate is how many transactions a second a ledger node takes
// from one peer unless Config.SubmitRate says otherwise; as many may come
// at once after a quiet second.
const DefaultSubmitRate = 500

// limiter is a token bucket per peer: rate tokens a second, at most burst
// saved up. It forgets peers whose bucket has filled again, and bounds how
// many it remembers.
type limiter struct {
	rate, burst float64
	now         func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the peers a limiter remembers: past it, the full
// buckets are forgotten first, then any.
const maxBuckets = 4096

func newLimiter(rate int, now func() time.Time) *limiter {
	return &limiter{rate: float64(rate), burst: float64(rate), now: now, peers: map[peer.ID]*bucket{}}
}

// allow takes a token of p's, if it has one.
func (l *limiter) allow(p peer.ID) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.peers[p]
	if b == nil {
		if len(l.peers) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.peers[p] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the peers whose buckets are full again, and if none is,
// one at random; l.mu is held.
func (l *limiter) sweep(now time.Time) {
	for p, b := range l.peers {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.peers, p)
		}
	}
	for p := range l.peers {
		if len(l.peers) < maxBuckets {
			break
		}
		delete(l.peers, p)
	}
}

// errBusy is the door's answer to a peer past its rate.
func errBusy(p peer.ID, rate float64) error {
	return fmt.Errorf("%w: %s submits more than %.0f transactions a second to this ledger node", errcode.ErrBusy, p, rate)
}
