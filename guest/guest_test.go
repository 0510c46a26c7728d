package guest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestErrorIs(t *testing.T) {
	sentinels := []*Error{ErrDenied, ErrNotFound, ErrInvalid, ErrTooLarge, ErrBadHandle, ErrLimit, ErrUnavailable, ErrFailed}
	for i, s := range sentinels {
		if s.Code != -(i + 1) {
			t.Errorf("sentinel %d has code %d, want %d (HOSTAPI.md)", i, s.Code, -(i + 1))
		}
		err := fmt.Errorf("wrapped: %w", &Error{Code: s.Code, Op: "space_get", Message: "not granted"})
		for j, other := range sentinels {
			if got := errors.Is(err, other); got != (i == j) {
				t.Errorf("errors.Is(code %d, code %d) = %v", s.Code, other.Code, got)
			}
		}
	}
	unknown := &Error{Code: -99, Op: "call"}
	if !errors.Is(unknown, ErrFailed) || errors.Is(unknown, ErrDenied) {
		t.Error("an unknown code is not E_FAILED alone")
	}
	if got := unknown.Error(); got != "call: failed" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: CodeDenied, Op: "space_get", Message: "not granted"}).Error(); got != "space_get: not granted" {
		t.Errorf("Error() = %q", got)
	}
}

func TestDecodeList(t *testing.T) {
	b := []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0, 3, 0, 0, 0, 'b', '/', 'c'}
	keys, err := decodeList(b)
	if err != nil || !slices.Equal(keys, []string{"a", "", "b/c"}) {
		t.Errorf("decodeList = %q, %v", keys, err)
	}
	if keys, err := decodeList(nil); err != nil || len(keys) != 0 {
		t.Errorf("decodeList(nil) = %q, %v", keys, err)
	}
	for _, bad := range [][]byte{{1, 0}, {2, 0, 0, 0, 'a'}, {0xff, 0xff, 0xff, 0xff}} {
		if _, err := decodeList(bad); !errors.Is(err, ErrFailed) {
			t.Errorf("decodeList(%v) = %v, want ErrFailed", bad, err)
		}
	}
}
