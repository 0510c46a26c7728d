package wasm

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"time"
)

// The virtual clock of deterministic runs: wall time starts at
// virtualEpoch, monotonic time at 0, and both advance by clockStep at
// each reading and by the time asked at each sleep, which returns at once.
const (
	clockStep    = int64(time.Millisecond)
	virtualEpoch = int64(1640995200) * int64(time.Second) // 2022-01-01T00:00:00Z, as wazero's fake clock
)

// virtualClock is one deterministic instance's clock. Only the instance's
// goroutine reads it.
type virtualClock struct{ elapsed int64 }

func (c *virtualClock) nanotime() int64 {
	t := c.elapsed
	c.elapsed += clockStep
	return t
}

func (c *virtualClock) walltime() (sec int64, nsec int32) {
	t := virtualEpoch + c.nanotime()
	return t / int64(time.Second), int32(t % int64(time.Second))
}

// sleep moves the clock on instead of waiting: a deterministic run's
// sleeps take no time, and what the module sees is the same.
func (c *virtualClock) sleep(ns int64) {
	c.elapsed += min(max(ns, 0), maxElapsed-c.elapsed)
}

// maxElapsed keeps the virtual wall time from overflowing, however long
// a module sleeps.
const maxElapsed = 1 << 62

// seededRand is the random stream of a deterministic run: ChaCha8 keyed
// with the SHA-256 of seed.
func seededRand(seed []byte) io.Reader {
	return rand.NewChaCha8(sha256.Sum256(seed))
}
