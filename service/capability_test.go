package service

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

func TestParseAllow(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Allow
		err  bool
	}{
		{in: "space:alice/notes", want: Allow{Space: "alice/notes", Access: Read}},
		{in: "space:alice/notes:read", want: Allow{Space: "alice/notes", Access: Read}},
		{in: "space:alice/notes:write", want: Allow{Space: "alice/notes", Access: Write}},
		{in: "space:alice/notes:read:todo/", want: Allow{Space: "alice/notes", Access: Read, Prefix: "todo/"}},
		{in: "space:alice/notes:write:a:b", want: Allow{Space: "alice/notes", Access: Write, Prefix: "a:b"}},
		{in: "space:alice/notes:inbox/", want: Allow{Space: "alice/notes", Access: Read, Prefix: "inbox/"}},
		{in: "space:notes:write", want: Allow{Space: "notes", Access: Write}},
		{in: "call:wc", want: Allow{Call: "wc"}},
		{in: "call:wc@1.0.0", want: Allow{Call: "wc@1.0.0"}},
		{in: "call:", err: true},
		{in: "call:a | b", err: true},
		{in: "space:", err: true},
		{in: "space:/notes", err: true},
		{in: "space:alice/", err: true},
		{in: "space:a/b/c", err: true},
		{in: "file:/etc/passwd", err: true},
		{in: "space", err: true},
		{in: "space:a/" + strings.Repeat("x", maxAllowLen), err: true},
	} {
		got, err := ParseAllow(c.in)
		if c.err {
			if !errors.Is(err, ErrBadCapability) {
				t.Errorf("ParseAllow(%q) = %+v, %v; want ErrBadCapability", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseAllow(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestCheckWants(t *testing.T) {
	d := func(wants ...string) *Descriptor { return &Descriptor{Name: "m", Wants: wants} }
	read := Allow{Space: "a/b", Access: Read}
	write := Allow{Space: "a/b", Access: Write}
	for _, c := range []struct {
		d      *Descriptor
		allows []Allow
		miss   string // a word the refusal must say; empty: allowed
	}{
		{d(), nil, ""},
		{d("space:read"), nil, "read on a space"},
		{d("space:read"), []Allow{read}, ""},
		{d("space:read"), []Allow{write}, ""},
		{d("space:write"), []Allow{read}, "write on a space"},
		{d("space:write"), []Allow{write}, ""},
		{d("call:wc"), []Allow{{Call: "upper"}}, "--allow call:wc"},
		{d("call:wc"), []Allow{{Call: "wc"}}, ""},
		{d("space:read", "call:wc"), []Allow{read}, "call:wc"},
	} {
		err := checkWants(c.d, c.allows)
		switch {
		case c.miss == "" && err != nil:
			t.Errorf("wants %v with %v: %v", c.d.Wants, c.allows, err)
		case c.miss != "" && (!errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), c.miss)):
			t.Errorf("wants %v with %v: %v; want a refusal naming %q", c.d.Wants, c.allows, err, c.miss)
		}
	}
}

func testCID(t testing.TB, s string) cid.Cid {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

func newKey(t testing.TB) (ed25519.PrivateKey, peer.ID) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.SignerID(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// TestCapabilityAttacks signs a capability for one run and tries it as
// an attacker would: on another node, for another module, by another
// caller, late, altered, forged and widened.
func TestCapabilityAttacks(t *testing.T) {
	key, user := newKey(t)
	_, runner := newKey(t)
	_, other := newKey(t)
	_, stranger := newKey(t)
	mod := testCID(t, "module")
	now := time.Now()
	c := &Capability{Runner: runner, Module: mod, Depth: 2, Until: now.Add(time.Minute),
		Allows: []Allow{{Space: user.String() + "/notes", Access: Read}, {Call: "wc"}}, loans: [][]byte{[]byte("loan"), nil}}
	raw, err := c.sign(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCapability(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.checkFor(user, runner, mod, now); err != nil {
		t.Fatalf("the capability does not hold for its own run: %v", err)
	}
	if !got.mayCall("wc") || got.mayCall("upper") {
		t.Error("mayCall does not follow the rights")
	}
	for name, err := range map[string]error{
		"on another node":           got.checkFor(user, other, mod, now),
		"for another module":        got.checkFor(user, runner, testCID(t, "other"), now),
		"from another caller":       got.checkFor(stranger, runner, mod, now),
		"after expiry":              got.checkFor(user, runner, mod, now.Add(time.Minute)),
		"with the clock far behind": got.checkFor(user, runner, mod, now.Add(-MaxCapabilityLife)),
	} {
		if !errors.Is(err, ErrNotAllowed) {
			t.Errorf("%s: %v, want ErrNotAllowed", name, err)
		}
	}

	// Altered in transit: each field of the body changed, signature kept.
	var e identity.Envelope
	if err := wire.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	var b capBody
	if err := wire.Unmarshal(e.Body, &b); err != nil {
		t.Fatal(err)
	}
	alter := map[string]func(*capBody){
		"runner":   func(b *capBody) { b.Runner = other.String() },
		"widened":  func(b *capBody) { b.Allows[0].Access = Write },
		"prefix":   func(b *capBody) { b.Allows[0].Prefix = ""; b.Allows[0].Space = "x/y" },
		"call":     func(b *capBody) { b.Allows = append(b.Allows, allowWire{Call: "rm"}) },
		"until":    func(b *capBody) { b.Until += 3600 },
		"depth":    func(b *capBody) { b.Depth = MaxDepth },
		"budget":   func(b *capBody) { b.Budget = 1 << 40 },
		"impostor": func(b *capBody) { b.Issuer = make([]byte, ed25519.PublicKeySize) },
	}
	for name, f := range alter {
		x := b
		x.Allows = append([]allowWire(nil), b.Allows...)
		f(&x)
		body, err := wire.Marshal(&x)
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := wire.Marshal(identity.Envelope{Body: body, Sig: e.Sig})
		if _, err := ParseCapability(forged); !errors.Is(err, ErrBadCapability) {
			t.Errorf("altered %s: %v, want ErrBadCapability", name, err)
		}
	}

	// Signed by a stranger who names the user as issuer.
	skey, _ := newKey(t)
	x := b
	sig, err := identity.Sign(skey, capDomain, e.Body)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := wire.Marshal(identity.Envelope{Body: e.Body, Sig: sig})
	_ = x
	if _, err := ParseCapability(forged); !errors.Is(err, ErrBadCapability) {
		t.Errorf("signed by a stranger: %v, want ErrBadCapability", err)
	}

	// A space right with no loan cannot be used.
	noLoan := &Capability{Runner: runner, Module: mod, Until: now.Add(time.Minute), Allows: []Allow{{Space: "a/b", Access: Read}}, loans: [][]byte{nil}}
	raw2, err := noLoan.sign(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCapability(raw2); !errors.Is(err, ErrBadCapability) {
		t.Errorf("a space right without its loan: %v", err)
	}

	// The issuer cannot sign one too long, or too deep.
	for name, c := range map[string]*Capability{
		"too long": {Runner: runner, Module: mod, Until: now.Add(MaxCapabilityLife + time.Minute)},
		"expired":  {Runner: runner, Module: mod, Until: now.Add(-time.Second)},
		"too deep": {Runner: runner, Module: mod, Until: now.Add(time.Minute), Depth: MaxDepth + 1},
		"negative": {Runner: runner, Module: mod, Until: now.Add(time.Minute), Depth: -1},
		"delegate": {Runner: runner, Module: mod, Until: now.Add(time.Minute), Allows: []Allow{{Space: "a/b", Access: 7}}, loans: [][]byte{[]byte("l")}},
		"both":     {Runner: runner, Module: mod, Until: now.Add(time.Minute), Allows: []Allow{{Space: "a/b", Access: Read, Call: "wc"}}, loans: [][]byte{[]byte("l")}},
	} {
		if _, err := c.sign(key); !errors.Is(err, ErrBadCapability) {
			t.Errorf("%s: signed (%v)", name, err)
		}
	}
}

func FuzzCapability(f *testing.F) {
	key, _ := newKey(f)
	_, runner := newKey(f)
	c := &Capability{Runner: runner, Module: testCID(f, "m"), Until: time.Now().Add(time.Minute),
		Allows: []Allow{{Space: "a/b", Access: Write, Prefix: "p"}, {Call: "wc"}}, loans: [][]byte{[]byte("loan"), nil}}
	raw, err := c.sign(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0xa2, 0x01, 0x40, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCapability(b)
		if err != nil {
			return
		}
		if len(c.Allows) != len(c.loans) || len(c.Allows) > maxAllows {
			t.Fatalf("parsed %d rights with %d loans", len(c.Allows), len(c.loans))
		}
		c.checkFor(c.Issuer, c.Runner, c.Module, time.Now())
		c.mayCall("wc")
		c.space("a/b")
	})
}

func FuzzProof(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xa2, 0x01, 0x41, 0x00, 0x02, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseProof(b); err == nil && p.Runner == "" {
			t.Fatal("a proof with no runner parsed")
		}
	})
}
