package content

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"testing"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
)

// TestGonePackIsLookedUpAgain: a block's record read just before GC moved
// the block and removed its pack points at a pack that is gone. That read
// fails as corrupt and as not existing, so that read looks the record up
// again (once) and finds the block where GC put it.
func TestGonePackIsLookedUpAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []blocks.Block
	for i := range 4 {
		data := make([]byte, ChunkSize)
		rand.New(rand.NewSource(int64(i))).Read(data)
		all = append(all, blocks.NewBlock(data))
	}
	if err := s.Blockstore().PutMany(ctx, all); err != nil {
		t.Fatal(err)
	}
	for _, b := range all[1:] {
		if err := s.Blockstore().DeleteBlock(ctx, b.Cid()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // reopened, the pack is no longer the active one
		t.Fatal(err)
	}
	if s, err = OpenStore(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keep := all[0]
	old, ok, err := s.raw.locate(ctx, dshelp.MultihashToDsKey(keep.Cid().Hash()))
	if err != nil || !ok {
		t.Fatalf("locate: %v, %v", ok, err)
	}
	if err := s.raw.compact(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.raw.readAt(old, nil)
	if !errors.Is(err, ErrCorruptBlock) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading where the block was before GC: %v, want an error that is both ErrCorruptBlock and fs.ErrNotExist", err)
	}
	got, err := s.raw.read(ctx, keep.Cid(), false, nil)
	if err != nil || !bytes.Equal(got, keep.RawData()) {
		t.Fatalf("read after GC: %v", err)
	}
}
