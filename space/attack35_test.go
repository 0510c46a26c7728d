package space

import (
	"errors"
	"testing"
)

// TestAttack35RunnerForgesWriter: the entry a write files says who wrote
// the value (Item.Writer), and Borrowed.Put's doc promises that a run's
// write "names the loan's issuer as its writer". But the entry is made and
// sealed by the writing node, and the home never compares its Writer with
// who is accountable for the change: a runner node holding D's write loan
// files a value that names A, the owner, as its writer, and the home
// applies it. So does a grantee writing with its own grant.
//
// What should happen: the home refuses (ErrBadChange) a put whose
// entry's Writer is not the loan's issuer (for a change under a loan) or
// the change's signer (otherwise).
func TestAttack35RunnerForgesWriter(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, c, d := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "lent", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, d.user, Write, soon()); err != nil {
		t.Fatal(err)
	}
	ds, _ := d.m.Open(a.user, "lent")
	tok, err := ds.Lend(ctx, LoanOptions{Runner: c.h.ID(), Rights: Write, Prefix: "out/", Until: soon(), For: purpose})
	if err != nil {
		t.Fatal(err)
	}
	br, err := c.m.Borrow(ctx, tok, nodeKey(t, c.h), purpose)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	// The malicious runner keeps the loan's bytes (which the home checks)
	// and names the owner as the writer in the entry it seals.
	forged := *br.loan
	forged.body.Issuer = a.user
	evil := &Borrowed{s: br.s, loan: &forged, node: br.node, runner: br.runner, keys: br.keys}
	err = evil.PutBytes(ctx, "out/order", []byte("pay the runner"))
	items, lerr := sp.List(ctx, "out/")
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, it := range items {
		if it.Writer != d.user.String() {
			t.Errorf("the home applied a run's write naming %s as its writer; the loan is %s's (put: %v)", it.Writer, d.user, err)
		}
	}
	if err == nil {
		t.Errorf("the home took a change whose entry names another writer than the loan's issuer")
	} else if !errors.Is(err, ErrBadChange) && !errors.Is(err, ErrNotAuthorised) {
		t.Errorf("a forged writer: %v, want ErrBadChange", err)
	}
}
