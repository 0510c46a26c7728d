package space

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"testing"

	"github.com/nubecloud/nube/internal/identity"
)

// fakeReader is a reader entry of a head for a user nobody holds the key
// of, as many grants would add.
func fakeReader(t testing.TB, box int) sealedKeys {
	pub := make([]byte, ed25519.PublicKeySize)
	rand.Read(pub)
	u, err := identity.ID(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	return sealedKeys{User: u, Box: randomBytes(box)}
}

// inflate adds reader entries to h until its signed encoding is exactly
// size bytes (or the first size past it the entries can make).
func inflate(t testing.TB, key ed25519.PrivateKey, h *head, size int) signed {
	t.Helper()
	enc := func() (signed, int) {
		s, err := sign(key, headDomain, h)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := marshal(s)
		return s, len(b)
	}
	s, n := enc()
	for n < size-1000 {
		// An entry of a 120-byte box takes under 170 bytes: add what
		// surely fits, then measure again.
		for range max(1, (size-1000-n)/170) {
			h.Keys = append(h.Keys, fakeReader(t, 120))
		}
		s, n = enc()
	}
	// Pad the last entry's box to land on size: a box's length header
	// grows only past 255 and 65535 bytes, neither of which this crosses.
	if n < size {
		h.Keys = append(h.Keys, fakeReader(t, 300))
		s, n = enc()
		last := &h.Keys[len(h.Keys)-1]
		last.Box = randomBytes(len(last.Box) - (n - size))
		s, n = enc()
	}
	if n != size {
		t.Fatalf("inflated head is %d bytes, want %d", n, size)
	}
	return s
}

// TestHeadOverTheLimitIsRefused fills a space's head with readers to a
// few bytes under MaxHeadSize; the next write would carry it over, so the
// home refuses it with ErrHeadTooLarge, and the space stays at its
// previous head: in memory, on disk and in the store's pin.
func TestHeadOverTheLimitIsRefused(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	ns := bareNodes(t, 1, func(c *Config) { c.Dir = dir })
	a := ns[0]
	sp, err := a.m.Create(ctx, "full", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	o := a.m.ownedSpace(sp.ID())
	// A head just under the limit, as many readers would make it. The
	// write below adds a change of more than 100 bytes (a 64-byte tag and
	// the sealed name); the new root's CID and the clock take as many
	// bytes as before.
	o.mu.Lock()
	h := o.next()
	h.Keys = append(h.Keys, o.head.Keys...)
	inflate(t, a.m.cfg.UserKey, h, MaxHeadSize-50)
	_, err = o.commitLocked(ctx, h, nil)
	o.mu.Unlock()
	if err != nil {
		t.Fatalf("a head of MaxHeadSize-50 bytes was refused: %v", err)
	}
	before, beforeSigned := o.current()
	onDisk, _ := os.ReadFile(a.m.path(ownedDir, fileName(sp.ID())))
	root, _ := before.root()

	err = sp.PutBytes(ctx, "over", []byte("would carry the head over the limit"))
	if !errors.Is(err, ErrHeadTooLarge) {
		t.Fatalf("a write past the head's limit: %v, want ErrHeadTooLarge", err)
	}
	after, afterSigned := o.current()
	if after.Seq != before.Seq || string(afterSigned.Body) != string(beforeSigned.Body) {
		t.Fatalf("the space moved to seq %d (was %d) on a refused write", after.Seq, before.Seq)
	}
	if now, _ := os.ReadFile(a.m.path(ownedDir, fileName(sp.ID()))); string(now) != string(onDisk) {
		t.Fatal("the refused head was stored")
	}
	if !pinnedRoot(t, a, sp.ID(), root.String()) {
		t.Fatal("the space's pin left its root on a refused write")
	}
	if _, err := sp.GetBytes(ctx, "over"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused key reads: %v", err)
	}
	if got, err := sp.GetBytes(ctx, "before"); err != nil || string(got) != "kept" {
		t.Fatalf("an earlier key after a refused write: %q, %v", got, err)
	}
}

func pinnedRoot(t *testing.T, n *node, id, root string) bool {
	pins, err := n.content.Pins(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.Name == holdPinPrefix+id {
			return p.CID.String() == root
		}
	}
	return false
}
