package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
)

// memoManagers starts one service layer per entry of users, on hosts
// all connected to each other; entries with the same number share a
// user key (a user's nodes).
func memoManagers(t *testing.T, users ...int) ([]*service.Manager, []host.Host) {
	t.Helper()
	hs := hosttest.Hosts(t, len(users))
	ctx := nubetest.Context(t, 2*time.Minute)
	keys := map[int]ed25519.PrivateKey{}
	var ms []*service.Manager
	for i, u := range users {
		if keys[u] == nil {
			keys[u] = identity.Generate()
		}
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := content.New(ctx, content.Config{Host: hs[i], Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := remote.New(ctx, remote.Config{Host: hs[i]})
		if err != nil {
			t.Fatal(err)
		}
		m, err := service.New(ctx, service.Config{Host: hs[i], Content: cs, Remote: ep, UserKey: keys[u],
			Interpreter: nubetest.TestConfig().ComputeInterpreter})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); ep.Close(); cs.Close(); st.Close() })
		ms = append(ms, m)
	}
	return ms, hs
}

// cachedCall makes one call of p and fails the test on an error or an
// output other than want.
func cachedCall(t *testing.T, ctx context.Context, p *service.Pipeline, in, want string) service.Result {
	t.Helper()
	for _, r := range p.CallN(ctx, 1, []byte(in)) {
		if r.Err != nil || string(r.Output) != want {
			t.Fatalf("call %s on %q: %q, %v; want %q", p, in, r.Output, r.Err, want)
		}
		return r
	}
	t.Fatal("no result")
	return service.Result{}
}

func publishUpper(t *testing.T, ctx context.Context, m *service.Manager, name string) *service.Descriptor {
	t.Helper()
	d, err := m.Publish(ctx, bytes.NewReader(wasmtest.Module(t, "upper")), service.PublishOptions{Name: name, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestMemoizedCallDoesNotRun: a cached call of a deterministic service
// runs once; the same call again, from the caller or from another node of
// its user, returns the recorded output and the runner's run count stays
// put; another input runs again.
func TestMemoizedCallDoesNotRun(t *testing.T) {
	ms, hs := memoManagers(t, 0, 0, 0)
	ctx := nubetest.Context(t, 2*time.Minute)
	d := publishUpper(t, ctx, ms[1], "memo-upper")
	p := ms[0].Service(d.ID().String()).On(hs[1].ID()).Cached()

	r := cachedCall(t, ctx, p, "memo me", "MEMO ME")
	if r.Memo != nil || len(ms[1].Runs()) != 1 {
		t.Fatalf("first call: memo %v, %d runs on the provider; want a run", r.Memo, len(ms[1].Runs()))
	}
	r = cachedCall(t, ctx, p, "memo me", "MEMO ME")
	if r.Memo == nil || r.Memo.Runner != hs[1].ID() {
		t.Fatalf("second call: memo %+v, want the provider's record", r.Memo)
	}
	if n := len(ms[1].Runs()); n != 1 {
		t.Fatalf("the memoized call ran: %d runs on the provider", n)
	}
	// Another node of the same user has no record of its own: it finds
	// one on the nodes it would call, and nothing runs.
	r = cachedCall(t, ctx, ms[2].Service(d.ID().String()).On(hs[2].ID()).Cached(), "memo me", "MEMO ME")
	if r.Memo == nil || len(ms[1].Runs()) != 1 || len(ms[2].Runs()) != 0 {
		t.Fatalf("a node of the same user: memo %v, runs %d and %d; want the record and no run", r.Memo, len(ms[1].Runs()), len(ms[2].Runs()))
	}
	// A changed input runs again.
	r = cachedCall(t, ctx, p, "memo you", "MEMO YOU")
	if r.Memo != nil || len(ms[1].Runs()) != 2 {
		t.Fatalf("another input: memo %v, %d runs; want a second run", r.Memo, len(ms[1].Runs()))
	}
	// Without Cached, a call runs.
	cachedCall(t, ctx, ms[0].Service(d.ID().String()).On(hs[1].ID()), "memo me", "MEMO ME")
	if n := len(ms[1].Runs()); n != 3 {
		t.Fatalf("an uncached call: %d runs, want 3", n)
	}
}

// TestMemoOfAnotherUser: a record signed by a node of another user is not
// taken on its word; with CachedVerify it is used when the verified run
// agrees with it, and not when its runner lied.
func TestMemoOfAnotherUser(t *testing.T) {
	ms, hs := memoManagers(t, 0, 1, 2, 3)
	ctx := nubetest.Context(t, 3*time.Minute)
	d := publishUpper(t, ctx, ms[1], "memo-other")
	id := d.ID().String()
	runs := func(i int) int { return len(ms[i].Runs()) }

	// Node 1 (user 1) runs it for itself, and keeps a record.
	cachedCall(t, ctx, ms[1].Service(id).On(hs[1].ID()).Cached(), "trust me", "TRUST ME")
	if service.Memos(ms[1], d, []byte("trust me")) == nil {
		t.Fatal("the runner kept no memo record")
	}
	// User 0's call does not take it: it runs on node 2.
	r := cachedCall(t, ctx, ms[0].Service(id).On(hs[2].ID()).Cached(), "trust me", "TRUST ME")
	if r.Memo != nil || runs(2) != 1 {
		t.Fatalf("another user's record: memo %v, %d runs on node 2; want a run", r.Memo, runs(2))
	}
	// With CachedVerify(2), two runs agree with the record: it is used.
	cachedCall(t, ctx, ms[1].Service(id).On(hs[1].ID()).Cached(), "verify me", "VERIFY ME")
	r = cachedCall(t, ctx, ms[0].Service(id).On(hs[2].ID(), hs[3].ID()).CachedVerify(2), "verify me", "VERIFY ME")
	if r.Memo == nil || r.Memo.Runner != hs[1].ID() {
		t.Fatalf("verified: memo %+v, want node 1's record", r.Memo)
	}
	// And the verified record is this node's now: no run next time.
	before := runs(2) + runs(3)
	r = cachedCall(t, ctx, ms[0].Service(id).On(hs[2].ID()).Cached(), "verify me", "VERIFY ME")
	if r.Memo == nil || runs(2)+runs(3) != before {
		t.Fatalf("after verifying: memo %v, runs %d (were %d)", r.Memo, runs(2)+runs(3), before)
	}
	// A liar's record disagrees with the verified runs: not used.
	service.TamperWith(ms[1], func(b []byte) []byte { return append(b, '?') })
	cachedCall(t, ctx, ms[1].Service(id).On(hs[1].ID()).Cached(), "lie", "LIE?")
	r = cachedCall(t, ctx, ms[0].Service(id).On(hs[2].ID(), hs[3].ID()).CachedVerify(2), "lie", "LIE")
	if r.Memo != nil {
		t.Fatalf("a lying record was used: %+v", r.Memo)
	}
	// The verified run left a record of the right output: the next call
	// takes it, and nothing runs.
	before = runs(2) + runs(3)
	r = cachedCall(t, ctx, ms[0].Service(id).On(hs[2].ID()).Cached(), "lie", "LIE")
	if r.Memo == nil || r.Memo.Runner == hs[1].ID() || runs(2)+runs(3) != before {
		t.Fatalf("after a verified run: memo %+v, runs %d (were %d)", r.Memo, runs(2)+runs(3), before)
	}
}

// TestForgedMemo: a record whose signature is not its runner's, or that a
// node serves under a key it is not of, is refused and the call runs.
func TestForgedMemo(t *testing.T) {
	ms, hs := memoManagers(t, 0, 0)
	ctx := nubetest.Context(t, 2*time.Minute)
	d := publishUpper(t, ctx, ms[1], "memo-forged")
	id := d.ID().String()

	// A record of "b" planted under the key of "a": the caller checks the
	// key, so it runs.
	cachedCall(t, ctx, ms[1].Service(id).On(hs[1].ID()).Cached(), "b", "B")
	service.PlantMemo(ms[1], d, []byte("a"), service.Memos(ms[1], d, []byte("b")))
	r := cachedCall(t, ctx, ms[0].Service(id).On(hs[1].ID()).Cached(), "a", "A")
	if r.Memo != nil {
		t.Fatalf("a record of another key was used: %+v", r.Memo)
	}
	// A record that names node 1 as its runner, signed by another key.
	mm, err := service.ParseMemo(service.Memos(ms[1], d, []byte("b")))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := hs[1].ID().ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pub.Raw()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("FORGED"))
	forged := service.ForgeMemo(identity.Generate(), ed25519.PublicKey(raw), d, []byte("c"), mm.Output, h[:])
	if _, err := service.ParseMemo(forged); !errors.Is(err, service.ErrBadCapability) {
		t.Fatalf("a forged record parsed: %v", err)
	}
	service.PlantMemo(ms[1], d, []byte("c"), forged)
	runs := len(ms[1].Runs())
	r = cachedCall(t, ctx, ms[0].Service(id).On(hs[1].ID()).Cached(), "c", "C")
	if r.Memo != nil || len(ms[1].Runs()) != runs+1 {
		t.Fatalf("a forged record: memo %v, runs %d (were %d)", r.Memo, len(ms[1].Runs()), runs)
	}
}
