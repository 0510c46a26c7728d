package content_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

func rawBlock(t testing.TB, data []byte) blocks.Block {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, h))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blockFiles lists the block files of the store in dir.
func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, "files"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func openStore(t *testing.T, dir string) *content.Store {
	t.Helper()
	s, err := content.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBlockFiles puts small and large blocks, reads them back after the
// store is reopened, and checks that only the large ones became files.
func TestBlockFiles(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	dir := t.TempDir()
	s := openStore(t, dir)
	small := rawBlock(t, randomBytes(100, 1))
	large := rawBlock(t, randomBytes(content.ChunkSize, 2))
	bs := s.Blockstore()
	if err := bs.PutMany(ctx, []blocks.Block{small, large}); err != nil {
		t.Fatal(err)
	}
	if err := bs.Put(ctx, large); err != nil { // again: nothing changes
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if files := blockFiles(t, dir); len(files) != 1 {
		t.Fatalf("%d block files, want 1 (the large block's): %v", len(files), files)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	bs = s.Blockstore()
	for _, want := range []blocks.Block{small, large} {
		got, err := bs.Get(ctx, want.Cid())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.RawData(), want.RawData()) {
			t.Fatalf("block %s read back different", want.Cid())
		}
		if n, err := bs.GetSize(ctx, want.Cid()); err != nil || n != len(want.RawData()) {
			t.Fatalf("GetSize = %d, %v; want %d", n, err, len(want.RawData()))
		}
	}
	n, size, err := s.Stat(ctx)
	if err != nil || n != 2 || size != int64(len(small.RawData())+len(large.RawData())) {
		t.Fatalf("Stat = %d blocks, %d bytes, %v", n, size, err)
	}
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for range keys {
		listed++
	}
	if listed != 2 {
		t.Fatalf("AllKeysChan listed %d blocks, want 2", listed)
	}
	if err := bs.DeleteBlock(ctx, large.Cid()); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Get(ctx, large.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("Get after delete = %v, want not found", err)
	}
	if files := blockFiles(t, dir); len(files) != 0 {
		t.Fatalf("the deleted block's file is still there: %v", files)
	}
}

// TestDamagedBlockFile damages a block file three ways: each read fails
// with ErrCorruptBlock (never returns wrong bytes), Verify names the block,
// and Verify with remove drops it so it can be fetched again.
func TestDamagedBlockFile(t *testing.T) {
	for name, damage := range map[string]func(p string) error{
		"flipped byte": func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o600)
		},
		"torn": func(p string) error { return os.Truncate(p, 1000) },
		"grown": func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte("more"))
			return f.Close()
		},
		"gone": os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := nubetest.Context(t, time.Minute)
			dir := t.TempDir()
			s := openStore(t, dir)
			defer s.Close()
			good := rawBlock(t, randomBytes(content.ChunkSize, 3))
			bad := rawBlock(t, randomBytes(content.ChunkSize, 4))
			bs := s.Blockstore()
			if err := bs.PutMany(ctx, []blocks.Block{good, bad}); err != nil {
				t.Fatal(err)
			}
			k := dshelp.MultihashToDsKey(bad.Cid().Hash()).BaseNamespace()
			var target string
			for _, p := range blockFiles(t, dir) {
				if filepath.Base(p) == k {
					target = p
				}
			}
			if target == "" {
				t.Fatal("no file for the block")
			}
			if err := damage(target); err != nil {
				t.Fatal(err)
			}
			if _, err := bs.Get(ctx, bad.Cid()); !errors.Is(err, content.ErrCorruptBlock) {
				t.Fatalf("Get of a damaged block = %v, want ErrCorruptBlock", err)
			}
			if _, err := bs.Get(ctx, good.Cid()); err != nil {
				t.Fatalf("the other block: %v", err)
			}
			v, err := s.Verify(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if v.Checked != 2 || len(v.Bad) != 1 || !bytes.Equal(v.Bad[0].Hash(), bad.Cid().Hash()) {
				t.Fatalf("Verify: %d checked, bad %v; want 2 and %s", v.Checked, v.Bad, bad.Cid())
			}
			if _, err := s.Verify(ctx, true); err != nil {
				t.Fatal(err)
			}
			if has, _ := bs.Has(ctx, bad.Cid()); has {
				t.Fatal("Verify with remove kept the damaged block")
			}
			if err := bs.Put(ctx, bad); err != nil {
				t.Fatal(err)
			}
			if got, err := bs.Get(ctx, bad.Cid()); err != nil || !bytes.Equal(got.RawData(), bad.RawData()) {
				t.Fatalf("the block put again reads %v", err)
			}
		})
	}
}

// TestOrphanBlockFile: a block file with no record (a Put that a crash cut
// between the file and its record) is never listed, and GC removes it once
// it is old enough not to be a Put under way.
func TestOrphanBlockFile(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	b := rawBlock(t, randomBytes(content.ChunkSize, 5))
	if err := s.Blockstore().Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	p := blockFiles(t, dir)[0]
	orphan := filepath.Join(filepath.Dir(p), dshelp.MultihashToDsKey(rawBlock(t, []byte("orphan")).Cid().Hash()).BaseNamespace())
	if err := os.WriteFile(orphan, []byte("half a block"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, _, err := s.Stat(ctx); err != nil || n != 1 {
		t.Fatalf("Stat counts %d blocks (%v), want 1", n, err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("GC removed a young file without a record (a Put under way?): %v", err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(orphan, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("GC left an old orphan file: %v", err)
	}
}

// TestOlderStoreLayout opens a store whose large blocks sit in Pebble, as
// every block did before block files: they read back, verify and delete.
func TestOlderStoreLayout(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	dir := t.TempDir()
	b := rawBlock(t, randomBytes(content.ChunkSize, 6))
	d, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleOpts(content.PebbleOptions()))
	if err != nil {
		t.Fatal(err)
	}
	if err := blockstore.NewBlockstore(d).Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dir)
	defer s.Close()
	got, err := s.Blockstore().Get(ctx, b.Cid())
	if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
		t.Fatalf("the old block reads %v", err)
	}
	if v, err := s.Verify(ctx, false); err != nil || v.Checked != 1 || len(v.Bad) != 0 {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
	if err := s.Blockstore().DeleteBlock(ctx, b.Cid()); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Blockstore().Has(ctx, b.Cid()); has {
		t.Fatal("the old block is still there after a delete")
	}
}

// TestFetchReplacesDamagedBlock: a node whose copy of a block was damaged
// on disk fetches it afresh the next time it fetches the DAG.
func TestFetchReplacesDamagedBlock(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, time.Minute)
	data := randomBytes(4*content.ChunkSize, 7)
	root, err := c.Node(0).Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	fetcher := c.Node(1)
	if err := fetcher.Content().Fetch(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	files := blockFiles(t, filepath.Join(fetcher.DataDir(), "blocks"))
	if len(files) != 4 {
		t.Fatalf("the fetcher has %d block files, want 4", len(files))
	}
	if err := os.Truncate(files[2], 10); err != nil {
		t.Fatal(err)
	}
	if err := fetcher.Content().Fetch(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := fetcher.Content().Verify(ctx, false); err != nil || len(v.Bad) != 0 || v.Checked != 5 {
		t.Fatalf("after the second fetch Verify = %+v, %v; want 5 blocks, none bad", v, err)
	}
}
