package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/wasm"
)

// publishCode publishes module bytes as name.
func publishCode(t *testing.T, n *nube.Node, code []byte, opt service.PublishOptions) *service.Descriptor {
	t.Helper()
	d, err := n.Services().Publish(nubetest.Context(t, time.Minute), bytes.NewReader(code), opt)
	if err != nil {
		t.Fatalf("publish %s: %v", opt.Name, err)
	}
	return d
}

// notes makes a space "notes" of a's, held by holder, with key todo set
// to text, and returns its OWNER/NAME.
func notes(t *testing.T, ctx context.Context, a, holder *nube.Node, text string) (*space.Space, string) {
	t.Helper()
	policy := space.Policy{On: []peer.ID{holder.ID()}}
	if holder == a {
		policy = space.Policy{Local: true}
	}
	s, err := a.Spaces().Create(ctx, "notes", policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, "todo", []byte(text)); err != nil {
		t.Fatal(err)
	}
	return s, s.ID()
}

// runsOf counts the runs node n did of d.
func runsOf(n *nube.Node, d *service.Descriptor) int {
	k := 0
	for _, r := range n.Services().Runs() {
		if r.Descriptor == d.ID() {
			k++
		}
	}
	return k
}

// TestSpaceWordCount is the first test, for the Go module and
// the C one: a module granted read on a space counts the words of a key
// held on another node; the same call without the grant is refused
// before the module runs. A, the owner, calls; C runs; B holds the space
// (A is its home).
func TestSpaceWordCount(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, b, r := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, 3*time.Minute)
	_, id := notes(t, ctx, a, b, "buy milk\nand  bread\tand eggs ")
	for _, m := range []struct {
		name string
		code func() []byte
	}{
		{"space-wc", func() []byte { return wasmtest.Example(t, "space-wc") }},
		{"space-wc-c", func() []byte { return wasmtest.C(t, "space-wc-c") }},
	} {
		t.Run(m.name, func(t *testing.T) {
			d := publishCode(t, a, m.code(), service.PublishOptions{Name: m.name, Wants: []string{"space:read"}})
			in := []byte(id + " todo\n")
			_, err := a.Service(m.name).On(r.ID()).Call(ctx, in)
			if !errors.Is(err, service.ErrNotAllowed) || !strings.Contains(err.Error(), "--allow space:") {
				t.Fatalf("a call with no grant: %v, want ErrNotAllowed saying what to grant", err)
			}
			if n := runsOf(r, d); n != 0 {
				t.Fatalf("the runner ran the module %d times for a call that granted nothing", n)
			}
			allow, err := service.ParseAllow("space:" + id + ":read")
			if err != nil {
				t.Fatal(err)
			}
			out, err := a.Service(m.name).On(r.ID()).Allow(allow).Call(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != "6" {
				t.Fatalf("counted %q words, want 6", got)
			}
			runs := r.Services().Runs()
			last := runs[len(runs)-1]
			if last.Touched == nil || len(last.Touched.Read) != 1 || last.Touched.Read[0] != id+"/todo" {
				t.Errorf("the run record shows it touched %+v, want a read of %s/todo", last.Touched, id)
			}
			if len(last.Allowed) != 1 || last.Allowed[0] != "space:"+id+":read" {
				t.Errorf("the run record shows it was allowed %v", last.Allowed)
			}
		})
	}
}

// TestGranteeLendsItsRead: B, who holds a read grant from A, hands it to
// a run on C; a write cannot be handed on, since B has none.
func TestGranteeLendsItsRead(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, b, r := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, 3*time.Minute)
	s, id := notes(t, ctx, a, a, "one two three")
	if _, err := s.Grant(ctx, b.UserID(), space.Read, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	publishCode(t, a, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	out, err := b.Service("ops").On(r.ID()).Allow(service.Allow{Space: id, Access: service.Read}).Call(ctx, []byte("get "+id+" todo\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); got != "ok one two three\n" {
		t.Fatalf("the run read %q", got)
	}
	_, err = b.Service("ops").On(r.ID()).Allow(service.Allow{Space: id, Access: service.Write}).Call(ctx, []byte("put "+id+" todo x\n"))
	if err == nil {
		t.Fatal("B handed a run a write it does not have")
	}
	if v, err := s.GetBytes(ctx, "todo"); err != nil || string(v) != "one two three" {
		t.Fatalf("after the refused write the value is %q, %v", v, err)
	}
}

// TestModuleAttacks runs a hostile module that tries, within one run,
// everything its capability does not allow; each try is refused and
// nothing is written.
func TestModuleAttacks(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	a, b, r := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, 3*time.Minute)
	s, id := notes(t, ctx, a, b, "secret")
	if err := s.PutBytes(ctx, "pub/readme", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	other, err := a.Spaces().Create(ctx, "diary", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.PutBytes(ctx, "today", []byte("private")); err != nil {
		t.Fatal(err)
	}
	publishCode(t, a, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	publish(t, a, "upper", "upper", "upper-cases text")

	script := strings.Join([]string{
		"get " + id + " pub/readme",     // allowed
		"get " + id + " todo",           // outside the prefix
		"list " + id + " ",              // a listing wider than the prefix
		"get " + other.ID() + " today",  // a space not granted
		"put " + id + " pub/readme bad", // a write under a read right
		"delete " + id + " pub/readme",  // a delete under a read right
		"call upper hi",                 // a service not granted
		"call ops get " + id + " pub/readme",
		"open not-a-cid",
	}, "\n") + "\n"
	allow := []service.Allow{{Space: id, Access: service.Read, Prefix: "pub/"}, {Call: "ops"}}
	out, err := a.Service("ops").On(r.ID()).Allow(allow...).Call(ctx, []byte(script))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// The nested run's answer ends in a newline of its own: an empty line.
	want := []string{"ok hello", "err -1", "err -1", "err -1", "err -1", "err -1", "err -1", "ok err -1", "", "err -3"}
	if len(lines) != len(want) {
		t.Fatalf("the module answered %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want it to start %q", i+1, lines[i], w)
		}
	}
	// The nested run of ops was given no space: it could not read.
	if !strings.Contains(lines[7], "-1") {
		t.Errorf("a nested run read a space its caller's capability did not give it: %q", lines[7])
	}
	for key, v := range map[string]string{"pub/readme": "hello", "todo": "secret"} {
		got, err := s.GetBytes(ctx, key)
		if err != nil || string(got) != v {
			t.Errorf("%s is now %q (%v), want %q", key, got, err, v)
		}
	}

	// The depth: a capability that allows no nesting refuses the call.
	out, err = a.Service("ops").On(r.ID()).Allow(service.Allow{Call: "upper"}).Depth(0).Call(ctx, []byte("call upper hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "err -6") {
		t.Errorf("a call past the capability's depth: %q, want err -6 (E_LIMIT)", out)
	}
	out, err = a.Service("ops").On(r.ID()).Allow(service.Allow{Call: "upper"}).Call(ctx, []byte("call upper hi\n"))
	if err != nil || string(out) != "ok HI\n" {
		t.Errorf("an allowed nested call: %q, %v", out, err)
	}
	// A module that calls itself: each nested run may call on, until
	// the capability's depth (DefaultDepth, 2) is reached.
	out, err = a.Service("ops").On(r.ID()).Allow(service.Allow{Call: "ops"}).Call(ctx, []byte("call ops call ops call ops log deep\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "ok ok err -6") {
		t.Errorf("calls nested past the depth: %q, want the run at depth 2 refused with err -6 (E_LIMIT)", out)
	}
}

// TestCapabilityReplay takes a capability a caller signed for a run on
// node R and presents it elsewhere: from another node of another user,
// and to another runner. Both are refused before anything runs.
func TestCapabilityReplay(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	a, b, r, x := c.Node(0), c.Node(1), c.Node(2), c.Node(3)
	ctx := nubetest.Context(t, 3*time.Minute)
	_, id := notes(t, ctx, a, a, "secret words")
	d := publishCode(t, a, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	capR, err := service.SignCapability(ctx, a.Services(), r.ID(), d, service.Allow{Space: id, Access: service.Write})
	if err != nil {
		t.Fatal(err)
	}
	in := []byte("get " + id + " todo\nput " + id + " todo stolen\n")
	// B replays A's capability at R: B's user is not its issuer.
	if _, err := service.RunWith(ctx, b.Services(), r.ID(), d, capR, in); !errors.Is(err, service.ErrNotAllowed) {
		t.Errorf("B replayed A's capability at R: %v, want ErrNotAllowed", err)
	}
	// A's own node sends it to X, which it was not signed for.
	if _, err := service.RunWith(ctx, a.Services(), x.ID(), d, capR, in); !errors.Is(err, service.ErrNotAllowed) {
		t.Errorf("the capability for R was taken at X: %v, want ErrNotAllowed", err)
	}
	// A module other than the one it names.
	publish(t, a, "upper", "upper", "upper-cases text")
	up, err := a.Services().Resolve(ctx, "upper")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := service.RunWith(ctx, a.Services(), r.ID(), up, capR, in); !errors.Is(err, service.ErrNotAllowed) {
		t.Errorf("the capability for ops was used for upper: %v, want ErrNotAllowed", err)
	}
	for _, n := range []*nube.Node{r, x} {
		for _, rec := range n.Services().Runs() {
			t.Errorf("%s ran %s for a replayed capability", n.ID(), rec.Service)
		}
	}
	// And at R, from A, it works: the test is not refusing everything.
	out, err := service.RunWith(ctx, a.Services(), r.ID(), d, capR, []byte("get "+id+" todo\n"))
	if err != nil || string(out) != "ok secret words\n" {
		t.Fatalf("the capability at its own runner: %q, %v", out, err)
	}
}

// TestOutCID leaves the output on the runner and fetches it by CID.
func TestOutCID(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, r := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, 2*time.Minute)
	publish(t, a, "upper", "upper", "upper-cases text")
	var res service.Result
	for _, x := range a.Service("upper").On(r.ID()).OutCID().CallN(ctx, 1, []byte("left on the runner")) {
		res = x
	}
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Output) != 0 || !res.OutputCID.Defined() {
		t.Fatalf("result: output %q, CID %v; want only a CID", res.Output, res.OutputCID)
	}
	f, err := a.Content().Get(ctx, res.OutputCID.String())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(f); err != nil || got.String() != "LEFT ON THE RUNNER" {
		t.Fatalf("the CID holds %q (%v)", got.String(), err)
	}
}

// TestVerify runs a deterministic service on three nodes: three honest
// ones agree and the output returns; with one liar, the disagreement
// names it and keeps each node's signed proof.
func TestVerify(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	a := c.Node(0)
	ctx := nubetest.Context(t, 4*time.Minute)
	publishCode(t, a, wasmtest.Module(t, "upper"), service.PublishOptions{Name: "det-upper", Deterministic: true})
	publish(t, a, "upper", "upper", "upper-cases text")
	if _, err := a.Service("upper").Verify(ctx, 3, []byte("x")); !errors.Is(err, service.ErrBadCapability) {
		t.Errorf("verify of a service not declared deterministic: %v", err)
	}
	others := []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}
	res, err := a.Service("det-upper").On(others...).Verify(ctx, 3, []byte("agree"))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != "AGREE" {
		t.Fatalf("verified output %q", res.Output)
	}
	liar := c.Node(2)
	service.TamperWith(liar.Services(), func(b []byte) []byte { return append(b, '!') })
	_, err = a.Service("det-upper").On(others...).Verify(ctx, 3, []byte("agree"))
	var ve *service.VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, service.ErrDisagree) {
		t.Fatalf("with a liar: %v, want a *VerifyError", err)
	}
	if len(ve.Minority) != 1 || ve.Minority[0] != liar.ID() || !strings.Contains(err.Error(), liar.ID().String()) {
		t.Fatalf("the disagreement names %v as the minority (%v), want only the liar %s", ve.Minority, err, liar.ID())
	}
	hashes := map[string]bool{}
	for _, run := range ve.Runs {
		p, err := service.ParseProof(run.Proof)
		if err != nil {
			t.Fatalf("%s's proof: %v", run.Peer, err)
		}
		if p.Runner != run.Peer || p.Output != run.Hash || p.Caller != a.ID() {
			t.Errorf("%s's proof says runner %s, output %s, caller %s; the run said %s", run.Peer, p.Runner, p.Output, p.Caller, run.Hash)
		}
		hashes[run.Hash] = true
	}
	if len(hashes) != 2 {
		t.Errorf("%d different hashes among the runs, want 2", len(hashes))
	}
}

// TestNear holds a value on B and calls from A with Near: the run lands
// on B and far fewer bytes cross the network than the value's size;
// without Near, the run on C reads the whole value through the network.
func TestNear(t *testing.T) {
	if testing.Short() {
		t.Skip("moves tens of MiB between nodes; skipped in -short")
	}
	const size = 16 << 20
	c := nubetest.Cluster(t, 3, nubetest.WithShaping(), nubetest.WithConfig(func(i int, cfg *nube.Config) {
		if i == 0 {
			cfg.NoCompute = true // the caller runs nothing itself
		}
	}))
	a, b, x := c.Node(0), c.Node(1), c.Node(2)
	ctx := nubetest.Context(t, 5*time.Minute)
	s, err := a.Spaces().Create(ctx, "big", space.Policy{On: []peer.ID{b.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	word := []byte("lorem ipsum ")
	if err := s.PutBytes(ctx, "words", bytes.Repeat(word, size/len(word))); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBytes(ctx, "small", []byte("a b")); err != nil {
		t.Fatal(err)
	}
	publishCode(t, a, wasmtest.Example(t, "space-wc"), service.PublishOptions{Name: "space-wc", Wants: []string{"space:read"}})
	in := []byte(s.ID() + " words\n")
	allow := service.Allow{Space: s.ID(), Access: service.Read}
	// The module (megabytes of it) reaches each runner once: not what
	// is measured here.
	for _, p := range []peer.ID{b.ID(), x.ID()} {
		if _, err := a.Service("space-wc").Allow(allow).On(p).Call(ctx, []byte(s.ID()+" small\n")); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprint(2 * (size / len(word)))

	crossed := func(call func() service.Result) (service.Result, int64) {
		before := c.Carried()
		res := call()
		return res, c.Carried() - before
	}
	res, near := crossed(func() service.Result {
		var r service.Result
		for _, x := range a.Service("space-wc").Allow(allow).Near(s.ID()).CallN(ctx, 1, in) {
			r = x
		}
		return r
	})
	if res.Err != nil || strings.TrimSpace(string(res.Output)) != want {
		t.Fatalf("near: %q, %v", res.Output, res.Err)
	}
	if res.Peer != b.ID() || !res.Near {
		t.Fatalf("near ran on %s (near=%v), want B %s", res.Peer, res.Near, b.ID())
	}
	res, far := crossed(func() service.Result {
		var r service.Result
		for _, y := range a.Service("space-wc").Allow(allow).On(x.ID()).CallN(ctx, 1, in) {
			r = y
		}
		return r
	})
	if res.Err != nil || strings.TrimSpace(string(res.Output)) != want {
		t.Fatalf("elsewhere: %q, %v", res.Output, res.Err)
	}
	t.Logf("bytes across the network: near %d (%.2f%% of %d), elsewhere %d", near, 100*float64(near)/size, size, far)
	if near*100 >= size {
		t.Errorf("near: %d bytes crossed, want under 1%% of %d", near, size)
	}
	if far < size {
		t.Errorf("elsewhere: %d bytes crossed, want at least the value's %d", far, size)
	}
}

// TestLargeInputByCID sends an input over 4 MiB: it goes as content, by
// its CID, and the runner fetches it.
func TestLargeInputByCID(t *testing.T) {
	const size = 6 << 20
	big := wasm.Limits{MaxInput: 8 << 20, MaxOutput: 8 << 20, Timeout: time.Minute}
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(i int, cfg *nube.Config) { cfg.ComputeLimits = big }))
	a, r := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, 3*time.Minute)
	publish(t, a, "echo", "echo", "copies its input")
	in := bytes.Repeat([]byte("word "), size/5)
	out, err := a.Service("echo").On(r.ID()).WithLimits(big).Call(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("echo of %d bytes answered %d bytes", len(in), len(out))
	}
}
