package service_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, nubetest.LeakOptions()...) }

func publish(t *testing.T, n *nube.Node, module, name, desc string) *service.Descriptor {
	t.Helper()
	d, err := n.Services().Publish(nubetest.Context(t, time.Minute), bytes.NewReader(wasmtest.Module(t, module)),
		service.PublishOptions{Name: name, Version: "1.0.0", Description: desc, Input: "text/plain", Output: "text/plain"})
	if err != nil {
		t.Fatalf("publish %s: %v", name, err)
	}
	return d
}

// hasModule reports whether n has d's module pinned (installed).
func hasModule(t *testing.T, n *nube.Node, d *service.Descriptor) bool {
	t.Helper()
	pins, err := n.Content().Pins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.CID == d.Module {
			return true
		}
	}
	return false
}

// TestCallN publishes a module on A and calls it from B on three nodes at
// once. Only A has the module: the others fetch, verify and compile it.
func TestCallN(t *testing.T) {
	c := nubetest.Cluster(t, 5)
	a, b := c.Node(0), c.Node(1)
	d := publish(t, a, "upper", "upper", "upper-cases text")
	for i, n := range c.Nodes()[1:] {
		if hasModule(t, n, d) {
			t.Fatalf("node %d has the module before any call", i+1)
		}
	}
	// Three nodes fetch and compile the module at once; under the race
	// detector on a loaded 2-core machine that alone has taken minutes.
	ctx := nubetest.Context(t, 6*time.Minute)
	seen := map[peer.ID]bool{}
	for p, r := range b.Service("upper").CallN(ctx, 3, []byte("hello, five nodes")) {
		if r.Err != nil {
			t.Fatalf("run on %s: %v", p, r.Err)
		}
		if got := string(r.Output); got != "HELLO, FIVE NODES" {
			t.Fatalf("%s answered %q", p, got)
		}
		if r.Usage.CPU <= 0 || r.Usage.Memory <= 0 || r.Usage.In != 17 || r.Usage.Out != 17 {
			t.Errorf("%s reported usage %+v", p, r.Usage)
		}
		seen[p] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d different nodes answered, want 3", len(seen))
	}
	// Each node that answered has a record of the run, for B, and now
	// has the module installed.
	for _, n := range c.Nodes() {
		if !seen[n.ID()] {
			continue
		}
		recs := n.Services().Runs()
		if len(recs) != 1 || recs[0].Caller != b.ID() || recs[0].Descriptor != d.ID() || recs[0].Error != "" {
			t.Errorf("node %s recorded %+v, want one run for B", n.ID(), recs)
		}
		if !hasModule(t, n, d) {
			t.Errorf("node %s ran the module but did not keep it", n.ID())
		}
	}
}

// TestPipeline checks that "upper | wc" gives what calling upper, then
// wc on its output gives, whether built from a string, with Then, or
// published as a service of its own.
//
// Tests that run modules allow minutes where seconds do alone: under -race
// each node compiles each Go module in wazero's interpreter, which beside
// other packages' tests on 2 cores has taken over two minutes.
func TestPipeline(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, b := c.Node(0), c.Node(1)
	publish(t, a, "upper", "upper", "upper-cases text")
	publish(t, a, "wc", "wc", "counts words")
	ctx := nubetest.Context(t, 6*time.Minute)
	in := []byte("the cat and The Dog and the end")

	up, err := b.Service("upper").Call(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	calls := b.Services().Calls()
	if len(calls) != 1 || calls[0].Service != "upper" || calls[0].Error != "" || calls[0].Elapsed <= 0 || calls[0].Peer == "" {
		t.Fatalf("b's calls after one: %+v", calls)
	}
	want, err := b.Service("wc").Call(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != "AND 2\nCAT 1\nDOG 1\nEND 1\nTHE 3\n" {
		t.Fatalf("wc(upper(x)) = %q", want)
	}
	pipe := b.Service("upper").Then(b.Service("wc"))
	if pipe.String() != "upper | wc" {
		t.Errorf("pipeline reads %q", pipe)
	}
	pd, err := pipe.Publish(ctx, service.PublishOptions{Name: "shout-count", Description: "counts words, loudly"})
	if err != nil {
		t.Fatal(err)
	}
	if !pd.IsPipeline() || len(pd.Stages) != 2 {
		t.Fatalf("published pipeline has stages %v", pd.Stages)
	}
	for _, p := range []*service.Pipeline{b.Service("upper | wc"), pipe, c.Node(2).Service("shout-count"), a.Service(pd.ID().String())} {
		got, err := p.Call(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s gave %q, want %q", p, got, want)
		}
	}
}

// TestRunLimits hits the sandbox's limits on a remote node: each gives
// its error on the caller's side, and the node keeps serving.
func TestRunLimits(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i == 0 // every run goes to node 1
	}))
	a := c.Node(0)
	for _, m := range []string{"upper", "loop", "hog", "openfile"} {
		publish(t, a, m, m, "test module "+m)
	}
	// Each first call compiles a Go module in wazero's interpreter. Under
	// -race beside other packages' tests on 2 cores, one compile of upper
	// has taken over two minutes (a goroutine dump showed it compiling,
	// not blocked); alone the whole test takes 10 s. The bound is for a
	// hang.
	ctx := nubetest.Context(t, 6*time.Minute)
	for _, tc := range []struct {
		ref  string
		lim  wasm.Limits
		in   []byte
		want error
	}{
		{"loop", wasm.Limits{Timeout: 300 * time.Millisecond}, nil, wasm.ErrTimeout},
		{"hog", wasm.Limits{Memory: 32 << 20}, nil, wasm.ErrMemoryLimit},
		{"upper", wasm.Limits{MaxOutput: 10}, bytes.Repeat([]byte("x"), 100), wasm.ErrOutputTooLarge},
		{"upper", wasm.Limits{MaxInput: 10}, bytes.Repeat([]byte("x"), 100), wasm.ErrInputTooLarge},
	} {
		_, err := a.Service(tc.ref).WithLimits(tc.lim).Call(ctx, tc.in)
		var re *service.RunError
		if !errors.Is(err, tc.want) || !errors.As(err, &re) || re.Peer != c.Node(1).ID() {
			t.Fatalf("%s with %+v: %v, want %v from node 1", tc.ref, tc.lim, err, tc.want)
		}
		t.Logf("%s: %v", tc.ref, err)
		if out, err := a.Service("upper").Call(ctx, []byte("ok")); err != nil || string(out) != "OK" {
			t.Fatalf("after %s: upper gave %q, %v", tc.ref, out, err)
		}
	}
	out, err := a.Service("openfile").Call(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "read ") || !strings.Contains(string(out), "denied /etc/passwd") {
		t.Fatalf("the module reached the host's files:\n%s", out)
	}
}

// TestForgedDescriptor alters a signed descriptor in the ways a forger
// would and checks that parsing, and a node asked to run it, refuse it.
func TestForgedDescriptor(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	up := publish(t, a, "upper", "upper", "upper-cases text")
	wc := publish(t, a, "wc", "wc", "counts words")
	body, sig, err := service.Envelope(up.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	badSig := append([]byte(nil), sig...)
	badSig[0] ^= 1
	for name, data := range map[string][]byte{
		"signature altered":  service.Seal(body, badSig),
		"module CID changed": service.Seal(service.SetModule(body, wc.Module.Bytes()), sig),
		"signature missing":  service.Seal(body, nil),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := service.Parse(data); !errors.Is(err, service.ErrBadSignature) {
				t.Fatalf("Parse: %v, want ErrBadSignature", err)
			}
			err := a.Services().(*service.Manager).RunRaw(nubetest.Context(t, 6*time.Minute), b.ID(), data, []byte("x"))
			if !errors.Is(err, service.ErrBadSignature) {
				t.Fatalf("run on B: %v, want ErrBadSignature", err)
			}
		})
	}
	if len(b.Services().Runs()) != 0 {
		t.Fatalf("B ran a forged descriptor: %+v", b.Services().Runs())
	}
	if err := a.Services().(*service.Manager).RunRaw(nubetest.Context(t, 6*time.Minute), b.ID(), up.Bytes(), []byte("x")); err != nil {
		t.Fatalf("the genuine descriptor: %v", err)
	}
}

// TestFind looks services up by words and by name from a node that has
// never seen them, and checks what ls and info show.
func TestFind(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, z := c.Node(0), c.Node(2)
	d := publish(t, a, "upper", "upper", "Turns text into UPPER case")
	publish(t, a, "wc", "wc", "counts the words of a text")
	ctx := nubetest.Context(t, 6*time.Minute)
	found, err := z.Services().Find(ctx, "upper case")
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Descriptor.ID() != d.ID() {
		t.Fatalf("find \"upper case\" gave %d results", len(found))
	}
	if r := found[0].Runners; len(r) != 1 || r[0] != a.ID() {
		t.Errorf("runners %v, want A (it compiled the module when publishing)", r)
	}
	if f := found[0].Descriptor; f.Publisher != a.UserID() || f.Version != "1.0.0" || f.Module != d.Module {
		t.Errorf("found descriptor %+v", f)
	}
	all, err := z.Services().Find(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("find everything: %d, %v", len(all), err)
	}
	if _, err := z.Services().Resolve(ctx, "nosuch"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("resolving an unknown name: %v", err)
	}
	// Another user publishing the same name makes the name ambiguous to
	// a third; the CID still works.
	publish(t, c.Node(1), "wc", "upper", "an impostor")
	if _, err := z.Services().Resolve(ctx, "upper"); !errors.Is(err, service.ErrAmbiguous) {
		t.Fatalf("two users' upper: %v, want ErrAmbiguous", err)
	}
	if got, err := z.Services().Resolve(ctx, d.ID().String()); err != nil || got.ID() != d.ID() {
		t.Fatalf("by CID: %v", err)
	}
	// Each publisher still gets its own.
	if got, err := a.Services().Resolve(ctx, "upper"); err != nil || got.ID() != d.ID() {
		t.Fatalf("A resolving its own upper: %v", err)
	}
}

// TestNoCompute checks that a node with NoCompute never runs a module and
// that callers move on to a node that does.
func TestNoCompute(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i < 2
	}))
	a := c.Node(0)
	publish(t, a, "upper", "upper", "upper-cases text")
	ctx := nubetest.Context(t, 6*time.Minute)
	err := a.Services().(*service.Manager).RunRaw(ctx, c.Node(1).ID(), mustResolve(t, a, "upper").Bytes(), nil)
	if !errors.Is(err, service.ErrNoCompute) {
		t.Fatalf("run on a no-compute node: %v", err)
	}
	for range 3 {
		for p, r := range a.Service("upper").CallN(ctx, 1, []byte("x")) {
			if r.Err != nil || p != c.Node(2).ID() {
				t.Fatalf("ran on %s (%v); only node 2 computes", p, r.Err)
			}
		}
	}
	var errs int
	for _, r := range a.Service("upper").CallN(ctx, 2, []byte("x")) {
		if r.Err != nil {
			errs++
		}
	}
	if errs != 1 {
		t.Fatalf("asking two nodes where one computes gave %d errors, want 1", errs)
	}
}

func mustResolve(t *testing.T, n *nube.Node, ref string) *service.Descriptor {
	t.Helper()
	d, err := n.Services().Resolve(nubetest.Context(t, time.Minute), ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestSlots runs three jobs at once on a node with one compute slot and
// checks from the node's records that they never overlapped.
func TestSlots(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i == 0
		cfg.ComputeSlots = 1
	}))
	a := c.Node(0)
	publish(t, a, "loop", "loop", "never ends")
	ctx := nubetest.Context(t, 6*time.Minute)
	pipe := a.Service("loop").WithLimits(wasm.Limits{Timeout: 200 * time.Millisecond})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := pipe.Call(ctx, nil); !errors.Is(err, wasm.ErrTimeout) {
				t.Errorf("loop: %v", err)
			}
		}()
	}
	wg.Wait()
	recs := c.Node(1).Services().Runs()
	if len(recs) != 3 {
		t.Fatalf("%d runs recorded, want 3", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		start := recs[i].At.Add(-recs[i].Usage.Wall)
		if start.Before(recs[i-1].At) {
			t.Fatalf("run %d started at %v, before run %d ended at %v: two ran at once on one slot", i, start, i-1, recs[i-1].At)
		}
	}
}

// TestExitErrorAcrossNodes runs a module that exits with code 1 on another
// node: the caller's error is a *RunError that errors.Is matches with
// wasm.ErrExit, and errors.As reaches the *wasm.ExitError with the code
// and the module's stderr, as for a run on the caller's own node.
func TestExitErrorAcrossNodes(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i == 0
	}))
	a, b := c.Node(0), c.Node(1)
	publish(t, a, "shout", "shout", "fails loudly")
	_, err := a.Service("shout").Call(nubetest.Context(t, 6*time.Minute), []byte("x"))
	var run *service.RunError
	var exit *wasm.ExitError
	if !errors.As(err, &run) || run.Peer != b.ID() || !errors.Is(err, wasm.ErrExit) || !errors.As(err, &exit) {
		t.Fatalf("a module that exits 1 on another node: %#v", err)
	}
	if exit.Code != 1 || !strings.Contains(exit.Stderr, "red alert") {
		t.Fatalf("exit error across the wire: code %d, stderr %q", exit.Code, exit.Stderr)
	}
	if errors.Is(err, wasm.ErrTrap) || errors.Is(err, service.ErrBusy) {
		t.Fatalf("the exit matches other kinds too: %v", err)
	}
}

// TestNotRunTwice: a call whose node dies after the request reached it
// ends in an error, and is not run again elsewhere (the first run may
// have finished, and been billed); a call whose node was gone before it
// was sent moves on to the next node.
func TestNotRunTwice(t *testing.T) {
	c := nubetest.Cluster(t, 4, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		cfg.NoCompute = i == 0
	}))
	a, b, d := c.Node(0), c.Node(1), c.Node(2)
	publish(t, a, "loop", "loop", "never ends")
	ctx := nubetest.Context(t, 6*time.Minute)
	pipe := a.Service("loop").WithLimits(wasm.Limits{Timeout: time.Minute})

	done := make(chan service.Result, 1)
	go func() {
		for _, r := range pipe.On(b.ID(), d.ID()).CallN(ctx, 1, nil) {
			done <- r
		}
	}()
	nubetest.Eventually(t, ctx, func() bool { return gauge(t, b, "nube_service_jobs_running") == 1 },
		func() string { return "the run never started on node 1" })
	c.Crash(1)
	var r service.Result
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("the call never returned after its node crashed")
	}
	if r.Peer != b.ID() || !errors.Is(r.Err, remote.ErrUnreachable) {
		t.Fatalf("a call cut mid-run: ran on %s, err %v; want node 1's error", r.Peer, r.Err)
	}
	if runs := d.Services().Runs(); len(runs) != 0 {
		t.Fatalf("the call cut on node 1 ran again on node 2: %+v", runs)
	}

	// Node 1 is gone now: a call that cannot reach it goes to node 3.
	up := a.Service("upper")
	publish(t, a, "upper", "upper", "upper-cases text")
	third := c.Node(3)
	for _, r := range up.On(b.ID(), third.ID()).CallN(ctx, 1, []byte("x")) {
		if r.Err != nil || r.Peer != third.ID() || string(r.Output) != "X" {
			t.Fatalf("a call to a crashed node then node 3: ran on %s, %q, %v", r.Peer, r.Output, r.Err)
		}
		runs := third.Services().Runs()
		if len(runs) != 1 || runs[0].Call != r.Call {
			t.Fatalf("node 3 recorded %+v, want the one call %s", runs, r.Call)
		}
	}
}

// gauge reads a gauge from n's metrics.
func gauge(t *testing.T, n *nube.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Sys().Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
