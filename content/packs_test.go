package content_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube"
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

// packFiles lists the pack files of the store in dir, and their sizes.
func packFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	filepath.WalkDir(filepath.Join(dir, "packs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				out[p] = info.Size()
			}
		}
		return nil
	})
	return out
}

// packBytes is the total size of the store's packs.
func packBytes(t *testing.T, dir string) int64 {
	var n int64
	for _, size := range packFiles(t, dir) {
		n += size
	}
	return n
}

// onlyPack returns the one pack of the store in dir.
func onlyPack(t *testing.T, dir string) string {
	t.Helper()
	packs := packFiles(t, dir)
	if len(packs) != 1 {
		t.Fatalf("%d packs, want 1: %v", len(packs), packs)
	}
	for p := range packs {
		return p
	}
	return ""
}

func openStore(t *testing.T, dir string) *content.Store {
	t.Helper()
	s, err := content.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPacks puts small and large blocks, reads them back after the store
// is reopened, and checks that only the large ones went to a pack, once.
func TestPacks(t *testing.T) {
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
	if n := packBytes(t, dir); n != int64(content.ChunkSize) {
		t.Fatalf("packs hold %d bytes, want the large block's %d", n, content.ChunkSize)
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
	// A reopened store appends to a new pack, never after a tail that a
	// crash may have left.
	more := rawBlock(t, randomBytes(content.ChunkSize, 3))
	if err := bs.Put(ctx, more); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if packs := packFiles(t, dir); len(packs) != 2 {
		t.Fatalf("after a reopen and a put: %d packs, want 2", len(packs))
	}
	if err := bs.DeleteBlock(ctx, large.Cid()); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Get(ctx, large.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("Get after delete = %v, want not found", err)
	}
}

// TestDamagedPack damages a pack three ways: each read fails with
// ErrCorruptBlock (never returns wrong bytes), Verify names the block, and
// Verify with remove drops it so it can be fetched again.
func TestDamagedPack(t *testing.T) {
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
		"gone": os.Remove,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := nubetest.Context(t, time.Minute)
			dir := t.TempDir()
			s := openStore(t, dir)
			defer s.Close()
			good := rawBlock(t, randomBytes(1000, 3)) // small: not in the pack
			bad := rawBlock(t, randomBytes(content.ChunkSize, 4))
			bs := s.Blockstore()
			if err := bs.PutMany(ctx, []blocks.Block{good, bad}); err != nil {
				t.Fatal(err)
			}
			// Reopened, so that nothing of the pack is still in memory.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := damage(onlyPack(t, dir)); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, dir)
			defer s.Close()
			bs = s.Blockstore()
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

// TestCompaction: GC removes what no pin reaches, rewrites a pack that is
// mostly garbage, and frees its space, while readers read on; a pack with
// only live blocks stays as it is.
func TestCompaction(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()
	bs := s.Blockstore()
	var all []blocks.Block
	for i := range 8 {
		all = append(all, rawBlock(t, randomBytes(content.ChunkSize, int64(10+i))))
	}
	if err := bs.PutMany(ctx, all); err != nil {
		t.Fatal(err)
	}
	keep := all[:2] // a quarter live after GC
	for _, b := range keep {
		if err := s.Pin(ctx, b.Cid(), "keep"); err != nil {
			t.Fatal(err)
		}
	}
	// Close and reopen, so the pack is not the one being appended to.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	defer s.Close()
	bs = s.Blockstore()
	old := onlyPack(t, dir)

	// Readers of the kept blocks run through the GC.
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := keep[i%len(keep)]
			got, err := bs.Get(ctx, b.Cid())
			if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
				errs <- fmt.Errorf("read during GC: %v", err)
				return
			}
		}
	}()
	res, err := s.GC(ctx)
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 6 || res.Kept != 2 {
		t.Fatalf("GC = %+v, want 6 removed and 2 kept", res)
	}
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the mostly-garbage pack is still there: %v", err)
	}
	if n := packBytes(t, dir); n != 2*int64(content.ChunkSize) {
		t.Fatalf("after GC the packs hold %d bytes, want the 2 kept blocks' %d", n, 2*content.ChunkSize)
	}
	if v, err := s.Verify(ctx, false); err != nil || v.Checked != 2 || len(v.Bad) != 0 {
		t.Fatalf("Verify after GC = %+v, %v", v, err)
	}
	// Now every pack is live: a second GC moves nothing.
	before := packFiles(t, dir)
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if after := packFiles(t, dir); len(after) != len(before) {
		t.Fatalf("a GC with nothing to free changed the packs: %v -> %v", before, after)
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
	// Flip a byte in the third of the four chunks in the fetcher's pack,
	// while the fetcher is down (a running store keeps its latest chunks
	// in memory too).
	c.Kill(1)
	pack := onlyPack(t, filepath.Join(fetcher.Config().DataDir, nube.BlocksDir))
	b, err := os.ReadFile(pack)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*content.ChunkSize {
		t.Fatalf("the fetcher's pack holds %d bytes, want 4 chunks", len(b))
	}
	b[2*content.ChunkSize+100] ^= 1
	if err := os.WriteFile(pack, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if fetcher, err = c.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx, 1, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := fetcher.Content().Verify(ctx, false); err != nil || len(v.Bad) != 1 {
		t.Fatalf("after the damage Verify = %+v, %v; want 1 bad", v, err)
	}
	if err := fetcher.Content().Fetch(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := fetcher.Content().Verify(ctx, false); err != nil || len(v.Bad) != 0 || v.Checked != 5 {
		t.Fatalf("after the second fetch Verify = %+v, %v; want 5 blocks, none bad", v, err)
	}
}

// TestOlderStoreLayout opens a store whose large blocks sit in Pebble, as
// every block did before packs: they read back, verify and delete.
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
