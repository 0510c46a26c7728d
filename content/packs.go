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
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/nubecloud/nube/errcode"
)

// The block store. Small blocks (directories, the inner nodes of a file,
// dag-cbor records) are values in the datastore, under /blocks as boxo's
// blockstore keeps them. A block of packMin bytes or more (a file's
// chunks) is appended to a pack file, and a record in the datastore under
// /packed says where it is: pack, offset, size and CRC-32C.
//
// So a chunk's bytes are written once, by one append: not into the
// datastore's write-ahead log, then its tables, then again by compaction,
// and not as a file of its own (creating a file per 256 KiB chunk, as
// kubo's flatfs does, cost ten to twenty times an append on the machines
// we measured; RATIONALE.md has the figures). Put appends, then writes the
// record; neither is synced, and a record may still sit in Pebble's log
// buffer when the process is killed. So blocks are durable once Sync
// returns, which an add, a pin and an import call before they report done:
// the packs written to first, then the datastore. Bytes in a pack that no
// record names (a Put that a crash cut short, a deleted block) are
// garbage: GC rewrites a pack whose garbage passes half of it into the
// pack being written, and removes it.
//
// Blocks are hashed once, on their way in (an add computes the CID, a
// fetch checks the bytes against the CID asked for). Reading a block back
// checks its CRC-32C (a torn or rotted pack fails it, at memory speed) but
// not its hash: Verify rehashes every block when the user asks.
const packMin = 16 << 10

// packSize is the size past which the store starts a new pack.
const packSize = 128 << 20

// writeBehindEvery is how many bytes of the active pack are appended
// before the store asks the kernel to start writing them (writeBehind):
// without it a 1 GiB add ended with a sync of up to a whole 128 MiB pack,
// 6% of the add on the machine we measured (RATIONALE.md, Blocks).
const writeBehindEvery = 8 << 20

// maxBlockSize is the largest block the store keeps: above bitswap's own
// limit, so nothing that moves between nodes is refused.
const maxBlockSize = 4 << 20

var packedPrefix = ds.NewKey("/packed")

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// A checkedBlock is a block whose CRC-32C was computed where its bytes
// were hashed, while they were still in the CPU's cache: computed again
// when the block reaches its pack, on another goroutine and often another
// core, it read them back from memory (a twentieth of a fetching node's
// CPU; RATIONALE.md, Blocks).
type checkedBlock struct {
	blocks.Block
	crc uint32
}

// checksum returns the CRC-32C of b's bytes: the one it came with, if it
// is a checkedBlock.
func checksum(b blocks.Block) uint32 {
	if cb, ok := b.(checkedBlock); ok {
		return cb.crc
	}
	return crc32.Checksum(b.RawData(), castagnoli)
}

// blockStore implements boxo's blockstore.Blockstore on a datastore and
// a directory of pack files.
type blockStore struct {
	ds  ds.Batching
	dir string // "" keeps every block in ds (a store in memory)

	packSize int64 // packSize, but for tests

	// stripes serialise the puts, deletes and moves of one block.
	stripes [64]sync.Mutex

	mu     sync.Mutex
	closed bool
	packs  map[uint32]*os.File // open for reading, by number
	active *os.File            // the pack appended to
	num    uint32              // its number
	size   int64               // its size
	behind int64               // how much of it writeBehind was asked to write
	dirty  map[uint32]bool     // packs appended to since the last sync
	newDir bool                // a pack was created since the last sync

	flushing sync.WaitGroup // full packs being synced (flush)

	// recent holds the last blocks appended, by key: a file being read
	// while it is fetched reads each chunk just after it was written,
	// and takes it from here rather than from the pack.
	recent     [recentBlocks]recentBlock
	recentNext int
}

// recentBlocks is how many just-appended blocks the store keeps in
// memory: 16 chunks, 4 MiB (the reader of a file being fetched is rarely
// further behind; twice that cost a fetching daemon 10 MiB of peak RSS).
const recentBlocks = 16

type recentBlock struct {
	key  string
	data []byte
}

var _ blockstore.Blockstore = (*blockStore)(nil)

func newBlockStore(d ds.Batching, dir string) *blockStore {
	return &blockStore{ds: d, dir: dir, packs: make(map[uint32]*os.File), dirty: make(map[uint32]bool), packSize: packSize}
}

func inlineKey(k ds.Key) ds.Key { return blocksPrefix.Child(k) }
func packedKey(k ds.Key) ds.Key { return packedPrefix.Child(k) }

func packName(n uint32) string { return fmt.Sprintf("%08d.pack", n) }

// packNumbers lists the packs in the directory, in order.
func (s *blockStore) packNumbers() ([]uint32, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, e := range entries {
		v, ok := strings.CutSuffix(e.Name(), ".pack")
		if n, err := strconv.ParseUint(v, 10, 32); ok && err == nil {
			out = append(out, uint32(n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// close closes the packs. Blocks not yet synced stay where a crash would
// leave them.
func (s *blockStore) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.flushing.Wait() // without mu: flush takes it to mark its pack clean
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.active != nil {
		errs = append(errs, s.active.Close())
	}
	for _, f := range s.packs {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// location is where a packed block is.
type location struct {
	pack   uint32
	offset int64
	size   int
	crc    uint32
}

func (l location) marshal() []byte {
	b := binary.AppendUvarint(nil, uint64(l.pack))
	b = binary.AppendUvarint(b, uint64(l.offset))
	b = binary.AppendUvarint(b, uint64(l.size))
	return binary.BigEndian.AppendUint32(b, l.crc)
}

func parseLocation(b []byte) (location, error) {
	bad := fmt.Errorf("%w: bad pack record (%d bytes)", ErrCorruptBlock, len(b))
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return location{}, bad
		}
		v[i], b = x, b[n:]
	}
	if len(b) != 4 || v[0] > 1<<32-1 || v[1] > 1<<62 || v[2] > maxBlockSize {
		return location{}, bad
	}
	return location{pack: uint32(v[0]), offset: int64(v[1]), size: int(v[2]), crc: binary.BigEndian.Uint32(b)}, nil
}

func (s *blockStore) locate(ctx context.Context, k ds.Key) (location, bool, error) {
	if s.dir == "" {
		return location{}, false, nil
	}
	v, err := s.ds.Get(ctx, packedKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return location{}, false, nil
	}
	if err != nil {
		return location{}, false, err
	}
	l, err := parseLocation(v)
	return l, err == nil, err
}

// Has reports whether the store has the block, without reading it.
func (s *blockStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	if _, ok, err := s.locate(ctx, k); ok || err != nil {
		return ok, err
	}
	return s.ds.Has(ctx, inlineKey(k))
}

// Get returns the block, its checksum checked but not its hash.
func (s *blockStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	data, err := s.read(ctx, c, true, nil)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

// readInto returns the block's bytes as the caller's own, to overwrite
// once it is done with them: in buf if buf has room, for a reader that
// reads block after block into one buffer.
func (s *blockStore) readInto(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	if buf == nil {
		buf = []byte{}
	}
	return s.read(ctx, c, true, buf[:0])
}

// read returns the block's bytes: from the pack, or from the blocks
// appended lately if recent. With a nil buf, bytes from the recent blocks
// are the store's own, not to be changed; with a buf, the bytes are the
// caller's, in buf if it has room.
func (s *blockStore) read(ctx context.Context, c cid.Cid, recent bool, buf []byte) ([]byte, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	for try := 0; ; try++ {
		l, ok, err := s.locate(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		if ok && recent {
			if data, ok := s.recently(k); ok {
				if buf != nil {
					return append(buf[:0], data...), nil
				}
				return data, nil
			}
		}
		if !ok {
			data, err := s.ds.Get(ctx, inlineKey(k))
			if errors.Is(err, ds.ErrNotFound) {
				return nil, ipld.ErrNotFound{Cid: c}
			}
			if err == nil && buf != nil {
				// A datastore in memory hands out the value it holds.
				return append(buf[:0], data...), nil
			}
			return data, err
		}
		data, err := s.readAt(l, buf)
		if err != nil && try == 0 && (errors.Is(err, os.ErrClosed) || errors.Is(err, fs.ErrNotExist)) {
			continue // GC moved the block out of its pack as we read: look again
		}
		if isCorrupt(err) {
			s.retire(l.pack)
		}
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		return data, nil
	}
}

// readAt reads and checks a packed block, into buf if it has room.
func (s *blockStore) readAt(l location, buf []byte) ([]byte, error) {
	f, err := s.pack(l.pack)
	if err != nil {
		return nil, err
	}
	data := buf[:0]
	if cap(data) < l.size {
		data = make([]byte, l.size)
	}
	data = data[:l.size]
	n, err := f.ReadAt(data, l.offset)
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: pack %d holds %d of its %d bytes", ErrCorruptBlock, l.pack, n, l.size)
	}
	if err != nil {
		return nil, err
	}
	if crc32.Checksum(data, castagnoli) != l.crc {
		return nil, fmt.Errorf("%w: checksum mismatch in pack %d", ErrCorruptBlock, l.pack)
	}
	return data, nil
}

// retire stops appending to pack n if it is the active pack: it was found
// damaged (cut short or removed under the store), so where the next
// append lands in it is no longer known.
func (s *blockStore) retire(n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil && s.num == n {
		s.active.Close()
		s.active = nil
	}
}

// pack returns pack n, open for reading.
func (s *blockStore) pack(n uint32) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStoreClosed
	}
	if f, ok := s.packs[n]; ok {
		return f, nil
	}
	f, err := os.Open(filepath.Join(s.dir, packName(n)))
	if errors.Is(err, fs.ErrNotExist) {
		// Corrupt, unless GC removed it after the record was read: the
		// error is also fs.ErrNotExist, on which read looks again.
		return nil, fmt.Errorf("%w: pack %d is gone (%w)", ErrCorruptBlock, n, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	s.packs[n] = f
	return f, nil
}

// GetSize returns the block's size without reading it.
func (s *blockStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	k := dshelp.MultihashToDsKey(c.Hash())
	l, ok, err := s.locate(ctx, k)
	if err != nil {
		return -1, err
	}
	if ok {
		return l.size, nil
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
// one datastore batch, each large one appended to the pack with its record.
func (s *blockStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	var batch ds.Batch
	for _, b := range bs {
		data := b.RawData()
		if len(data) > maxBlockSize {
			return fmt.Errorf("block %s: %w: %d bytes, the most is %d", b.Cid(), errcode.ErrTooLarge, len(data), maxBlockSize)
		}
		if s.packable(len(data)) {
			if err := s.putPacked(ctx, b.Cid(), data, checksum(b), true); err != nil {
				return err
			}
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
	if batch == nil {
		return nil
	}
	return batch.Commit(ctx)
}

// packable reports whether the store keeps a block of n bytes in a pack
// (rather than as a datastore value).
func (s *blockStore) packable(n int) bool { return s.dir != "" && n >= packMin }

// putPacked appends a large block, whose CRC-32C is crc, to the pack,
// then writes its record. With remember, the store keeps data among its
// recent blocks; without, the caller may overwrite data once putPacked
// returns.
func (s *blockStore) putPacked(ctx context.Context, c cid.Cid, data []byte, crc uint32, remember bool) error {
	k := dshelp.MultihashToDsKey(c.Hash())
	mu := s.stripe(k)
	mu.Lock()
	defer mu.Unlock()
	if has, err := s.Has(ctx, c); err != nil || has {
		return err
	}
	l, err := s.appendBlock(k.String(), data, crc, remember)
	if err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	return s.ds.Put(ctx, packedKey(k), l.marshal())
}

// appendBlock appends data, whose CRC-32C is crc, to the active pack,
// starting a new pack when none is open or the active one is full, and
// with remember keeps data among the recent blocks.
func (s *blockStore) appendBlock(key string, data []byte, crc uint32, remember bool) (location, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return location{}, ErrStoreClosed
	}
	if s.active == nil || s.size+int64(len(data)) > s.packSize {
		if err := s.startPack(); err != nil {
			return location{}, err
		}
	}
	l := location{pack: s.num, offset: s.size, size: len(data), crc: crc}
	n, err := s.active.WriteAt(data, s.size)
	s.size += int64(n)
	if err != nil {
		return location{}, fmt.Errorf("pack %d: %w", s.num, err)
	}
	s.dirty[s.num] = true
	if s.size-s.behind >= writeBehindEvery {
		writeBehind(s.active, s.behind, s.size-s.behind)
		s.behind = s.size
	}
	if remember {
		s.recent[s.recentNext] = recentBlock{key: key, data: data}
		s.recentNext = (s.recentNext + 1) % recentBlocks
	}
	return l, nil
}

// recently returns a block appended lately, if it is still remembered.
func (s *blockStore) recently(k ds.Key) ([]byte, bool) {
	key := k.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		if r.key == key {
			return r.data, true
		}
	}
	return nil, false
}

// startPack creates the next pack and makes it the active one. A store
// never appends to a pack it did not create since it opened, so a tail
// that a crash left is never mistaken for a block. Called with mu held.
func (s *blockStore) startPack() error {
	nums, err := s.packNumbers()
	if err != nil {
		return err
	}
	next := s.num + 1
	if len(nums) > 0 {
		next = max(next, nums[len(nums)-1]+1)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, packName(next)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if s.active != nil {
		s.flushing.Add(1)
		go s.flush(s.active, s.num)
	}
	s.active, s.num, s.size, s.behind, s.newDir = f, next, 0, 0, true
	return nil
}

// flush syncs and closes a full pack, no longer appended to, while the
// blocks after it go to the next: by the time an add of many packs ends,
// its sync waits for the last pack's writes rather than for all of them
// (the disk was idle while the add ran; RATIONALE.md, Blocks). The pack
// stays dirty until its sync succeeds, so a failure here is reported by
// the next sync, which tries again.
func (s *blockStore) flush(f *os.File, n uint32) {
	defer s.flushing.Done()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		s.mu.Lock()
		delete(s.dirty, n)
		s.mu.Unlock()
	}
}

// sync makes every block appended so far durable: each pack appended to
// since the last sync, and the directory if a pack was created.
func (s *blockStore) sync() error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	dirty, newDir := s.dirty, s.newDir
	s.dirty, s.newDir = make(map[uint32]bool), false
	s.mu.Unlock()
	err := func() error {
		for n := range dirty {
			if err := syncPath(filepath.Join(s.dir, packName(n))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if newDir {
			return syncPath(s.dir)
		}
		return nil
	}()
	if err != nil {
		// Not durable yet: the next sync tries these again.
		s.mu.Lock()
		for n := range dirty {
			s.dirty[n] = true
		}
		s.newDir = s.newDir || newDir
		s.mu.Unlock()
	}
	return err
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (s *blockStore) stripe(k ds.Key) *sync.Mutex {
	var h uint32
	for _, b := range []byte(k.String()) {
		h = h*31 + uint32(b)
	}
	return &s.stripes[h%uint32(len(s.stripes))]
}

// DeleteBlock removes the block; removing one the store lacks is no error.
// A packed block's bytes stay in its pack until GC rewrites the pack.
func (s *blockStore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	k := dshelp.MultihashToDsKey(c.Hash())
	if s.dir != "" {
		mu := s.stripe(k)
		mu.Lock()
		defer mu.Unlock()
		if err := s.ds.Delete(ctx, packedKey(k)); err != nil {
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
		prefixes = append(prefixes, packedPrefix)
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

// packed calls f with each packed block's key and location.
func (s *blockStore) packed(ctx context.Context, f func(k ds.Key, l location)) error {
	if s.dir == "" {
		return nil
	}
	res, err := s.ds.Query(ctx, query.Query{Prefix: packedPrefix.String()})
	if err != nil {
		return err
	}
	defer res.Close()
	for r := range res.Next() {
		if r.Error != nil {
			return r.Error
		}
		if l, err := parseLocation(r.Value); err == nil {
			f(ds.NewKey(ds.RawKey(r.Key).BaseNamespace()), l)
		}
	}
	return ctx.Err()
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
	err = s.packed(ctx, func(_ ds.Key, l location) {
		n++
		bytes += int64(l.size)
	})
	return n, bytes, err
}

// compact rewrites every pack (but the active one) whose live blocks fill
// less than half of it into the active pack, and removes it; a pack with
// no live block is simply removed. GC calls it after deleting what no pin
// reaches.
func (s *blockStore) compact(ctx context.Context) error {
	if s.dir == "" {
		return nil
	}
	nums, err := s.packNumbers()
	if err != nil {
		return err
	}
	s.mu.Lock()
	active, hasActive := s.num, s.active != nil
	s.mu.Unlock()
	live := make(map[uint32]int64)
	move := make(map[uint32][]ds.Key)
	if err := s.packed(ctx, func(k ds.Key, l location) {
		live[l.pack] += int64(l.size)
		move[l.pack] = append(move[l.pack], k)
	}); err != nil {
		return err
	}
	var victims []uint32
	for _, n := range nums {
		if hasActive && n == active {
			continue
		}
		info, err := os.Stat(filepath.Join(s.dir, packName(n)))
		if err != nil {
			continue
		}
		if live[n]*2 < info.Size() {
			victims = append(victims, n)
		}
	}
	if len(victims) == 0 {
		return nil
	}
	for _, n := range victims {
		for _, k := range move[n] {
			if err := s.move(ctx, k, n); err != nil {
				return err
			}
		}
	}
	// The moved blocks are durable in their new pack before the old
	// ones go.
	if err := s.sync(); err != nil {
		return err
	}
	if err := s.ds.Sync(ctx, packedPrefix); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range victims {
		if f, ok := s.packs[n]; ok {
			f.Close() // a read under way fails with ErrClosed and looks again
			delete(s.packs, n)
		}
		if err := os.Remove(filepath.Join(s.dir, packName(n))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// move copies a packed block out of pack n into the active pack, if its
// record still names pack n.
func (s *blockStore) move(ctx context.Context, k ds.Key, n uint32) error {
	mu := s.stripe(k)
	mu.Lock()
	defer mu.Unlock()
	l, ok, err := s.locate(ctx, k)
	if err != nil || !ok || l.pack != n {
		return err
	}
	data, err := s.readAt(l, nil)
	if errors.Is(err, ErrCorruptBlock) {
		// Nothing good to move: drop it, as Verify with remove would,
		// so that a fetch can bring it again.
		return s.ds.Delete(ctx, packedKey(k))
	}
	if err != nil {
		return err
	}
	nl, err := s.appendBlock(k.String(), data, crc32.Checksum(data, castagnoli), false)
	if err != nil {
		return err
	}
	return s.ds.Put(ctx, packedKey(k), nl.marshal())
}

// isCorrupt reports whether err says a stored block is damaged.
func isCorrupt(err error) bool { return errors.Is(err, ErrCorruptBlock) }
