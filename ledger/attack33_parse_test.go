package ledger

import "testing"

// TestParseCreditsBare: "." parses as an
// amount of zero with no error; `nube credit vouch USER .` then withdraws
// the line silently instead of being refused as no amount.
func TestParseCreditsBare(t *testing.T) {
	for _, bad := range []string{".", "..", "1..", ".0000"} {
		if v, err := ParseCredits(bad); err == nil {
			t.Errorf("ParseCredits(%q) = %d, accepted", bad, v)
		}
	}
}
