package space

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

// InflateStoredHead rewrites the head that the home keeps of space in dir
// (a node's spaces dir) with readers nobody holds the key of, signed by
// key, until it is size bytes: what a home without the head check stored
// after thousands of grants.
func InflateStoredHead(t testing.TB, dir string, key ed25519.PrivateKey, space string, size int) {
	t.Helper()
	p := filepath.Join(dir, ownedDir, fileName(space))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var of ownedFile
	if err := unmarshal(b, &of); err != nil {
		t.Fatal(err)
	}
	h, _, err := decodeHead(of.Head, space)
	if err != nil {
		t.Fatal(err)
	}
	if of.Head, err = marshal(inflate(t, key, h, size)); err != nil {
		t.Fatal(err)
	}
	if b, err = marshal(of); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BorrowedKeyBytes returns the byte slices of b's keyring themselves (the
// index key, then each epoch's data key), not copies, so that a test can
// see Close zero them.
func BorrowedKeyBytes(b *Borrowed) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte{b.keys.Index}, b.keys.Data...)
}

// SpaceKeyBytes returns copies of the keys of s as its user holds them:
// the index key, then each epoch's data key.
func SpaceKeyBytes(ctx context.Context, s *Space) ([][]byte, error) {
	v, err := s.readable(ctx, true)
	if err != nil {
		return nil, err
	}
	out := [][]byte{bytes.Clone(v.keys.Index)}
	for _, d := range v.keys.Data {
		out = append(out, bytes.Clone(d))
	}
	return out, nil
}

// HeadSeq is the sequence number of the signed head b, or 0.
func HeadSeq(b []byte) uint64 {
	h, _, err := decodeHead(b, "")
	if err != nil {
		return 0
	}
	return h.Seq
}
