package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestPprof: the daemon's API serves Go's profiler behind the token, so a
// user can profile a slow node.
func TestPprof(t *testing.T) {
	_, s, tok := serve(t)
	base := s.URL() + "/debug/pprof/"
	if code, _ := get(t, base, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("the profiler without the token: %d, want 401", code)
	}
	if code, body := get(t, base, "", "Bearer "+tok); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("the profiler's index: %d", code)
	}
	if code, body := get(t, base+"heap?debug=1", "", "Bearer "+tok); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("a heap profile: %d %.80s", code, body)
	}
	// A CPU profile of a second: gzip, as go tool pprof reads it.
	if code, body := get(t, base+"profile?seconds=1", "", "Bearer "+tok); code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Fatalf("a CPU profile: %d, %d bytes", code, len(body))
	}
}
