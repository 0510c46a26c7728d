package service

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestPayers drives a provider's book of payers on a clock of its own:
// open runs per payer and in all, refusal after a failed settlement and
// its end, runs that start before the ledger answers, and room made for
// new payers.
func TestPayers(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newPayers(func() time.Time { return now })
	alice, bob := peer.ID("alice"), peer.ID("bob")

	for i := range MaxOpenRuns {
		if err := b.admit(alice); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if err := b.admit(alice); !errors.Is(err, ErrUnsettled) {
		t.Fatalf("a run past MaxOpenRuns: %v, want ErrUnsettled", err)
	}
	if err := b.admit(bob); err != nil {
		t.Fatalf("another payer: %v", err)
	}
	b.end(alice, nil)
	if err := b.admit(alice); err != nil {
		t.Fatalf("a run once one settled: %v", err)
	}

	// A payer whose reserve held runs before the ledger answers, for a
	// while; one whose reserve failed waits again.
	if b.paying(bob) {
		t.Fatal("a payer never held is paying")
	}
	b.held(bob, true)
	if !b.paying(bob) {
		t.Fatal("a payer whose reserve held is not paying")
	}
	now = now.Add(payingFor)
	if b.paying(bob) {
		t.Fatal("paying outlasted payingFor")
	}
	b.held(bob, true)
	b.held(bob, false)
	if b.paying(bob) {
		t.Fatal("a payer whose last reserve failed is paying")
	}

	// A failed settlement: refused, and waits for the ledger, until
	// unpaidFor has passed.
	b.held(bob, true)
	b.end(bob, errors.New("no such reserve"))
	if err := b.admit(bob); !errors.Is(err, ErrUnsettled) {
		t.Fatalf("a payer whose settlement failed: %v, want ErrUnsettled", err)
	}
	if b.paying(bob) {
		t.Fatal("a payer whose settlement failed is paying")
	}
	now = now.Add(unpaidFor)
	if err := b.admit(bob); err != nil {
		t.Fatalf("after unpaidFor: %v", err)
	}
	b.end(bob, nil)

	// Open runs in all are bounded: each is a settlement to wait for.
	for range MaxOpenRuns {
		b.end(alice, nil)
	}
	for i := range maxOpenRuns {
		if err := b.admit(peer.ID(fmt.Sprint("payer", i))); err != nil {
			t.Fatalf("payer %d: %v", i, err)
		}
	}
	if err := b.admit("one more"); !errors.Is(err, ErrBusy) {
		t.Fatalf("past maxOpenRuns in all: %v, want ErrBusy", err)
	}
	for i := range maxOpenRuns {
		b.end(peer.ID(fmt.Sprint("payer", i)), nil)
	}
	if len(b.m) != 0 || b.open != 0 {
		t.Fatalf("%d payers and %d runs remembered once all ended", len(b.m), b.open)
	}

	// The book forgets idle payers to make room, never one with runs open.
	for i := range maxPayers {
		u := peer.ID(fmt.Sprint("held", i))
		if err := b.admit(u); err != nil {
			t.Fatal(err)
		}
		b.held(u, true)
		b.end(u, nil)
	}
	if err := b.admit(bob); err != nil {
		t.Fatalf("a new payer with the book full of idle ones: %v", err)
	}
	if len(b.m) != maxPayers || b.m[bob] == nil {
		t.Fatalf("%d payers remembered, bob among them: %v", len(b.m), b.m[bob] != nil)
	}
}
