package remote_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// caller returns a remote-call endpoint on a plain libp2p host connected
// to n, asking callees for the given window of streamed results.
func caller(t *testing.T, ctx context.Context, n *nube.Node, window int) *remote.Endpoint {
	t.Helper()
	h, err := libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Connect(ctx, n.Sys().AddrInfo()); err != nil {
		t.Fatal(err)
	}
	e, err := remote.New(ctx, remote.Config{Host: h, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestStreamFlowControl: a million small results go from callee to a
// caller that keeps stopping. The callee never gets more than a window
// ahead of the caller, it is seen being held back, and the heap of the
// process (caller and callee both) stays far below the size of the stream.
func TestStreamFlowControl(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	const pad = 100 // bytes per result, at least
	c := nubetest.Cluster(t, 1)
	b := c.Node(0)
	ctx := nubetest.Context(t, 5*time.Minute)
	token, g := newGate(t)
	// The caller asks for a window well under the transport's own (yamux
	// starts at 256 KiB), so that our flow control is what holds the
	// callee back, and the hook below sees it.
	const window = 32 << 10
	a := caller(t, ctx, b, window)

	held := make(chan struct{}, 1)
	var waiting atomic.Bool
	defer remote.SetCreditWaitHook(func(w bool) {
		waiting.Store(w)
		if w {
			select {
			case held <- struct{}{}:
			default:
			}
		}
	})()

	base := liveHeap()
	start := time.Now()
	var peak uint64
	got := 0
	var lead, maxLead int64
	for v, err := range count.At(a, b.ID()).Call(ctx, countIn{N: n, Pad: pad, Token: token}) {
		if err != nil {
			t.Fatalf("after %d results: %v", got, err)
		}
		if v.I != got || len(v.Pad) != pad {
			t.Fatalf("result %d is %d (pad %d)", got, v.I, len(v.Pad))
		}
		got++
		if lead = g.yielded.Load() - int64(got); lead > maxLead {
			maxLead = lead
		}
		if got%(n/20) == 0 && got < n {
			// The slow caller: stop until the callee is held back by
			// flow control, then look at the heap.
			select {
			case <-held: // stale: from before this stop
			default:
			}
			if !waiting.Load() {
				wait(t, held, "the callee to be held back by flow control")
			}
			peak = max(peak, liveHeap())
		}
	}
	if got != n {
		t.Fatalf("got %d results, want %d", got, n)
	}
	// The callee sends at most a window (plus one result) beyond what the
	// caller has been sent credit for, and credit follows what it has
	// received; each result is over pad bytes.
	if bound := int64(window/pad + 4); maxLead > bound {
		t.Fatalf("the callee got %d results ahead of the caller; flow control allows %d", maxLead, bound)
	}
	growth := int64(peak) - int64(base)
	total := int64(n) * pad
	t.Logf("%d results (%d MB) in %v: callee at most %d ahead; live heap grew by at most %.1f MiB", n, total>>20, time.Since(start).Round(time.Millisecond), maxLead, float64(growth)/(1<<20))
	if growth > 32<<20 {
		t.Fatalf("live heap grew by %d MiB while streaming %d MiB", growth>>20, total>>20)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestStreamEnds: a stream ends cleanly, ends with the callee's error, or
// is ended by the caller, which cancels the callee; the same on the node
// itself.
func TestStreamEnds(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)
	for _, target := range []peer.ID{b.ID(), a.ID()} {
		got := 0
		for v, err := range count.At(a, target).Call(ctx, countIn{N: 1000}) {
			if err != nil || v.I != got {
				t.Fatalf("result %d: %d, %v", got, v.I, err)
			}
			got++
		}
		if got != 1000 {
			t.Fatalf("got %d results, want 1000", got)
		}

		got = 0
		var last error
		for _, err := range count.At(a, target).Call(ctx, countIn{N: 1000, FailAt: 10}) {
			if err != nil {
				last = err
				break
			}
			got++
		}
		if got != 10 || !errors.Is(last, remote.ErrCallee) {
			t.Fatalf("a stream failing at 10: %d results, then %v", got, last)
		}

		token, g := newGate(t)
		got = 0
		for _, err := range count.At(a, target).Call(ctx, countIn{N: 1 << 30, Token: token}) {
			if err != nil {
				t.Fatal(err)
			}
			if got++; got == 10 {
				break
			}
		}
		if err := wait(t, g.ended, "the callee to see the caller stop"); err == nil {
			t.Fatal("the callee's yield did not fail after the caller stopped")
		}
	}

	// A plain call of a streaming function, and the reverse, say so.
	asPlain := remote.Declare[countIn, item]("test.count")
	if _, err := asPlain.At(a, b.ID()).Call(ctx, countIn{N: 1}); !errors.Is(err, remote.ErrBadInput) {
		t.Fatalf("plain call of a streaming function = %v", err)
	}
	asStream := remote.DeclareStream[string, string]("test.upper")
	for _, err := range asStream.At(a, b.ID()).Call(ctx, "x") {
		if !errors.Is(err, remote.ErrBadInput) {
			t.Fatalf("streaming call of a plain function = %v", err)
		}
	}
}
