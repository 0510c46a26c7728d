package space

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

// loanFixture is an owner, a grantee and a runner node, with their keys,
// and the space the loans are on.
type loanFixture struct {
	owner, grantee, runner       ed25519.PrivateKey
	ownerID, granteeID, runnerID peer.ID
	space                        string
	keys                         keyring
}

func newLoanFixture(t testing.TB) *loanFixture {
	f := &loanFixture{owner: identity.Generate(), grantee: identity.Generate(), runner: identity.Generate(), keys: newKeyring()}
	f.ownerID, _ = identity.ID(f.owner.Public().(ed25519.PublicKey))
	f.granteeID, _ = identity.ID(f.grantee.Public().(ed25519.PublicKey))
	f.runnerID, _ = identity.ID(f.runner.Public().(ed25519.PublicKey))
	f.space = f.ownerID.String() + "/lent"
	return f
}

// grant is the owner's grant of rights to the grantee, until until (unix
// seconds, 0 for no end).
func (f *loanFixture) grant(t testing.TB, rights Rights, until int64) *Grant {
	g, err := extend(nil, f.owner, grantLink{Space: f.space, Issuer: f.ownerID, To: f.granteeID, Rights: rights, Until: until, Nonce: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// body is a good loan of the owner's, to the runner, changed by mod.
func (f *loanFixture) body(t testing.TB, now time.Time, mod func(*loanBody)) loanBody {
	box, err := wrapKeysInfo(loanInfo(f.space), f.runnerID, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	b := loanBody{Space: f.space, Issuer: f.ownerID, Runner: f.runnerID, Rights: Read | Write, Prefix: "runs/",
		Until: now.Add(30 * time.Minute).Unix(), For: "bafymodule", Nonce: make([]byte, loanNonce), Keys: box, Time: now.Unix()}
	if mod != nil {
		mod(&b)
	}
	return b
}

func signedLoan(t testing.TB, key ed25519.PrivateKey, b loanBody, g *Grant) []byte {
	raw, err := signLoan(key, b, g)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLoanRules runs the rules of a loan, as decodeLoan and check apply
// them, over loans good and bad.
func TestLoanRules(t *testing.T) {
	f := newLoanFixture(t)
	now := time.Now()
	readGrant := f.grant(t, Read, 0)
	writeGrant := f.grant(t, Read|Write, now.Add(20*time.Minute).Unix())
	delegated, err := extend(f.grant(t, Read|Write|Delegate, 0), f.grantee, grantLink{Space: f.space, Issuer: f.granteeID, To: f.runnerID, Rights: Read, Nonce: []byte{2}})
	if err != nil {
		t.Fatal(err)
	}
	byGrantee := func(r Rights, until time.Duration) func(*loanBody) {
		return func(b *loanBody) {
			b.Issuer, b.Rights = f.granteeID, r
			if until != 0 {
				b.Until = now.Add(until).Unix()
			}
		}
	}
	for _, tc := range []struct {
		name    string
		by      ed25519.PrivateKey
		mod     func(*loanBody)
		grant   *Grant
		decode  error         // from decodeLoan
		at      time.Duration // check at now+at
		revoked []string
		check   error
	}{
		{name: "the owner lends read and write", by: f.owner},
		{name: "the owner lends read alone", by: f.owner, mod: func(b *loanBody) { b.Rights = Read }},
		{name: "the owner lends write alone", by: f.owner, mod: func(b *loanBody) { b.Rights = Write }},
		{name: "a grantee lends what it has", by: f.grantee, mod: byGrantee(Read, 0), grant: readGrant},
		{name: "a grantee lends write over a read grant", by: f.grantee, mod: byGrantee(Read|Write, 0), grant: readGrant, decode: ErrNotAuthorised},
		{name: "a grantee lends for longer than its grant", by: f.grantee, mod: byGrantee(Write, 0), grant: writeGrant, decode: ErrNotAuthorised},
		{name: "a grantee lends within its grant", by: f.grantee, mod: byGrantee(Write, 10*time.Minute), grant: writeGrant},
		{name: "its grant ends before the loan is used", by: f.grantee, mod: byGrantee(Write, 10*time.Minute), grant: writeGrant, at: 25 * time.Minute, check: ErrNotAuthorised},
		{name: "a grantee lends under another's grant", by: f.grantee, mod: byGrantee(Read, 0), grant: delegated, decode: ErrBadGrant},
		{name: "a grantee lends with no grant", by: f.grantee, mod: byGrantee(Read, 0), decode: ErrBadGrant},
		{name: "the owner attaches a chain", by: f.owner, grant: readGrant, decode: ErrBadGrant},
		{name: "signed by another than its issuer", by: f.grantee, decode: ErrBadGrant},
		{name: "delegate", by: f.owner, mod: func(b *loanBody) { b.Rights = Read | Delegate }, decode: ErrBadGrant},
		{name: "no rights", by: f.owner, mod: func(b *loanBody) { b.Rights = 0 }, decode: ErrBadGrant},
		{name: "unknown rights", by: f.owner, mod: func(b *loanBody) { b.Rights = 8 | Read }, decode: ErrBadGrant},
		{name: "no end", by: f.owner, mod: func(b *loanBody) { b.Until = 0 }, decode: ErrBadGrant},
		{name: "ends before it was signed", by: f.owner, mod: func(b *loanBody) { b.Until = b.Time - 1 }, decode: ErrBadGrant},
		{name: "runs longer than MaxLoan", by: f.owner, mod: func(b *loanBody) { b.Until = now.Add(MaxLoan + time.Minute).Unix() }, decode: ErrBadGrant},
		{name: "runs MaxLoan", by: f.owner, mod: func(b *loanBody) { b.Until = now.Add(MaxLoan).Unix() }},
		{name: "dated ahead to run longer", by: f.owner, mod: func(b *loanBody) {
			b.Time, b.Until = now.Add(50*time.Minute).Unix(), now.Add(100*time.Minute).Unix()
		}, check: ErrNotAuthorised},
		{name: "expired", by: f.owner, at: 31 * time.Minute, check: ErrNotAuthorised},
		{name: "at its last second", by: f.owner, at: 30 * time.Minute},
		{name: "its grant revoked", by: f.grantee, mod: byGrantee(Read, 0), grant: readGrant, revoked: readGrant.Chain(), check: ErrNotAuthorised},
		{name: "another grant revoked", by: f.grantee, mod: byGrantee(Read, 0), grant: readGrant, revoked: writeGrant.Chain()},
		{name: "a prefix over MaxKeyLen", by: f.owner, mod: func(b *loanBody) { b.Prefix = strings.Repeat("p", MaxKeyLen+1) }, decode: ErrBadGrant},
		{name: "no purpose", by: f.owner, mod: func(b *loanBody) { b.For = "" }, decode: ErrBadGrant},
		{name: "a purpose over the limit", by: f.owner, mod: func(b *loanBody) { b.For = strings.Repeat("m", MaxPurposeLen+1) }, decode: ErrBadGrant},
		{name: "a short nonce", by: f.owner, mod: func(b *loanBody) { b.Nonce = b.Nonce[:8] }, decode: ErrBadGrant},
		{name: "no keys", by: f.owner, mod: func(b *loanBody) { b.Keys = nil }, decode: ErrBadGrant},
		{name: "a bad space", by: f.owner, mod: func(b *loanBody) { b.Space = "nobody/x" }, decode: ErrBadGrant},
		{name: "a runner that is no key", by: f.owner, mod: func(b *loanBody) { b.Runner = "x" }, decode: ErrBadGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := decodeLoan(signedLoan(t, tc.by, f.body(t, now, tc.mod), tc.grant))
			if tc.decode != nil || err != nil {
				if !errors.Is(err, tc.decode) {
					t.Fatalf("decode: %v, want %v", err, tc.decode)
				}
				return
			}
			if err := l.check(now.Add(tc.at), tc.revoked); !errors.Is(err, tc.check) || (tc.check == nil) != (err == nil) {
				t.Fatalf("check: %v, want %v", err, tc.check)
			}
		})
	}
	if _, err := decodeLoan(make([]byte, MaxLoanSize+1)); !errors.Is(err, ErrBadGrant) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("an oversized loan: %v", err)
	}
}

// TestLoanUse runs the rules of what a loan allows a runner, and what a
// home applies under it.
func TestLoanUse(t *testing.T) {
	f := newLoanFixture(t)
	now := time.Now()
	l, err := decodeLoan(signedLoan(t, f.owner, f.body(t, now, func(b *loanBody) { b.Rights = Read }), nil))
	if err != nil {
		t.Fatal(err)
	}
	w, err := decodeLoan(signedLoan(t, f.owner, f.body(t, now, nil), nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		l    *Loan
		want Rights
		key  string
		err  bool
	}{
		{"read under the prefix", l, Read, "runs/1", false},
		{"the prefix itself", l, Read, "runs/", false},
		{"write under a read loan", l, Write, "runs/1", true},
		{"read outside the prefix", l, Read, "other/1", true},
		{"a list wider than the prefix", l, Read, "run", true},
		{"a list of everything", l, Read, "", true},
		{"write under a write loan", w, Write, "runs/x", false},
		{"read and write", w, Read | Write, "runs/x", false},
	} {
		if err := tc.l.allows(tc.want, tc.key); (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrNotAuthorised)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := l.checkRunner(f.runnerID, "bafymodule"); err != nil {
		t.Fatalf("the loan's own runner and purpose: %v", err)
	}
	if err := l.checkRunner(f.granteeID, "bafymodule"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("another runner: %v", err)
	}
	if err := l.checkRunner(f.runnerID, "bafyother"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("another purpose: %v", err)
	}
	body := func(mod func(*changeBody)) *changeBody {
		b := &changeBody{Space: f.space, Writer: f.runnerID, Op: OpPut, Time: now.UnixNano()}
		if mod != nil {
			mod(b)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		l    *Loan
		body *changeBody
		at   time.Duration
		err  error
	}{
		{"a write under a write loan", w, body(nil), 0, nil},
		{"a write under a read loan", l, body(nil), 0, ErrNotAuthorised},
		{"signed by another node", w, body(func(b *changeBody) { b.Writer = f.granteeID }), 0, ErrNotAuthorised},
		{"for another space", w, body(func(b *changeBody) { b.Space = f.ownerID.String() + "/other" }), 0, ErrNotAuthorised},
		{"made after the loan ended", w, body(func(b *changeBody) { b.Time = now.Add(31 * time.Minute).UnixNano() }), 0, ErrNotAuthorised},
		{"reaching the home after it ended", w, body(nil), 31 * time.Minute, ErrNotAuthorised},
	} {
		if err := checkLoanChange(tc.l, tc.body, now.Add(tc.at), nil); !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

// TestLoanKeysDoNotSwap: a keyring wrapped for a reader's head does not
// open as a loan's, nor a loan's as a reader's, though both are sealed
// to the same key.
func TestLoanKeysDoNotSwap(t *testing.T) {
	f := newLoanFixture(t)
	asReader, err := wrapKeys(f.space, f.runnerID, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	asLoan, err := wrapKeysInfo(loanInfo(f.space), f.runnerID, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unwrapKeysInfo(loanInfo(f.space), f.runner, asReader); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a reader's box opened as a loan's: %v", err)
	}
	if _, err := unwrapKeys(f.space, f.runner, asLoan); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a loan's box opened as a reader's: %v", err)
	}
	if _, err := unwrapKeysInfo(loanInfo(f.ownerID.String()+"/other"), f.runner, asLoan); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a loan's box opened for another space: %v", err)
	}
	k, err := unwrapKeysInfo(loanInfo(f.space), f.runner, asLoan)
	if err != nil || k.tag("x") != f.keys.tag("x") {
		t.Fatalf("the loan's box for its runner: %v", err)
	}
}
