package content

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"

	"golang.org/x/sync/errgroup"

	"github.com/nubecloud/nube/errcode"
)

// The block store. Small blocks (directories, the inner nodes of a file,
// dag-cbor records) are values in the datastore, under /blocks as boxo's
// blockstore keeps them. A block of fileMin bytes or more (a file's
// chunks) is a file of its own under the store's files directory, sharded
// by its multihash as kubo's flatfs shards, with a record in the
// datastore under /blockfiles giving its size and CRC-32C.
//
// A block's bytes are therefore written once: not into the datastore's
// write-ahead log, then its tables, then again by compaction. Put writes
// the file, then its record; neither is synced, and a record may still sit
// in Pebble's log buffer when the process is killed. So blocks are durable
// once Sync returns, which an add, a pin or an import calls before it
// reports done: the files first (one syncfs on Linux, each file written
// since the last Sync elsewhere), then the datastore. A file whose record
// never landed is never read, and GC removes it.
//
// Blocks are hashed once, on their way in (an add computes the CID, a
// fetch checks the bytes against the CID asked for). Reading a block back
// checks its CRC-32C (a torn or rotted file fails it, at memory speed)
// but not its hash: Verify rehashes every block when the user asks.
const fileMin = 16 << 10

var fileRecPrefix = ds.NewKey("/blockfiles")

// ErrCorruptBlock reports a stored block whose bytes are not what was
// written: its file is short, or fails its checksum.
var ErrCorruptBlock = errcode.New(errcode.Internal, "stored block is corrupt")

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxDirty bounds the files remembered for the next Sync where a file is
// synced one at a time; past it they are synced at once.
const maxDirty = 1 << 16

// blockStore implements boxo's blockstore.Blockstore on a datastore and
// a directory of block files.
type blockStore struct {
	ds  ds.Batching
	dir string // "" keeps every block in ds (a store in memory)

	// stripes serialise the Puts and Deletes of one block file, so two
	// Puts of one block never write its file at once.
	stripes [64]sync.Mutex

	dirtyMu sync.Mutex
	dirty   map[string]struct{} // files written since the last Sync (not on Linux)
}

var _ blockstore.Blockstore = (*blockStore)(nil)

func newBlockStore(d ds.Batching, dir string) *blockStore {
	return &blockStore{ds: d, dir: dir, dirty: make(map[string]struct{})}
}

func inlineKey(k ds.Key) ds.Key { return blocksPrefix.Child(k) }
func fileKey(k ds.Key) ds.Key   { return fileRecPrefix.Child(k) }

// path is where the block whose datastore key is k has its file: the two
// characters before the last one name the shard, as in flatfs.
func (s *blockStore) path(k ds.Key) string {
	name := k.BaseNamespace()
	shard := "__"
	if n := len(name); n >= 3 {
		shard = name[n-3 : n-1]
	}
	return filepath.Join(s.dir, shard, name)
}

func (s *blockStore) stripe(k ds.Key) *sync.Mutex {
	var h uint32
	for _, b := range []byte(k.String()) {
		h = h*31 + uint32(b)
	}
	return &s.stripes[h%uint32(len(s.stripes))]
}

// fileRecord is the datastore value of a block kept in a file.
type fileRecord struct {
	size int
	crc  uint32
}

func (r fileRecord) marshal() []byte {
	b := binary.AppendUvarint(nil, uint64(r.size))
	return binary.BigEndian.AppendUint32(b, r.crc)
}

func parseFileRecord(b []byte) (fileRecord, error) {
	size, n := binary.Uvarint(b)
	if n <= 0 || len(b) != n+4 || size > maxBlockSize {
		return fileRecord{}, fmt.Errorf("%w: bad file record (%d bytes)", ErrCorruptBlock, len(b))
	}
	return fileRecord{size: int(size), crc: binary.BigEndian.Uint32(b[n:])}, nil
}

// maxBlockSize is the largest block the store keeps: above bitswap's own
// limit, so nothing that moves between nodes is refused.
const maxBlockSize = 4 << 20

func (s *blockStore) record(ctx context.Context, k ds.Key) (fileRecord, bool, error) {
	if s.dir == "" {
		return fileRecord{}, false, nil
	}
	v, err := s.ds.Get(ctx, fileKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return fileRecord{}, false, nil
	}
	if err != nil {
		return fileRecord{}, false, err
	}
	r, err := parseFileRecord(v)
	return r, err == nil, err
}

// Has reports whether the store has the block, without reading it.
func (s *blockStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	if _, ok, err := s.record(ctx, k); ok || err != nil {
		return ok, err
	}
	return s.ds.Has(ctx, inlineKey(k))
}

// Get returns the block, its file's checksum checked but not its hash.
func (s *blockStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	data, err := s.read(ctx, c)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

// read returns the block's bytes.
func (s *blockStore) read(ctx context.Context, c cid.Cid) ([]byte, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	r, ok, err := s.record(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	if !ok {
		data, err := s.ds.Get(ctx, inlineKey(k))
		if errors.Is(err, ds.ErrNotFound) {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		return data, err
	}
	f, err := os.Open(s.path(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("block %s: %w: its file is gone", c, ErrCorruptBlock)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, r.size+1) // one more, to see a file that grew
	n, err := io.ReadFull(f, data)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("block %s: %w", c, err)
	}
	if n != r.size {
		return nil, fmt.Errorf("block %s: %w: its file holds %d bytes, not %d", c, ErrCorruptBlock, n, r.size)
	}
	data = data[:n]
	if crc32.Checksum(data, castagnoli) != r.crc {
		return nil, fmt.Errorf("block %s: %w: checksum mismatch", c, ErrCorruptBlock)
	}
	return data, nil
}

// GetSize returns the block's size without reading it.
func (s *blockStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	r, ok, err := s.record(ctx, k)
	if err != nil {
		return -1, err
	}
	if ok {
		return r.size, nil
	}
	n, err := s.ds.GetSize(ctx, inlineKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	return n, err
}

// Put stores the block if the store does not have it yet.
func (s *blockStore) Put(ctx context.Context, b blocks.Block) error {
	return s.PutMany(ctx, []blocks.Block{b})
}

// PutMany stores the blocks the store does not have yet: the small ones in
// one datastore batch, each large one as a file with its record.
func (s *blockStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	var batch ds.Batch
	files, _ := errgroup.WithContext(ctx)
	files.SetLimit(fileWriters)
	for _, b := range bs {
		data := b.RawData()
		if len(data) > maxBlockSize {
			return fmt.Errorf("block %s: %w: %d bytes, the most is %d", b.Cid(), errcode.ErrTooLarge, len(data), maxBlockSize)
		}
		if s.dir != "" && len(data) >= fileMin {
			files.Go(func() error { return s.putFile(ctx, b.Cid(), data) })
			continue
		}
		if has, err := s.Has(ctx, b.Cid()); err != nil {
			return err
		} else if has {
			continue
		}
		if batch == nil {
			var err error
			if batch, err = s.ds.Batch(ctx); err != nil {
				return err
			}
		}
		if err := batch.Put(ctx, inlineKey(dshelp.MultihashToDsKey(b.Cid().Hash())), data); err != nil {
			return err
		}
	}
	if err := files.Wait(); err != nil {
		return err
	}
	if batch == nil {
		return nil
	}
	return batch.Commit(ctx)
}

// fileWriters is how many block files one PutMany writes at once: creating
// a file can wait on the file system's journal, and a batch of an add
// holds many.
const fileWriters = 4

// putFile writes a large block's file, then its record.
func (s *blockStore) putFile(ctx context.Context, c cid.Cid, data []byte) error {
	k := dshelp.MultihashToDsKey(c.Hash())
	mu := s.stripe(k)
	mu.Lock()
	defer mu.Unlock()
	if has, err := s.Has(ctx, c); err != nil || has {
		return err
	}
	p := s.path(k)
	if err := writeBlockFile(p, data); err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	s.markDirty(p)
	rec := fileRecord{size: len(data), crc: crc32.Checksum(data, castagnoli)}
	return s.ds.Put(ctx, fileKey(k), rec.marshal())
}

// writeBlockFile writes data to p, making its shard directory if need be.
// A file left by a Put cut short (no record) is overwritten.
func writeBlockFile(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
			f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		}
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *blockStore) markDirty(p string) {
	if syncWholeFS {
		return
	}
	s.dirtyMu.Lock()
	s.dirty[p] = struct{}{}
	full := len(s.dirty) >= maxDirty
	s.dirtyMu.Unlock()
	if full {
		s.syncFiles()
	}
}

// syncFiles makes every block file written so far durable.
func (s *blockStore) syncFiles() error {
	if s.dir == "" {
		return nil
	}
	if syncWholeFS {
		return syncFS(s.dir)
	}
	s.dirtyMu.Lock()
	files := s.dirty
	s.dirty = make(map[string]struct{})
	s.dirtyMu.Unlock()
	dirs := make(map[string]struct{})
	for p := range files {
		if err := syncPath(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		dirs[filepath.Dir(p)] = struct{}{}
	}
	for d := range dirs {
		if err := syncPath(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(dirs) > 0 {
		return syncPath(s.dir)
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// DeleteBlock removes the block; removing one the store lacks is no error.
func (s *blockStore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	k := dshelp.MultihashToDsKey(c.Hash())
	if s.dir != "" {
		mu := s.stripe(k)
		mu.Lock()
		defer mu.Unlock()
		if _, ok, _ := s.record(ctx, k); ok {
			if err := s.ds.Delete(ctx, fileKey(k)); err != nil {
				return err
			}
		}
		// A record that does not parse is removed too.
		if err := s.ds.Delete(ctx, fileKey(k)); err != nil {
			return err
		}
		if err := os.Remove(s.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return s.ds.Delete(ctx, inlineKey(k))
}

// AllKeysChan lists every block, as CIDv1 raw of its multihash (the store
// keeps multihashes, not codecs), as boxo's blockstore does.
func (s *blockStore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	prefixes := []ds.Key{blocksPrefix}
	if s.dir != "" {
		prefixes = append(prefixes, fileRecPrefix)
	}
	var results []query.Results
	for _, p := range prefixes {
		res, err := s.ds.Query(ctx, query.Query{Prefix: p.String(), KeysOnly: true})
		if err != nil {
			for _, r := range results {
				r.Close()
			}
			return nil, err
		}
		results = append(results, res)
	}
	out := make(chan cid.Cid)
	go func() {
		defer close(out)
		for _, res := range results {
			defer res.Close()
		}
		for _, res := range results {
			for r := range res.Next() {
				if r.Error != nil {
					return
				}
				hash, err := dshelp.DsKeyToMultihash(ds.NewKey(ds.RawKey(r.Key).BaseNamespace()))
				if err != nil {
					continue // not a block's key
				}
				select {
				case out <- cid.NewCidV1(cid.Raw, hash):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// stat counts the blocks and their bytes from their records alone.
func (s *blockStore) stat(ctx context.Context) (n int, bytes int64, err error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: blocksPrefix.String(), ReturnsSizes: true, KeysOnly: true})
	if err != nil {
		return 0, 0, err
	}
	for r := range res.Next() {
		if r.Error != nil {
			res.Close()
			return 0, 0, r.Error
		}
		n++
		bytes += int64(r.Size)
	}
	res.Close()
	if s.dir == "" {
		return n, bytes, nil
	}
	res, err = s.ds.Query(ctx, query.Query{Prefix: fileRecPrefix.String()})
	if err != nil {
		return 0, 0, err
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return 0, 0, r.Error
		}
		n++
		if rec, err := parseFileRecord(r.Value); err == nil {
			bytes += int64(rec.size)
		}
	}
	return n, bytes, nil
}

// orphanAge is how old a block file without a record must be before GC
// removes it: a younger one may be a Put under way (its record follows).
const orphanAge = 10 * time.Minute

// removeOrphans deletes block files that have no record (left by a Put
// that a crash cut short), and returns how many bytes it freed.
func (s *blockStore) removeOrphans(ctx context.Context) (int, int64, error) {
	if s.dir == "" {
		return 0, 0, nil
	}
	var n int
	var freed int64
	cutoff := time.Now().Add(-orphanAge)
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		hash, err := dshelp.DsKeyToMultihash(ds.NewKey(d.Name()))
		if err != nil {
			return nil // not ours
		}
		k := dshelp.MultihashToDsKey(hash)
		if has, err := s.ds.Has(ctx, fileKey(k)); err != nil || has {
			return err
		}
		info, err := d.Info()
		if err != nil || info.ModTime().After(cutoff) {
			return nil
		}
		mu := s.stripe(k)
		mu.Lock()
		defer mu.Unlock()
		if has, err := s.ds.Has(ctx, fileKey(k)); err != nil || has {
			return err
		}
		if err := os.Remove(p); err == nil {
			n++
			freed += info.Size()
		}
		return nil
	})
	return n, freed, err
}

// isCorrupt reports whether err says a stored block is damaged.
func isCorrupt(err error) bool { return errors.Is(err, ErrCorruptBlock) }
