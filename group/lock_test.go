package group_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

// TestLockExclusive has every member take and release one lock over and
// over: never two holders at once, and each acquisition's fencing token is
// above every earlier one.
func TestLockExclusive(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, 3)
	ctx := nubetest.Context(t, 2*time.Minute)
	gs := ms.form(t, ctx, "locks", group.Options{LockTTL: 2 * time.Second})
	waitLeader(t, ctx, gs...)
	var holders atomic.Int32
	var mu sync.Mutex
	var last uint64
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				l, err := g.Lock(ctx, "printer")
				if err != nil {
					t.Error(err)
					return
				}
				if n := holders.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				mu.Lock()
				if l.Token() <= last {
					t.Errorf("token %d after %d", l.Token(), last)
				}
				last = l.Token()
				mu.Unlock()
				holders.Add(-1)
				if err := l.Unlock(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestLockHolderKilled kills the member holding a lock: another member
// gets it once the lease has run out (by the dead holder's own clock, so
// never while the holder could still believe it held it), with a larger
// fencing token.
func TestLockHolderKilled(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, 3)
	ctx := nubetest.Context(t, 2*time.Minute)
	ttl := 2 * time.Second
	gs := ms.form(t, ctx, "lease", group.Options{LockTTL: ttl})
	waitLeader(t, ctx, gs...)
	held, err := gs[0].Lock(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	// The lease is renewed: the lock stays held well past one TTL.
	renewed := time.Now().Add(ttl + ttl/2)
	nubetest.Eventually(t, ctx, func() bool { return held.Deadline().After(renewed) }, func() string {
		return fmt.Sprintf("lease not renewed: deadline %v", held.Deadline())
	})
	got := make(chan *group.Lock, 1)
	go func() {
		l, err := gs[1].Lock(ctx, "job")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	// Let member 1's first try reach the leader and be refused.
	if _, err := gs[2].Put(ctx, "sync", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-got:
		t.Fatalf("member 1 took a lock that member 0 holds (token %d)", l.Token())
	default:
	}
	deadline := held.Deadline()
	ms.kill(0)
	var l *group.Lock
	select {
	case l = <-got:
	case <-ctx.Done():
		t.Fatal("the lock of a dead holder never came free")
	}
	if l == nil {
		t.FailNow()
	}
	if now := time.Now(); now.Before(deadline) {
		t.Fatalf("lock taken at %v, before the dead holder's lease ended at %v", now, deadline)
	}
	if l.Token() <= held.Token() {
		t.Fatalf("new token %d not above the dead holder's %d", l.Token(), held.Token())
	}
	select {
	case <-held.Lost():
	case <-ctx.Done():
		t.Fatal("the dead holder's lock never reported lost")
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockCutOff: a holder whose group closes under it loses the lock,
// another member takes it with a larger token, and unlocking the lost lock
// says so.
func TestLockCutOff(t *testing.T) {
	t.Parallel()
	ms := startMembers(t, 3)
	ctx := nubetest.Context(t, 2*time.Minute)
	gs := ms.form(t, ctx, "cut", group.Options{LockTTL: time.Second})
	waitLeader(t, ctx, gs...)
	l, err := gs[2].Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	// Close the holder's group: nothing renews the lease any more.
	gs[2].Close()
	select {
	case <-l.Lost():
	case <-ctx.Done():
		t.Fatal("lock not lost after its group closed")
	}
	l2, err := gs[0].Lock(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token() <= l.Token() {
		t.Fatalf("token %d after %d", l2.Token(), l.Token())
	}
	if err := l.Unlock(context.Background()); err == nil {
		t.Fatal("unlock of a lost lock succeeded")
	}
}
