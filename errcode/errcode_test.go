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
