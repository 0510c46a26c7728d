package job

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
)

// coord is one job on its coordinator.
type coord struct {
	id   string
	spec Spec
	done chan struct{}

	mu     sync.Mutex
	st     Status
	log    []LogLine
	err    error
	result cid.Cid
}

func (c *coord) progress() Progress { c.mu.Lock(); defer c.mu.Unlock(); return c.st.Progress }
func (c *coord) status() Status     { c.mu.Lock(); defer c.mu.Unlock(); return c.st }
func (c *coord) logs() []LogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogLine(nil), c.log...)
}

func (c *coord) wait(ctx context.Context) (cid.Cid, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return cid.Undef, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result, c.err
}

func (c *coord) cancel(err error) {}

func (s Spec) withDefaults() (Spec, error) { return s, nil }

func (m *Manager) newCoord(ctx context.Context, s Spec) (*coord, error) {
	return &coord{spec: s, done: make(chan struct{})}, nil
}
func (m *Manager) start(c *coord) {}
func (m *Manager) resume() error  { return nil }
