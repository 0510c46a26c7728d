package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	blocks "github.com/ipfs/go-block-format"
	ds "github.com/ipfs/go-datastore"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/ipfs/boxo/blockstore"

	"github.com/nubecloud/nube/content"
)

// The candidates for the on-disk block store: nube's own (small blocks in
// Pebble, large ones as files; content/blockfiles.go), and boxo's
// blockstore on Pebble as nube used it before, with its defaults, and with
// every write fsynced. go-ds-flatfs (kubo's block store) is not among
// them: the only version the module proxy offers, v0.5.1, does not build
// against the go-datastore that boxo v0.43 needs. BenchmarkFilePerBlock
// measures flatfs's layout, one file per block, written directly.
type candidate struct {
	bs    blockstore.Blockstore
	sync  func(context.Context) error
	close func() error
}

func onPebble(b *testing.B, dir string, opts ...pebbleds.Option) candidate {
	d, err := pebbleds.NewDatastore(dir, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return candidate{blockstore.NewBlockstore(d), func(ctx context.Context) error { return d.Sync(ctx, ds.NewKey("/")) }, d.Close}
}

var blockstores = []struct {
	name string
	open func(b *testing.B, dir string) candidate
}{
	{"nube", func(b *testing.B, dir string) candidate {
		s, err := content.OpenStore(dir)
		if err != nil {
			b.Fatal(err)
		}
		return candidate{s.Blockstore(), s.Sync, s.Close}
	}},
	{"pebble-as-nube-set-it-up", func(b *testing.B, dir string) candidate {
		return onPebble(b, dir, pebbleds.WithPebbleOpts(content.PebbleOptions()))
	}},
	{"pebble", func(b *testing.B, dir string) candidate { return onPebble(b, dir) }},
	{"pebble-fsync-each", func(b *testing.B, dir string) candidate {
		return onPebble(b, dir, pebbleds.WithPebbleWriteOptions(pebble.Sync))
	}},
}

// BenchmarkFilePerBlock writes 256 KiB blocks as one file each, the way
// flatfs stores them (write to a temporary name, rename), syncing every 64
// blocks' files and their directories.
func BenchmarkFilePerBlock(b *testing.B) {
	const size = 256 << 10
	dir := b.TempDir()
	buf := make([]byte, size)
	var pending []*os.File
	flush := func() {
		for _, f := range pending {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		pending = pending[:0]
		if d, err := os.Open(dir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	b.SetBytes(size)
	for i := range b.N {
		rand.Read(buf[:32])
		sum := sha256.Sum256(buf)
		name := filepath.Join(dir, hex.EncodeToString(sum[:]))
		f, err := os.Create(name + ".tmp")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(name+".tmp", name); err != nil {
			b.Fatal(err)
		}
		pending = append(pending, f)
		if i%64 == 63 {
			flush()
		}
	}
	flush()
}

// BenchmarkBlockstorePut writes 256 KiB blocks (the chunk size of an add)
// and syncs every 64 blocks (16 MiB), so the figure includes getting the
// bytes to disk.
func BenchmarkBlockstorePut(b *testing.B) {
	const size = 256 << 10
	for _, c := range blockstores {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			st := c.open(b, b.TempDir())
			defer st.close()
			bs := st.bs
			buf := make([]byte, size)
			b.SetBytes(size)
			b.ResetTimer()
			for i := range b.N {
				rand.Read(buf[:32])
				blk := blocks.NewBlock(buf)
				if err := bs.Put(ctx, blk); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 {
					if err := st.sync(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := st.sync(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkBlockstoreGet reads back 256 KiB blocks in random order from a
// store of 1024 of them (256 MiB).
func BenchmarkBlockstoreGet(b *testing.B) {
	const size, n = 256 << 10, 1024
	for _, c := range blockstores {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			st := c.open(b, b.TempDir())
			defer st.close()
			bs := st.bs
			buf := make([]byte, size)
			var keys []blocks.Block
			for range n {
				rand.Read(buf[:32])
				blk := blocks.NewBlock(append([]byte(nil), buf...))
				if err := bs.Put(ctx, blk); err != nil {
					b.Fatal(err)
				}
				keys = append(keys, blocks.NewBlock(nil))
				keys[len(keys)-1] = blk
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := range b.N {
				if _, err := bs.Get(ctx, keys[(i*7919)%n].Cid()); err != nil {
					b.Fatal(fmt.Errorf("get: %w", err))
				}
			}
		})
	}
}
