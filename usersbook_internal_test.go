package nube

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

// TestNodeBookReopens writes a book with a node in it and opens it again,
// as a restart does; then opens a book an earlier nube wrote with the
// IDs' raw bytes as keys.
func TestNodeBookReopens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nodes.json")
	id, err := identity.ID(identity.Generate().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	b, err := openNodeBook(path)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Unix(1700000000, 0).UTC()
	if err := b.add(id, since); err != nil {
		t.Fatal(err)
	}
	again, err := openNodeBook(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := again.s.Nodes[id]; !got.Equal(since) {
		t.Fatalf("reopened book has %v for the node, want %v", got, since)
	}

	// The raw form an earlier nube wrote.
	rev := nodecert.Revocation{User: id, Node: id, At: since.Unix(), Sig: []byte{1}}
	old := map[string]any{"nodes": map[string]time.Time{string(id): since}, "revoked": map[string]any{string(id): rev}}
	raw, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	legacy, err := openNodeBook(path)
	if err != nil {
		t.Fatalf("open a book with raw keys: %v", err)
	}
	if _, ok := legacy.s.Revoked[id]; !ok {
		t.Fatalf("a revocation whose key was written raw is lost: %v", legacy.s.Revoked)
	}
	if len(legacy.s.Nodes) != 0 {
		t.Fatalf("a raw key read as a node: %v", legacy.s.Nodes)
	}
}
