package service

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nubecloud/nube/internal/wire"
)

// FuzzUnsettled feeds whatever a damaged disk may hold to the reader of
// the receipts kept until settled: it must refuse, never panic, and what
// it takes must name a reserve and a receipt.
func FuzzUnsettled(f *testing.F) {
	good, _ := wire.Marshal(&unsettled{Payer: "p", Hold: []byte("h"), Expires: 1, Receipt: []byte("r")})
	f.Add(good)
	f.Add([]byte{0xa0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "u")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		u, err := readUnsettled(p)
		if err == nil && (len(u.Hold) == 0 || len(u.Receipt) == 0) {
			t.Fatalf("took %+v", u)
		}
	})
}
