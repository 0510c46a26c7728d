package service_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// checkEvidence says what is wrong with the evidence a VerifyError keeps
// of run: its proof must be signed by the run's own node, for this
// caller, and attest the hash the run was counted under.
func checkEvidence(run service.VerifyRun, caller peer.ID) string {
	p, err := service.ParseProof(run.Proof)
	switch {
	case err != nil:
		return "its proof does not open: " + err.Error()
	case p.Runner != run.Peer:
		return "its proof is signed by " + p.Runner.String()
	case p.Caller != caller:
		return "its proof is for caller " + p.Caller.String()
	case p.OutputCID.Defined() && hashOf(p.OutputCID.Bytes()) != run.Hash:
		return "its proof attests output CID " + p.OutputCID.String() + ", and it was counted as " + run.Hash
	case !p.OutputCID.Defined() && p.Output != run.Hash:
		return "its proof attests output " + p.Output + ", and it was counted as " + run.Hash
	}
	return ""
}

// hashOf is how Verify names an output it compares: hex SHA-256 (of the
// output's CID, for one kept as content).
func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestAttack35VerifyTakesUncheckedProofs: Verify "names the minority and
// keeps signed proofs", but never opens the proofs the runners send. A
// liar that signs its proof over the honest output and answers another
// output, or that sends no proof at all, is counted
// on its word: the evidence kept against it exonerates it (its signed
// proof attests the honest hash) or is missing.
//
// What should happen: Verify opens each run's proof and counts a run
// only if its proof is signed by the node that answered, for this caller,
// this descriptor, input and seed, and attests the hash of the output it
// sent; any other run is a failed run ("its proof does not match"), and
// every counted run's evidence then holds up.
func TestAttack35VerifyTakesUncheckedProofs(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	a := c.Node(0)
	ctx := nubetest.Context(t, 4*time.Minute)
	publishCode(t, a, wasmtest.Module(t, "upper"), service.PublishOptions{Name: "det-upper", Deterministic: true})
	others := []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}
	liar := c.Node(2)
	for _, lie := range []struct {
		name string
		f    func(out, proof []byte) ([]byte, []byte)
	}{
		{"a proof of the honest output", func(out, proof []byte) ([]byte, []byte) { return append(out, '!'), proof }},
		{"no proof", func(out, _ []byte) ([]byte, []byte) { return append(out, '!'), nil }},
	} {
		t.Run(lie.name, func(t *testing.T) {
			service.LieAfterProof(liar.Services(), lie.f)
			_, err := a.Service("det-upper").On(others...).Verify(ctx, 3, []byte("agree"))
			var ve *service.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("with a liar: %v, want a *VerifyError", err)
			}
			for _, run := range ve.Runs {
				if run.Err != "" {
					continue
				}
				if why := checkEvidence(run, a.ID()); why != "" {
					t.Errorf("%s was counted (hash %s…), but %s", run.Peer, run.Hash[:8], why)
				}
			}
		})
	}
}

// TestAttack35VerifyOutCIDEvidence: with OutCID, Verify compares the
// hashes of the output CIDs, while each runner's proof attests the hash
// of the output's bytes. The evidence of a disagreement never matches
// what was compared: no run's proof says the hash it was counted under,
// honest ones included, so the proofs kept cannot show who said what.
//
// What should happen: the proof attests what Verify compares: the
// runner signs the output CID when it keeps the output as content (or
// Verify compares the hash the proof attests).
func TestAttack35VerifyOutCIDEvidence(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	a := c.Node(0)
	ctx := nubetest.Context(t, 4*time.Minute)
	publishCode(t, a, wasmtest.Module(t, "upper"), service.PublishOptions{Name: "det-upper", Deterministic: true})
	others := []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}
	service.TamperWith(c.Node(2).Services(), func(b []byte) []byte { return append(b, '!') })
	_, err := a.Service("det-upper").On(others...).OutCID().Verify(ctx, 3, []byte("agree"))
	var ve *service.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("with a liar: %v, want a *VerifyError", err)
	}
	for _, run := range ve.Runs {
		if why := checkEvidence(run, a.ID()); why != "" {
			t.Errorf("%s: %s", run.Peer, why)
		}
	}
}

// TestAttack35CapabilityRightAndLoanDisagree: a capability's space right
// names one space, and the loan it carries is of another. Nothing on the
// runner compares the loan's space (nor its issuer, rights or prefix)
// with the right it rides on: the module asks for notes, is answered
// from diary, and the run's record says it was allowed notes and read
// notes/todo, which it never did. The same lack lets a capability carry a
// loan another user issued: the runner takes any loan for it and the
// module, whoever signed the capability.
//
// What should happen: the runner refuses, before anything runs, a
// capability whose loan is not the capability issuer's loan of the very
// space the right names, with at most its access and prefix.
func TestAttack35CapabilityRightAndLoanDisagree(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, r := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, 3*time.Minute)
	_, notesID := notes(t, ctx, a, a, "from notes")
	diary, err := a.Spaces().Create(ctx, "diary", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := diary.PutBytes(ctx, "todo", []byte("from the diary")); err != nil {
		t.Fatal(err)
	}
	d := publishCode(t, a, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	capb, err := service.SignCapabilitySwapped(ctx, a.Services(), r.ID(), d,
		service.Allow{Space: notesID, Access: service.Read}, service.Allow{Space: diary.ID(), Access: service.Read})
	if err != nil {
		t.Fatal(err)
	}
	out, err := service.RunWith(ctx, a.Services(), r.ID(), d, capb, []byte("get "+notesID+" todo\n"))
	if err == nil {
		t.Errorf("the runner ran under a right on %s carrying a loan of %s: the module read %q", notesID, diary.ID(), bytes.TrimSpace(out))
		for _, rec := range r.Services().Runs() {
			if rec.Touched != nil {
				t.Logf("its record: allowed %v, read %v", rec.Allowed, rec.Touched.Read)
			}
		}
	} else if !errors.Is(err, service.ErrBadCapability) && !errors.Is(err, service.ErrNotAllowed) {
		t.Errorf("a right and a loan that disagree: %v, want ErrBadCapability", err)
	} else if !strings.Contains(err.Error(), diary.ID()) {
		t.Logf("refused: %v", err)
	}
}

// TestAttack35StrangerPinsOnTheRunner: the host's add is allowed to every
// run, with no capability at all, and pins what it adds on the runner for
// good: "service run output", tied to no caller, counted against no
// quota, never released. Each add takes up to 64 MiB and a run may call
// it as often as its time allows, so any user a node runs code for can
// fill the node's disk with data the node's owner cannot tell from its
// own pins. (OutCID pins the output on the runner the same way.)
//
// What should happen: what a run adds for another user is not pinned for
// good on the runner: it is kept unpinned (the next GC takes it), or under
// a pin that ends, and the bytes a run may add are capped per run.
func TestAttack35StrangerPinsOnTheRunner(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	b, r := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, 3*time.Minute)
	d := publishCode(t, b, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	before, err := r.Content().Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Service("ops").On(r.ID()).Call(ctx, []byte("add one\nadd two\nadd three\n"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(out), "ok ") != 3 {
		t.Fatalf("the run answered %q", out)
	}
	after, err := r.Content().Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	had := map[string]bool{}
	for _, p := range before {
		had[p.CID.String()] = true
	}
	var left []string
	for _, p := range after {
		// The module itself is pinned where it runs: it is installed.
		if !had[p.CID.String()] && p.CID != d.Module {
			left = append(left, p.CID.String())
		}
	}
	if len(left) > 0 {
		t.Errorf("a run of another user's, with no rights, left %d pins on the runner that nothing ends: %v", len(left), left)
	}
}

// TestAttack35BudgetSumWraps: a nested call's most possible cost is the
// sum of its stages' Price.Most, in a uint64 that wraps. A pipeline whose
// stages ask MaxInt64, MaxInt64 and 2 millicredits sums to 2^64, that is
// 0, and a zero most skips the budget check: a run whose capability gives
// no credit at all (Budget 0, the only budget a Pipeline signs) calls it.
// (h.spent + most wraps the same way.)
//
// What should happen: the sum saturates (or the check is made per stage
// with overflow-safe arithmetic), and the call is refused with E_LIMIT.
func TestAttack35BudgetSumWraps(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	a := c.Node(0)
	ctx := nubetest.Context(t, 3*time.Minute)
	publishCode(t, a, wasmtest.Guest(t, "ops"), service.PublishOptions{Name: "ops"})
	for name, price := range map[string]uint64{"dear1": 1<<63 - 1, "dear2": 1<<63 - 1, "cheap": 2} {
		publishCode(t, a, wasmtest.Module(t, "upper"), service.PublishOptions{Name: name, Price: service.Price{PerCall: price}})
	}
	if _, err := a.Services().Service("dear1 | dear2 | cheap").Publish(ctx, service.PublishOptions{Name: "wraps"}); err != nil {
		t.Fatal(err)
	}
	out, err := a.Service("ops").On(a.ID()).Allow(service.Allow{Call: "cheap"}, service.Allow{Call: "wraps"}).Call(ctx, []byte("call cheap hi\ncall wraps hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(out), "\n", 2)
	if !strings.HasPrefix(lines[0], "err -6") {
		t.Fatalf("a run with no credit called a service priced 2 millicredits: %q (the test's control)", lines[0])
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "err -6") {
		t.Errorf("a run with no credit called stages that may cost 2^64 millicredits: %q, want err -6 (E_LIMIT)", out)
	}
}
