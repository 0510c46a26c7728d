package content

import (
	"bytes"
	"context"
	"maps"
	"math/rand"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

// TestFullPacksFlushed checks that a full pack is synced while the next
// fills, so that a sync at the end of an add finds only the active pack
// still dirty, and that every block reads back after the store reopens.
func TestFullPacksFlushed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.raw.packSize = 3 * ChunkSize
	var want []blocks.Block
	for i := range 10 { // four packs, three of them full
		data := make([]byte, ChunkSize)
		rand.New(rand.NewSource(int64(i))).Read(data)
		b := blocks.NewBlock(data)
		if err := s.Blockstore().Put(ctx, b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	s.raw.flushing.Wait()
	s.raw.mu.Lock()
	dirty := maps.Clone(s.raw.dirty)
	active := s.raw.num
	s.raw.mu.Unlock()
	if len(dirty) != 1 || !dirty[active] {
		t.Fatalf("dirty packs %v after the full ones were flushed, want only the active %d", dirty, active)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range want {
		got, err := s.Blockstore().Get(ctx, b.Cid())
		if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("%s after reopening: %v", b.Cid(), err)
		}
	}
}
