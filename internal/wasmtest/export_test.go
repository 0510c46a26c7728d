package wasmtest

import (
	"path/filepath"
	"testing"
)

// Testdata returns the Go module internal/wasmtest/testdata/name, built
// as Example builds the examples.
func Testdata(t testing.TB, name string) []byte {
	t.Helper()
	return guestModule(t, filepath.Join(root(), "internal", "wasmtest", "testdata"), "testdata", name)
}
