package errcode

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestCodes(t *testing.T) {
	busy := New(Busy, "node is busy")
	if !errors.Is(busy, ErrBusy) || errors.Is(busy, ErrNotFound) || busy.Error() != "node is busy" {
		t.Fatal("a layer's sentinel does not match its code alone")
	}
	if !errors.Is(fmt.Errorf("run: %w", busy), busy) || Of(fmt.Errorf("run: %w", busy)) != Busy {
		t.Fatal("a wrapped sentinel lost its code")
	}
	other := New(Busy, "queue full")
	if errors.Is(busy, other) {
		t.Fatal("two layers' sentinels of one code match each other")
	}
	both := fmt.Errorf("%w and %w", New(NotFound, "x"), New(Refused, "y"))
	for range 50 {
		if Of(both) != Refused {
			t.Fatalf("an error of two kinds is %s, want the first in the table", Of(both))
		}
	}
	if Of(errors.New("?")) != Internal || Of(context.DeadlineExceeded) != Timeout || Of(nil) != "" {
		t.Fatal("Of of unknown, deadline or nil")
	}
	for _, e := range table {
		if Sentinel(e.code) != e {
			t.Errorf("Sentinel(%s)", e.code)
		}
	}
}

func TestTable(t *testing.T) {
	a, b := New(Refused, "a"), New(Refused, "b")
	tab := Table[string]{{"a", a}, {"b", b}, {"any", ErrRefused}, {"a2", a}}
	for range 50 {
		if k, ok := tab.KeyOf(fmt.Errorf("x: %w and %w", b, a)); !ok || k != "a" {
			t.Fatalf("KeyOf of two rows is %q, want the first", k)
		}
	}
	if k, _ := tab.KeyOf(New(Refused, "c")); k != "any" {
		t.Fatalf("KeyOf of a sentinel of a listed code is %q, want any", k)
	}
	if _, ok := tab.KeyOf(errors.New("?")); ok {
		t.Fatal("KeyOf matched an error of no row")
	}
	if _, ok := tab.KeyOf(nil); ok {
		t.Fatal("KeyOf matched nil")
	}
	if tab.ErrOf("a") != a || tab.ErrOf("b") != b || tab.ErrOf("none") != nil {
		t.Fatal("ErrOf")
	}
}

func TestWith(t *testing.T) {
	base := errors.New("count 9 is over 8")
	err := With(BadRequest, base)
	if err.Error() != base.Error() || !errors.Is(err, base) || !errors.Is(err, ErrBadRequest) || Of(err) != BadRequest {
		t.Fatal("With lost the message, the error or the code")
	}
	if With(Internal, base) != base || With(BadRequest, nil) != nil {
		t.Fatal("With of Internal or nil")
	}
}
