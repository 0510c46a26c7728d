package remote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// TestOnAllWithKill: a fan-out over five nodes (the caller among them)
// gives five results; a node killed during the call gives "peer
// unreachable", the others succeed, and the caller does not hang.
func TestOnAllWithKill(t *testing.T) {
	c := nubetest.Cluster(t, 5)
	a := c.Node(0)
	ctx := nubetest.Context(t, time.Minute)

	// First with every node up.
	n := 0
	for p, r := range whoami.OnAll(ctx, a, c.IDs(), struct{}{}) {
		n++
		if r.Err != nil || r.Value.Node != p {
			t.Errorf("whoami on %s: %+v, %v", p, r.Value, r.Err)
		}
	}
	if n != 5 {
		t.Fatalf("OnAll over 5 nodes gave %d results", n)
	}

	token, g := newGate(t)
	peers := c.IDs()
	victim := c.Node(4).ID()
	results := map[peer.ID]remote.Result[peer.ID]{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p, r := range block.OnAll(ctx, a, peers, token) {
			results[p] = r
		}
	}()
	for range peers {
		wait(t, g.started, "every call to start")
	}
	c.Kill(4)
	close(g.release)
	wait(t, done, "OnAll to return after a node was killed")

	if len(results) != 5 {
		t.Fatalf("got %d results, want 5", len(results))
	}
	for p, r := range results {
		if p == victim {
			if !errors.Is(r.Err, remote.ErrUnreachable) {
				t.Errorf("killed node: err = %v, want ErrUnreachable", r.Err)
			}
			// It was running when its node died: nothing says it
			// did not finish.
			var re *remote.Error
			if !errors.As(r.Err, &re) || !re.MayHaveRun() {
				t.Errorf("killed node: a call cut while it ran says it did not run: %v", r.Err)
			}
			continue
		}
		if r.Err != nil || r.Value != p {
			t.Errorf("node %s: %v, %v", p, r.Value, r.Err)
		}
	}
}

// TestAny: the first success wins and the calls still under way are
// cancelled; when all fail, every failure is in the error.
func TestAny(t *testing.T) {
	c := nubetest.Cluster(t, 5)
	a := c.Node(0)
	ctx := nubetest.Context(t, time.Minute)
	winner := c.Node(3).ID()

	token, g := newGate(t)
	type answer struct {
		p   peer.ID
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		p, err := onlyOn.Any(ctx, a, c.IDs(), onlyIn{Winner: winner, Token: token})
		answers <- answer{p, err}
	}()
	for range 4 {
		wait(t, g.started, "the losing calls to start")
	}
	close(g.release)
	if got := wait(t, answers, "Any to return"); got.err != nil || got.p != winner {
		t.Fatalf("Any = %s, %v; want %s", got.p, got.err, winner)
	}
	for range 4 {
		if err := wait(t, g.ended, "the losing calls to be cancelled"); !errors.Is(err, context.Canceled) {
			t.Errorf("a losing call ended with %v, want context.Canceled", err)
		}
	}

	if remote.Local(ctx) != nil {
		t.Fatal("Local outside a function is not nil")
	}
	var err error
	_, err = onlyOn.Any(ctx, a, c.IDs(), onlyIn{Winner: strangerID(t)})
	if !errors.Is(err, remote.ErrCallee) || !strings.Contains(err.Error(), "all 5 peers failed") {
		t.Fatalf("Any where all fail = %v", err)
	}
	if _, err := onlyOn.Any(ctx, a, nil, onlyIn{}); err == nil {
		t.Fatal("Any over no peers succeeded")
	}
}

// TestCancel: cancelling the caller cancels the callee, which observes
// ctx.Done(); the caller's error is context.Canceled.
func TestCancel(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	for _, target := range []peer.ID{b.ID(), a.ID()} {
		token, g := newGate(t)
		ctx, cancel := context.WithCancel(nubetest.Context(t, time.Minute))
		errc := make(chan error, 1)
		go func() {
			_, err := block.At(a, target).Call(ctx, token)
			errc <- err
		}()
		wait(t, g.started, "the callee to start")
		cancel()
		if err := wait(t, g.ended, "the callee to observe the cancellation"); !errors.Is(err, context.Canceled) {
			t.Errorf("callee's ctx ended with %v, want context.Canceled", err)
		}
		if err := wait(t, errc, "the call to return"); !errors.Is(err, context.Canceled) {
			t.Errorf("caller got %v, want context.Canceled", err)
		}
	}
}

// TestNestedDeadline: A calls B, which calls C with its own context; A's
// deadline bounds C, and A's cancellation reaches C.
func TestNestedDeadline(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, b, cc := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, time.Minute)

	token, g := newGate(t)
	dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	deadline, _ := dctx.Deadline()
	_, err := relay.At(a, b.ID()).Call(dctx, relayIn{To: cc.ID(), Token: token})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("A's call = %v, want deadline exceeded", err)
	}
	if p := wait(t, g.started, "C to start"); p != cc.ID() {
		t.Fatalf("the nested call ran on %s, want C", p)
	}
	dC := wait(t, g.deadlines, "C's deadline")
	// C's deadline comes from A's, carried as time left at each hop, so it
	// can only be later by the hops' latency.
	if skew := dC.Sub(deadline); skew < -50*time.Millisecond || skew > 5*time.Second {
		t.Fatalf("C's deadline is %v from A's: not derived from it", skew)
	}
	wait(t, g.ended, "C's context to end")

	token, g = newGate(t)
	cctx, cancelA := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := relay.At(a, b.ID()).Call(cctx, relayIn{To: cc.ID(), Token: token})
		errc <- err
	}()
	wait(t, g.started, "C to start")
	cancelA()
	if err := wait(t, g.ended, "C to see A's cancellation"); !errors.Is(err, context.Canceled) {
		t.Errorf("C's ctx ended with %v, want context.Canceled", err)
	}
	if err := wait(t, errc, "A's call to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("A got %v, want context.Canceled", err)
	}
}

// TestConcurrencyLimit: a peer's calls beyond the policy's limit wait for
// a slot, and beyond the queue they are refused; no more than the limit
// ever run at once.
func TestConcurrencyLimit(t *testing.T) {
	const limit = 2
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.Remote.MaxConcurrent = limit
	}))
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)
	token, g := newGate(t)

	const queued = limit * 4
	errc := make(chan error, limit+queued)
	for range limit + queued {
		go func() {
			_, err := block.At(a, b.ID()).Call(ctx, token)
			errc <- err
		}()
	}
	for range limit {
		wait(t, g.started, "the first calls to start")
	}
	// No event says a call has joined the queue; poll the endpoint.
	nubetest.Eventually(t, ctx, func() bool {
		running, waiting := b.Remote().Calls(a.ID())
		return running == limit && waiting == queued
	}, func() string {
		running, waiting := b.Remote().Calls(a.ID())
		return fmt.Sprintf("calls never queued: %d running, %d waiting", running, waiting)
	})
	_, err := block.At(a, b.ID()).Call(ctx, token)
	if !errors.Is(err, remote.ErrRefused) || !strings.Contains(err.Error(), "too many calls") {
		t.Fatalf("a call beyond the queue = %v, want refused", err)
	}
	close(g.release)
	for range limit + queued {
		if err := wait(t, errc, "the queued calls"); err != nil {
			t.Errorf("queued call: %v", err)
		}
	}
	if most := g.most.Load(); most != limit {
		t.Fatalf("%d calls ran at once, limit %d", most, limit)
	}
}

// TestFunctions: a node lists the functions it serves to the caller, with
// their types.
func TestFunctions(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		if i == 1 {
			cfg.Remote.Expose = []string{"test.upper", "test.count"}
		}
	}))
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)

	all, err := b.Remote().Functions(ctx, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]remote.FuncInfo{}
	for _, f := range all {
		byName[f.Name] = f
	}
	if f := byName["test.wordcount"]; f.In != "string" || f.Out != "map[string]int" || f.Stream {
		t.Errorf("wordcount listed as %+v", f)
	}
	if f := byName["test.count"]; f.In != "remote_test.countIn{N int; FailAt int; Pad int; Token string}" || f.Out != "remote_test.item{I int; Pad string}" || !f.Stream {
		t.Errorf("count listed as %+v", f)
	}
	if _, ok := byName["nube.functions"]; !ok {
		t.Error("the built-in listing is not listed")
	}

	some, err := a.Remote().Functions(ctx, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range some {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "test.count,test.upper" {
		t.Fatalf("b, exposing two functions, lists %v", names)
	}
}

// greetFn is served by Handle, per endpoint, not registered in the binary.
var greetFn = remote.Declare[string, string]("test.greet")

// TestHandle serves a function on one node's endpoint alone, with that
// node's own state: callers reach it there, the other node does not serve
// it, the listing shows it, and after stop nobody serves it.
func TestHandle(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)
	name := b.ID().String()[:8] // the state this endpoint's handler closes over
	stop := remote.Handle(b.Remote(), greetFn, func(ctx context.Context, who string) (string, error) {
		return "hello " + who + " from " + name, nil
	})
	got, err := greetFn.At(a, b.ID()).Call(ctx, "a")
	if err != nil || got != "hello a from "+name {
		t.Fatalf("call the handled function: %q, %v", got, err)
	}
	if _, err := greetFn.At(b, a.ID()).Call(ctx, "b"); !errors.Is(err, remote.ErrNoSuchFunction) {
		t.Fatalf("a node that does not handle it: %v", err)
	}
	fs, err := a.Remote().Functions(ctx, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, f := range fs {
		listed = listed || (f.Name == "test.greet" && f.In == "string")
	}
	if !listed {
		t.Errorf("the handled function is not in b's listing: %+v", fs)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a second Handle of the same name did not panic")
			}
		}()
		remote.Handle(b.Remote(), greetFn, func(context.Context, string) (string, error) { return "", nil })
	}()
	stop()
	if _, err := greetFn.At(a, b.ID()).Call(ctx, "a"); !errors.Is(err, remote.ErrNoSuchFunction) {
		t.Fatalf("after stop: %v", err)
	}
}
