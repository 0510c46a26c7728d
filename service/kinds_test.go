package service

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nubecloud/nube/wasm"
)

// TestKindOf checks that classification is deterministic: an error that
// matches two kinds gets the first in the table, every time, and an
// error of no known kind is "failed", never a trap.
func TestKindOf(t *testing.T) {
	both := fmt.Errorf("%w: %w", ErrBadDescriptor, ErrBadSignature)
	for range 100 { // map order once made this random
		if k := kindOf(both); k != kindSignature {
			t.Fatalf("an error both bad-descriptor and bad-signature is %q", k)
		}
	}
	if k := kindOf(errors.New("something else")); k != kindFailed {
		t.Fatalf("an unknown error is %q", k)
	}
	if k := kindOf(&wasm.ExitError{Code: 2}); k != kindExit {
		t.Fatalf("an exit error is %q", k)
	}
	e := &RunError{Kind: kindFailed, Message: "x"}
	if errors.Is(e, wasm.ErrTrap) || len(e.Unwrap()) != 0 {
		t.Fatalf("a failed run unwraps to %v", e.Unwrap())
	}
	for _, k := range kinds {
		if got := kindError(k.Key); got == nil {
			t.Errorf("kind %q has no error", k.Key)
		}
	}
}
