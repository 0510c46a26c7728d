package space

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/identity"
)

// seeds returns a valid head, grant and change to start the fuzzers from.
func seeds(t testing.TB) (headB, grantB, changeB []byte) {
	key := identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	h := &head{Owner: owner, Name: "s", Seq: 1, Home: owner, Root: locator("x").Bytes()}
	s, err := sign(key, headDomain, h)
	if err != nil {
		t.Fatal(err)
	}
	headB, _ = marshal(s)
	g, err := extend(nil, key, grantLink{Space: owner.String() + "/s", Issuer: owner, To: owner, Rights: Read, Until: time.Now().Add(time.Hour).Unix(), Nonce: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	grantB, _ = marshal(g.links)
	body := changeBody{Space: owner.String() + "/s", Writer: owner, Op: OpPut, Tag: newKeyring().tag("k"), Entry: locator("e").Bytes(), Nonce: make([]byte, 16)}
	cs, err := sign(key, changeDomain, body)
	if err != nil {
		t.Fatal(err)
	}
	changeB, _ = marshal(change{Signed: cs, Grant: g.links})
	return
}

func FuzzHead(f *testing.F) {
	h, _, _ := seeds(f)
	f.Add(h)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hd, _, err := decodeHead(b, "")
		if err == nil {
			if _, err := hd.root(); err != nil {
				t.Fatalf("a head that decodes has a bad root: %v", err)
			}
		}
	})
}

func FuzzGrant(f *testing.F) {
	_, g, _ := seeds(f)
	f.Add(g)
	f.Fuzz(func(t *testing.T, b []byte) {
		gr, err := decodeGrant(b)
		if err == nil {
			for i, l := range gr.links {
				if len(l.Body) > maxLinkBody || len(gr.body[i].Nonce) > maxNonce {
					t.Fatalf("link %d decoded past its caps: %d bytes, a nonce of %d", i, len(l.Body), len(gr.body[i].Nonce))
				}
			}
			_ = gr.check(gr.Space(), Read, time.Now(), nil)
			if _, err := ParseGrant(gr.Token()); err != nil {
				t.Fatalf("a grant's own token does not parse: %v", err)
			}
		}
	})
}

func FuzzChange(f *testing.F) {
	_, _, c := seeds(f)
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodeChange(b)
	})
}

// FuzzLoan feeds arbitrary bytes to the loan decoder: it must fail
// cleanly, or give a loan within its caps whose checks do not panic.
func FuzzLoan(f *testing.F) {
	lf := newLoanFixture(f)
	now := time.Now()
	f.Add(signedLoan(f, lf.owner, lf.body(f, now, nil), nil))
	f.Add(signedLoan(f, lf.grantee, lf.body(f, now, func(b *loanBody) { b.Issuer, b.Rights = lf.granteeID, Read }), lf.grant(f, Read, 0)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := decodeLoan(b)
		if err != nil {
			return
		}
		if len(b) > MaxLoanSize || l.Rights()&^(Read|Write) != 0 || l.Rights() == 0 || len(l.Prefix()) > MaxKeyLen || len(l.For()) > MaxPurposeLen {
			t.Fatalf("a loan decoded past its caps: %d bytes, rights %s, a prefix of %d, a purpose of %d", len(b), l.Rights(), len(l.Prefix()), len(l.For()))
		}
		_ = l.check(now, nil)
		_ = l.checkRunner(l.Runner(), l.For())
		_ = l.allows(Read, l.Prefix())
	})
}

// FuzzOpen feeds arbitrary ciphertext to the value opener: it must fail
// cleanly, never panic or yield unauthenticated bytes.
func FuzzOpen(f *testing.F) {
	key := make([]byte, keySize)
	f.Add([]byte(valueMagic + "0123456789abcdef"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := newOpener(key, bytesReader(b), ^uint64(0))
		if err != nil {
			return
		}
		buf := make([]byte, 1024)
		for {
			if _, err := o.Read(buf); err != nil {
				return
			}
		}
	})
}

// FuzzOwned feeds arbitrary bytes to the decoder of a home's stored
// space: it must fail cleanly or give a head that checks and grants of
// that head's space.
func FuzzOwned(f *testing.F) {
	h, g, _ := seeds(f)
	var links []signed
	if err := unmarshal(g, &links); err != nil {
		f.Fatal(err)
	}
	b, err := marshal(ownedFile{Head: h, Grants: [][]signed{links, {}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hd, _, grants, _, _, _, err := decodeOwned(b)
		if err != nil {
			return
		}
		if _, err := hd.root(); err != nil {
			t.Fatalf("a stored head that decodes has a bad root: %v", err)
		}
		for _, g := range grants {
			if g.Space() != hd.id() {
				t.Fatalf("a grant on %s kept with the head of %s", g.Space(), hd.id())
			}
		}
	})
}
