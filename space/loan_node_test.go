package space

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// nodeKey is the ed25519 key of h, as a runner holds its node key.
func nodeKey(t *testing.T, h host.Host) ed25519.PrivateKey {
	t.Helper()
	raw, err := h.Peerstore().PrivKey(h.ID()).Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		t.Fatalf("the node key of %s: %d bytes, %v", h.ID(), len(raw), err)
	}
	return ed25519.PrivateKey(raw)
}

const purpose = "bafymodule"

func soon() time.Time { return time.Now().Add(10 * time.Minute) }

// TestLoanReadsFromAHolder: the owner, and a grantee, lend reads under a
// prefix to a run on C, of a space whose home is A and holder B. The run
// reads and lists under the prefix and nothing else, its keys never reach
// C's cache or disk, and Close zeroes them.
func TestLoanReadsFromAHolder(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 4, func(c *Config) { c.Dir = t.TempDir() })
	a, b, c, d := ns[0], ns[1], ns[2], ns[3]
	sp, err := a.m.Create(ctx, "lent", Policy{On: []peer.ID{b.h.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"in/x": "ex", "in/y": "why", "out/z": "zed"} {
		if err := sp.PutBytes(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sp.Grant(ctx, d.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ds, _ := d.m.Open(a.user, "lent")
	o := a.m.ownedSpace(sp.ID())
	o.mu.Lock()
	secrets := append([][]byte{bytes.Clone(o.keys.Index)}, o.keys.Data...)
	o.mu.Unlock()
	for _, issuer := range []struct {
		name string
		s    *Space
		user peer.ID
	}{{"owner", sp, a.user}, {"grantee", ds, d.user}} {
		t.Run(issuer.name, func(t *testing.T) {
			tok, err := issuer.s.Lend(ctx, LoanOptions{Runner: c.h.ID(), Rights: Read, Prefix: "in/", Until: soon(), For: purpose})
			if err != nil {
				t.Fatal(err)
			}
			br, err := c.m.Borrow(ctx, tok, nodeKey(t, c.h), purpose)
			if err != nil {
				t.Fatal(err)
			}
			if br.Issuer() != issuer.user || br.Rights() != Read || br.Prefix() != "in/" || br.Space() != sp.ID() {
				t.Fatalf("borrowed: %s %s %q %s", br.Issuer(), br.Rights(), br.Prefix(), br.Space())
			}
			if got, err := br.GetBytes(ctx, "in/x"); err != nil || string(got) != "ex" {
				t.Fatalf("read under the loan: %q, %v", got, err)
			}
			items, err := br.List(ctx, "in/")
			if err != nil || len(items) != 2 || items[0].Key != "in/x" || items[1].Key != "in/y" {
				t.Fatalf("list under the loan: %+v, %v", items, err)
			}
			if _, err := br.GetBytes(ctx, "out/z"); !errors.Is(err, ErrNotAuthorised) {
				t.Fatalf("read outside the prefix: %v", err)
			}
			if _, err := br.List(ctx, ""); !errors.Is(err, ErrNotAuthorised) {
				t.Fatalf("list wider than the prefix: %v", err)
			}
			if err := br.PutBytes(ctx, "in/w", []byte("no")); !errors.Is(err, ErrNotAuthorised) {
				t.Fatalf("write under a read loan: %v", err)
			}
			c.m.mu.Lock()
			cached := c.m.cache[sp.ID()]
			c.m.mu.Unlock()
			if cached == nil || cached.keys.Index != nil {
				t.Fatalf("C's cache of the space: %+v, want a head without keys", cached)
			}
			kb := BorrowedKeyBytes(br)
			br.Close()
			for i, k := range kb {
				if len(k) != keySize || !bytes.Equal(k, make([]byte, keySize)) {
					t.Fatalf("key %d after Close: %x", i, k)
				}
			}
			if _, err := br.GetBytes(ctx, "in/x"); !errors.Is(err, ErrNotAuthorised) {
				t.Fatalf("read after Close: %v", err)
			}
		})
	}
	// The runner is no reader: nothing on its disk holds a key.
	c.m.Close()
	err = filepath.WalkDir(c.m.cfg.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		bs, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, k := range secrets {
			if bytes.Contains(bs, k) {
				t.Errorf("%s holds a key of the space", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLoanWrites: a grantee's write loan and the owner's (to a run on
// the home itself) land, each value naming the issuer as its writer, and
// only under the prefix.
func TestLoanWrites(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, c, d := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "lent", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, d.user, Write, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ds, _ := d.m.Open(a.user, "lent")
	tok, err := ds.Lend(ctx, LoanOptions{Runner: c.h.ID(), Rights: Read | Write, Prefix: "out/", Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	br, err := c.m.Borrow(ctx, tok, nodeKey(t, c.h), purpose)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	if err := br.PutBytes(ctx, "out/1", []byte("from the run")); err != nil {
		t.Fatal(err)
	}
	if got, err := sp.GetBytes(ctx, "out/1"); err != nil || string(got) != "from the run" {
		t.Fatalf("the owner reads the run's write: %q, %v", got, err)
	}
	if got, err := br.GetBytes(ctx, "out/1"); err != nil || string(got) != "from the run" {
		t.Fatalf("the run reads its write: %q, %v", got, err)
	}
	items, err := sp.List(ctx, "out/")
	if err != nil || len(items) != 1 || items[0].Writer != d.user.String() {
		t.Fatalf("the run's write names %+v (%v), want the issuer %s", items, err, d.user)
	}
	if err := br.PutBytes(ctx, "in/1", []byte("outside")); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("write outside the prefix: %v", err)
	}
	if err := br.Delete(ctx, "in/1"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("delete outside the prefix: %v", err)
	}
	if err := br.Delete(ctx, "out/1"); err != nil {
		t.Fatalf("delete under the loan: %v", err)
	}
	if _, err := sp.GetBytes(ctx, "out/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the run's delete: %v", err)
	}
	// The owner lends to a run on the home: the home checks the loan as
	// it would another node's.
	tok, err = sp.Lend(ctx, LoanOptions{Runner: a.h.ID(), Rights: Write, Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	ba, err := a.m.Borrow(ctx, tok, nodeKey(t, a.h), purpose)
	if err != nil {
		t.Fatal(err)
	}
	defer ba.Close()
	if err := ba.PutBytes(ctx, "own", []byte("on the home")); err != nil {
		t.Fatal(err)
	}
	if _, err := ba.GetBytes(ctx, "own"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("read under a write-only loan: %v", err)
	}
	items, err = sp.List(ctx, "own")
	if err != nil || len(items) != 1 || items[0].Writer != a.user.String() {
		t.Fatalf("the home run's write: %+v, %v", items, err)
	}
}

// atHome writes key under the run b's loan with a view of the home's
// current head and keys, skipping every check the runner makes: what the
// home alone refuses.
func atHome(ctx context.Context, home *node, b *Borrowed) error {
	return atHomeKey(ctx, home, b, b.loan.Prefix()+"k")
}

// atHomeKey is atHome with the key to write.
func atHomeKey(ctx context.Context, home *node, b *Borrowed, key string) error {
	o := home.m.ownedSpace(b.s.id)
	o.mu.Lock()
	v := &view{head: o.head, signed: o.signed, keys: o.keys, at: time.Now()}
	o.mu.Unlock()
	return b.s.writeOnce(ctx, v, b, OpPut, key, []byte("attack"), nil)
}

// TestLoanAttacks: loans used by another node, for another purpose,
// after their end, for too long, forged, widened, with Delegate, or under
// a revoked grant are refused by the runner's Borrow and, when a runner
// skips its checks, by the home.
func TestLoanAttacks(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 4, nil)
	a, b, c, d := ns[0], ns[1], ns[2], ns[3]
	sp, err := a.m.Create(ctx, "lent", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, d.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	gc, err := sp.Grant(ctx, c.user, Write, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bKey, cKey := nodeKey(t, b.h), nodeKey(t, c.h)
	// attacker is a run on n under raw that skipped Borrow's checks.
	attacker := func(n *node, key ed25519.PrivateKey, raw []byte) *Borrowed {
		var t loanToken
		unmarshal(raw, &t)
		l := &Loan{raw: raw}
		unmarshal(t.Signed.Body, &l.body)
		s, _ := n.m.Open(a.user, "lent")
		return &Borrowed{s: s, loan: l, node: key, runner: n.h.ID()}
	}
	before, _ := a.m.ownedSpace(sp.ID()).current()

	tokB, err := sp.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Read | Write, Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.m.Borrow(ctx, tokB, cKey, purpose); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("C borrows a loan for B: %v", err)
	}
	if err := atHome(ctx, a, attacker(c, cKey, tokB)); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("the home takes C's write under B's loan: %v", err)
	}
	if _, err := b.m.Borrow(ctx, tokB, bKey, "bafyother"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a loan borrowed for another purpose: %v", err)
	}
	// A run that writes outside its prefix: the home reads the key's name
	// in the entry and refuses it.
	tokP, err := sp.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Write, Prefix: "runs/", Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	if err := atHomeKey(ctx, a, attacker(b, bKey, tokP), "elsewhere"); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("the home takes a write outside the loan's prefix: %v", err)
	}

	// Loans the owner signs by hand: over, too long, with Delegate.
	hand := func(mod func(*loanBody)) []byte {
		now := time.Now()
		box, err := wrapKeysInfo(loanInfo(sp.ID()), b.h.ID(), a.m.ownedSpace(sp.ID()).keys)
		if err != nil {
			t.Fatal(err)
		}
		lb := loanBody{Space: sp.ID(), Issuer: a.user, Runner: b.h.ID(), Rights: Read | Write, Until: now.Add(10 * time.Minute).Unix(),
			For: purpose, Nonce: randomBytes(loanNonce), Keys: box, Time: now.Unix()}
		mod(&lb)
		raw, err := signLoan(a.m.cfg.UserKey, lb, nil)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	expired := hand(func(lb *loanBody) {
		lb.Time, lb.Until = time.Now().Add(-90*time.Minute).Unix(), time.Now().Add(-time.Hour).Unix()
	})
	long := hand(func(lb *loanBody) {
		lb.Time, lb.Until = time.Now().Add(50*time.Minute).Unix(), time.Now().Add(100*time.Minute).Unix()
	})
	for name, raw := range map[string][]byte{"an expired loan": expired, "a loan ending past MaxLoan": long} {
		if _, err := b.m.Borrow(ctx, raw, bKey, purpose); !errors.Is(err, ErrNotAuthorised) {
			t.Fatalf("Borrow of %s: %v", name, err)
		}
		if err := atHome(ctx, a, attacker(b, bKey, raw)); !errors.Is(err, ErrNotAuthorised) {
			t.Fatalf("the home takes a write under %s: %v", name, err)
		}
	}
	if _, err := sp.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Read, Until: time.Now().Add(2 * MaxLoan), For: purpose}); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("Lend past MaxLoan: %v", err)
	}
	if _, err := sp.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Read, For: purpose}); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("Lend with no end: %v", err)
	}
	if _, err := sp.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Read | Delegate, Until: soon(), For: purpose}); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("Lend of Delegate: %v", err)
	}
	delegate := hand(func(lb *loanBody) { lb.Rights |= Delegate })
	if _, err := b.m.Borrow(ctx, delegate, bKey, purpose); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("Borrow of a loan with Delegate: %v", err)
	}
	if err := atHome(ctx, a, attacker(b, bKey, delegate)); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("the home takes a write under a loan with Delegate: %v", err)
	}

	// A forged signature: one bit of it flipped.
	var tk loanToken
	unmarshal(tokB, &tk)
	tk.Signed.Sig[0] ^= 1
	forged, _ := marshal(tk)
	if _, err := b.m.Borrow(ctx, forged, bKey, purpose); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("Borrow of a forged loan: %v", err)
	}
	if err := atHome(ctx, a, attacker(b, bKey, forged)); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("the home takes a write under a forged loan: %v", err)
	}

	// D reads: it cannot lend a write, by Lend or by hand.
	ds, _ := d.m.Open(a.user, "lent")
	if _, err := ds.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Write, Until: soon(), For: purpose}); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a reader lends a write: %v", err)
	}
	dg, err := ds.myGrant(ctx, mustView(t, ctx, ds), Read)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	box, _ := wrapKeysInfo(loanInfo(sp.ID()), b.h.ID(), a.m.ownedSpace(sp.ID()).keys)
	widened, err := signLoan(d.m.cfg.UserKey, loanBody{Space: sp.ID(), Issuer: d.user, Runner: b.h.ID(), Rights: Read | Write,
		Until: now.Add(10 * time.Minute).Unix(), For: purpose, Nonce: randomBytes(loanNonce), Keys: box, Time: now.Unix()}, dg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Borrow(ctx, widened, bKey, purpose); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("Borrow of a write lent over a read grant: %v", err)
	}
	if err := atHome(ctx, a, attacker(b, bKey, widened)); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("the home takes a write lent over a read grant: %v", err)
	}

	// C writes, and lends it to B; once C's grant is revoked, neither
	// B's Borrow, nor its run, nor the home take the loan.
	cs, _ := c.m.Open(a.user, "lent")
	tok, err := cs.Lend(ctx, LoanOptions{Runner: b.h.ID(), Rights: Write, Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	run, err := b.m.Borrow(ctx, tok, bKey, purpose)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if err := run.PutBytes(ctx, "before", []byte("revocation")); err != nil {
		t.Fatal(err)
	}
	mid, _ := a.m.ownedSpace(sp.ID()).current()
	if err := sp.Revoke(ctx, gc.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.m.Borrow(ctx, tok, bKey, purpose); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("Borrow under a revoked grant: %v", err)
	}
	if err := run.PutBytes(ctx, "after", []byte("revocation")); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a run's write under a revoked grant: %v", err)
	}
	if err := atHome(ctx, a, attacker(b, bKey, tok)); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("the home takes a write under a revoked grant: %v", err)
	}
	after, _ := a.m.ownedSpace(sp.ID()).current()
	if mid.Seq != before.Seq+1 || after.Seq != mid.Seq+1 {
		t.Fatalf("refused changes moved the head: %d, then %d (one write), then %d (one revocation)", before.Seq, mid.Seq, after.Seq)
	}
}

func mustView(t *testing.T, ctx context.Context, s *Space) *view {
	t.Helper()
	v, err := s.readable(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
