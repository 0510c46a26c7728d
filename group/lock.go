package group

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Lock is a lock held in a group. Its lease is renewed in the background
// while the holder lives and reaches the leader; if the holder dies or is
// cut off, the lease ends after the group's LockTTL and another member may
// take the lock. Each acquisition has a fencing token larger than every
// earlier one: pass it to what the lock guards, so that a holder that lost
// the lock without knowing it is refused there.
type Lock struct {
	g      *Group
	name   string
	holder string
	token  uint64

	cancel context.CancelFunc
	done   chan struct{}
	lost   chan struct{}

	mu       sync.Mutex
	deadline time.Time // the holder's own view of when the lease ends
}

// Lock takes the lock name, waiting while another holds it, until ctx
// ends.
func (g *Group) Lock(ctx context.Context, name string) (*Lock, error) {
	if err := checkKey(name); err != nil {
		return nil, err
	}
	holder := g.self.String() + "/" + hex.EncodeToString(newID()[:8])
	for {
		sent := time.Now()
		r, err := g.writeCmd(ctx, command{Op: opLock, Key: name, Holder: holder, TTL: int64(g.lockTTL)})
		if err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		if r.OK {
			l := &Lock{g: g, name: name, holder: holder, token: r.Token, done: make(chan struct{}), lost: make(chan struct{}),
				deadline: sent.Add(g.lockTTL)}
			var lctx context.Context
			lctx, l.cancel = context.WithCancel(context.Background())
			go l.keep(lctx)
			return l, nil
		}
		// Held: wait until the lock changes on this member, or until its
		// lease could have ended, and try again.
		if err := g.waitLock(ctx, name, r.Token, time.Duration(r.Expires-time.Now().UnixNano())); err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
	}
}

// waitLock waits until the lock name is no longer held with token on this
// member, or for at most d (the lease's time left).
func (g *Group) waitLock(ctx context.Context, name string, token uint64, d time.Duration) error {
	t := time.NewTimer(min(max(d, 10*time.Millisecond), g.lockTTL))
	defer t.Stop()
	for {
		changed := g.fsm.next()
		if l, ok := g.fsm.lock(name); !ok || l.Token != token {
			return nil
		}
		select {
		case <-changed:
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-g.trans.ctx.Done():
			return ErrClosed
		}
	}
}

// Token returns the lock's fencing token: the log index of its acquisition.
func (l *Lock) Token() uint64 { return l.token }

// Lost is closed when the lock's lease ended without the holder letting
// go: stop using what it guards.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Deadline is when the lease ends unless renewed, by the holder's clock.
func (l *Lock) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// keep renews the lease every third of its time until Unlock or loss.
func (l *Lock) keep(ctx context.Context) {
	defer close(l.done)
	every := l.g.lockTTL / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.g.trans.ctx.Done():
			close(l.lost) // the group closed on this node: nothing renews
			return
		case <-t.C:
		}
		deadline := l.Deadline()
		if time.Now().After(deadline) {
			close(l.lost)
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, deadline)
		r, err := l.g.writeCmd(rctx, command{Op: opLock, Key: l.name, Holder: l.holder, Token: l.token, TTL: int64(l.g.lockTTL)})
		cancel()
		switch {
		case err == nil && r.OK:
			l.mu.Lock()
			l.deadline = sent.Add(l.g.lockTTL)
			l.mu.Unlock()
			t.Reset(every)
		case err == nil || time.Now().After(deadline):
			close(l.lost) // the leader says the lease ended, or it has by our clock
			return
		default:
			t.Reset(min(every, time.Until(deadline)/2+time.Millisecond))
		}
	}
}

// Unlock lets the lock go. It returns ErrLockLost if the lease had ended.
func (l *Lock) Unlock(ctx context.Context) error {
	l.cancel()
	<-l.done
	select {
	case <-l.lost:
		return fmt.Errorf("unlock %q: %w", l.name, ErrLockLost)
	default:
	}
	r, err := l.g.writeCmd(ctx, command{Op: opUnlock, Key: l.name, Holder: l.holder, Token: l.token})
	if err != nil {
		return fmt.Errorf("unlock %q: %w", l.name, err)
	}
	if !r.OK {
		return fmt.Errorf("unlock %q: %w", l.name, ErrLockLost)
	}
	return nil
}
