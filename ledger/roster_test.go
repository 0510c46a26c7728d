package ledger

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// member is a ledger node's key and ID, for tests.
type member struct {
	key ed25519.PrivateKey
	id  peer.ID
}

func members(t testing.TB, n int) []member {
	t.Helper()
	var ms []member
	for range n {
		k := identity.Generate()
		id, err := identity.ID(k.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{k, id})
	}
	slices.SortFunc(ms, func(a, b member) int {
		if a.id < b.id {
			return -1
		}
		return 1
	})
	return ms
}

func ids(ms []member) []peer.ID {
	var out []peer.ID
	for _, m := range ms {
		out = append(out, m.id)
	}
	slices.Sort(out)
	return out
}

// entry makes a roster entry of body signed by signers.
func entry(t testing.TB, body rosterBody, signers ...member) rosterEntry {
	t.Helper()
	b, err := wire.Marshal(&body)
	if err != nil {
		t.Fatal(err)
	}
	e := rosterEntry{Body: b}
	for _, s := range signers {
		e.Sigs = append(e.Sigs, memberSig{By: s.id, Sig: signAs(s.key, rosterDomain, b)})
	}
	return e
}

func genesisOf(t testing.TB, id string) (*Genesis, []byte) {
	g := &Genesis{ID: id, Created: 1, Limit: DefaultLimit}
	b, err := wire.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return g, b
}

// TestRoster: a ledger's roster holds only if its founding is signed by
// every founder and each change adds one member with a majority's
// signatures; anything else is refused, with the sentinel that says why.
func TestRoster(t *testing.T) {
	ms := members(t, 5)
	a, b, c, d, x := ms[0], ms[1], ms[2], ms[3], ms[4]
	three := ids([]member{a, b, c})
	_, gb := genesisOf(t, "ledger-1")
	found := entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b, c)
	four := ids([]member{a, b, c, d})
	five := ids([]member{a, b, c, d, x})
	for _, tc := range []struct {
		name  string
		chain chain
		want  error // nil: holds
	}{
		{"founded by all", chain{found}, nil},
		{"a founder did not sign", chain{entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b)}, ErrForged},
		{"a founder signed twice for one missing", chain{entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b, b)}, ErrForged},
		{"signed by an outsider", chain{entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b, x)}, ErrForged},
		{"no genesis", chain{entry(t, rosterBody{Ledger: "ledger-1", Members: three}, a, b, c)}, ErrMalformed},
		{"members unsorted", chain{entry(t, rosterBody{Ledger: "ledger-1", Members: []peer.ID{three[2], three[0], three[1]}, Genesis: gb}, a, b, c)}, ErrMalformed},
		{"a member added by a majority", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a, b)}, nil},
		{"a member added by a minority", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a)}, ErrForged},
		{"a member who votes itself in", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a, d)}, ErrForged},
		{"two added at once", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: five}, a, b, c)}, ErrMalformed},
		{"a member swapped out", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: ids([]member{a, b, d})}, a, b, c)}, ErrMalformed},
		{"an epoch skipped", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 2, Members: four}, a, b)}, ErrReplay},
		{"a change of another ledger", chain{found, entry(t, rosterBody{Ledger: "ledger-2", Epoch: 1, Members: four}, a, b)}, ErrImpostor},
		{"then a fifth, by three of four", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a, b),
			entry(t, rosterBody{Ledger: "ledger-1", Epoch: 2, Members: five}, b, c, d)}, nil},
		{"then a fifth, by two of four", chain{found, entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a, b),
			entry(t, rosterBody{Ledger: "ledger-1", Epoch: 2, Members: five}, c, d)}, ErrForged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := verifyChain(tc.chain)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			case tc.want == nil && (got.id() != "ledger-1" || got.epoch() != uint64(len(tc.chain)-1) || !got.extends(chain{found})):
				t.Fatalf("roster %s at epoch %d", got.id(), got.epoch())
			}
		})
	}
}

// TestAnswers: a node believes an answer only if a member of the roster it
// knows signed it, for this ledger, this kind of question and this very
// question.
func TestAnswers(t *testing.T) {
	ms := members(t, 4)
	a, b, c, x := ms[0], ms[1], ms[2], ms[3]
	_, gb := genesisOf(t, "ledger-1")
	roster, err := verifyChain(chain{entry(t, rosterBody{Ledger: "ledger-1", Members: ids([]member{a, b, c}), Genesis: gb}, a, b, c)})
	if err != nil {
		t.Fatal(err)
	}
	q := []byte("the question")
	body, _ := wire.Marshal(&outcome{Seq: 7, Balance: 1 << 40})
	sign := func(by member, an answer) signedAnswer {
		ab, err := wire.Marshal(&an)
		if err != nil {
			t.Fatal(err)
		}
		return signedAnswer{Answer: ab, By: by.id, Sig: signAs(by.key, answerDomain, ab)}
	}
	good := answer{Ledger: "ledger-1", Kind: kindSubmit, Req: reqHash(q), Body: body}
	forged := sign(a, good)
	forged.By = b.id // a's signature, claimed as b's
	for _, tc := range []struct {
		name string
		sa   signedAnswer
		want error
	}{
		{"a member's", sign(b, good), nil},
		{"a non-member's", sign(x, good), ErrImpostor},
		{"another ledger's", sign(a, answer{Ledger: "ledger-2", Kind: kindSubmit, Req: reqHash(q), Body: body}), ErrImpostor},
		{"to another question", sign(a, answer{Ledger: "ledger-1", Kind: kindSubmit, Req: reqHash([]byte("another")), Body: body}), ErrImpostor},
		{"of another kind", sign(a, answer{Ledger: "ledger-1", Kind: kindAccount, Req: reqHash(q), Body: body}), ErrImpostor},
		{"signed by another member than it names", forged, ErrImpostor},
		{"unsigned", signedAnswer{Answer: forged.Answer, By: a.id}, ErrImpostor},
		{"not an answer", signedAnswer{Answer: []byte("nonsense"), By: a.id}, ErrImpostor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o outcome
			_, err := roster.check(tc.sa, kindSubmit, reqHash(q), &o)
			switch {
			case tc.want == nil && (err != nil || o.Seq != 7):
				t.Fatalf("refused: %v (%+v)", err, o)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestLimiter: a peer gets its burst, then its rate, by the clock it is
// given; other peers are not held back by it.
func TestLimiter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter(10, func() time.Time { return now })
	taken := func(p peer.ID) int {
		n := 0
		for l.allow(p) {
			n++
		}
		return n
	}
	if got := taken("a"); got != 10 {
		t.Fatalf("a fresh peer took %d at once, want its burst of 10", got)
	}
	if got := taken("b"); got != 10 {
		t.Fatalf("a second peer took %d, want its own 10", got)
	}
	now = now.Add(300 * time.Millisecond)
	if got := taken("a"); got != 3 {
		t.Fatalf("after 300 ms a peer took %d, want 3", got)
	}
	now = now.Add(time.Hour)
	if got := taken("a"); got != 10 {
		t.Fatalf("after an hour a peer took %d, want no more than its burst", got)
	}
	for i := range maxBuckets + 10 {
		l.allow(peer.ID(strconv.Itoa(i)))
	}
	if len(l.peers) > maxBuckets {
		t.Fatalf("the limiter remembers %d peers, at most %d", len(l.peers), maxBuckets)
	}
}

// TestMachineRoster: the ledger's state machine takes a genesis only with
// its founding, a change of members only with a majority's signatures,
// and keeps the roster through a snapshot; a snapshot from before rosters
// restores the rules' state alone.
func TestMachineRoster(t *testing.T) {
	ms := members(t, 4)
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	three := ids([]member{a, b, c})
	gen, gb := genesisOf(t, "ledger-1")
	found := entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b, c)
	apply := func(f *fsm, v any) outcome {
		t.Helper()
		cmd, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.Apply(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var o outcome
		if err := wire.Unmarshal(out, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	f := newFSM(nil)
	half := entry(t, rosterBody{Ledger: "ledger-1", Members: three, Genesis: gb}, a, b)
	if o := apply(f, &genesisCmd{command: command{Op: opGenesis, Time: 1, Genesis: gen}}); o.Code != "malformed" {
		t.Fatalf("a genesis without its founding: %+v", o)
	}
	if o := apply(f, &genesisCmd{command: command{Op: opGenesis, Time: 1, Genesis: gen}, Roster: &half}); o.Code != "forged" {
		t.Fatalf("a genesis one founder did not sign: %+v", o)
	}
	other, _ := genesisOf(t, "ledger-2")
	if o := apply(f, &genesisCmd{command: command{Op: opGenesis, Time: 1, Genesis: other}, Roster: &found}); o.Code != "forged" {
		t.Fatalf("a genesis other than its founders signed: %+v", o)
	}
	if o := apply(f, &genesisCmd{command: command{Op: opGenesis, Time: 1, Genesis: gen}, Roster: &found}); o.Code != "" {
		t.Fatalf("the genesis: %+v", o)
	}
	four := ids([]member{a, b, c, d})
	minority := entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, a)
	if o := apply(f, &rosterCmd{Op: opMembers, Roster: &minority}); o.Code != "forged" {
		t.Fatalf("a member added by one of three: %+v", o)
	}
	added := entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: four}, b, c)
	if o := apply(f, &rosterCmd{Op: opMembers, Roster: &added}); o.Code != "" {
		t.Fatalf("a member added by two of three: %+v", o)
	}
	if r, _ := f.next(); r.epoch() != 1 || !r.has(d.id) {
		t.Fatalf("roster after the change: %v at epoch %d", r.members(), r.epoch())
	}
	var seq uint64
	f.view(func(s *state, _ chain) { seq = s.Seq })
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := newFSM(nil)
	if err := g.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if r, _ := g.next(); r.epoch() != 1 || !slices.Equal(r.members(), four) {
		t.Fatalf("roster after a restore: %v at epoch %d", r.members(), r.epoch())
	}
	// A snapshot of the rules' state alone, as ledgers kept it before.
	old, err := f.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h := newFSM(nil)
	if err := h.Restore(old); err != nil {
		t.Fatal(err)
	}
	h.view(func(s *state, r chain) {
		if s.Genesis == nil || s.Genesis.ID != "ledger-1" || s.Seq != seq || r != nil {
			t.Fatalf("an old snapshot restored as %+v with roster %v", s.Genesis, r)
		}
	})
}

// TestKnownRoundTrip: the roster a node keeps in ledger.json reads back
// as the same roster, and still verifies.
func TestKnownRoundTrip(t *testing.T) {
	ms := members(t, 4)
	a, b, c, d := ms[0], ms[1], ms[2], ms[3]
	_, gb := genesisOf(t, "ledger-1")
	r, err := verifyChain(chain{entry(t, rosterBody{Ledger: "ledger-1", Members: ids([]member{a, b, c}), Genesis: gb}, a, b, c),
		entry(t, rosterBody{Ledger: "ledger-1", Epoch: 1, Members: ids([]member{a, b, c, d})}, a, c)})
	if err != nil {
		t.Fatal(err)
	}
	buf, err := json.Marshal(known{Roster: r, Leader: b.id})
	if err != nil {
		t.Fatal(err)
	}
	var k known
	if err := json.Unmarshal(buf, &k); err != nil {
		t.Fatal(err)
	}
	back, err := verifyChain(k.Roster)
	if err != nil || !back.extends(r) || back.epoch() != 1 || k.Leader != b.id {
		t.Fatalf("ledger.json read back as %v at epoch %d, leader %s (%v):\n%s", back.members(), back.epoch(), k.Leader, err, buf)
	}
}

// signAs signs body under domain with key, as identity.Sign does; an
// ed25519 key always can.
func signAs(key crypto.Signer, domain string, body []byte) []byte {
	sig, err := identity.Sign(key, domain, body)
	if err != nil {
		panic(err)
	}
	return sig
}
