package content

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/boxo/blockstore"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
	ipldcodec "github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/traversal"
	mh "github.com/multiformats/go-multihash"
)

// pinPrefix is where pins live in the store's datastore, beside the blocks
// (which the blockstore keeps under /blocks).
var (
	pinPrefix    = ds.NewKey("/pins")
	blocksPrefix = blockstore.BlockPrefix
)

// Store is a node's local content: blocks on disk (each hashed once, on
// its way in; see packs.go), and the set of pinned roots that garbage
// collection keeps. It is safe for concurrent use.
type Store struct {
	ds ds.Batching
	// raw is the block store itself; bs is what everything else uses:
	// raw with identity CIDs answered inline.
	raw *blockStore
	bs  blockstore.Blockstore
	gc  blockstore.GCLocker

	pinMu sync.Mutex // serialises pin writes
}

// Pin is a root kept, with everything it links to, through garbage
// collection.
type Pin struct {
	CID     cid.Cid   `json:"-"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
}

// MarshalJSON writes the pin with its CID as a string.
func (p Pin) MarshalJSON() ([]byte, error) {
	type plain Pin
	return json.Marshal(struct {
		CID string `json:"cid"`
		plain
	}{p.CID.String(), plain(p)})
}

// OpenStore opens (creating if need be) the block store in dir. An empty
// dir gives a store in memory.
func OpenStore(dir string) (*Store, error) {
	var d ds.Batching
	if dir == "" {
		d = dssync.MutexWrap(ds.NewMapDatastore())
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("block store %s: %w", dir, err)
		}
		p, err := pebbleds.NewDatastore(dir, pebbleds.WithPebbleOpts(PebbleOptions()))
		if err != nil {
			return nil, fmt.Errorf("block store %s: %w", dir, err)
		}
		d = p
	}
	packs := ""
	if dir != "" {
		packs = filepath.Join(dir, "packs")
	}
	raw := newBlockStore(d, packs)
	return &Store{
		ds:  d,
		raw: raw,
		bs:  blockstore.NewIdStore(raw),
		gc:  blockstore.NewGCLocker(),
	}, nil
}

// PebbleOptions returns the Pebble settings of the store's datastore,
// which holds pins and the blocks under 16 KiB (larger ones go to packs; see
// packs.go): values over 1 KiB go to blob files beside the LSM tree,
// written once and not rewritten by every compaction. Pebble's log records
// are checksummed, so a torn tail after a power cut is dropped, never read.
func PebbleOptions() *pebble.Options {
	o := &pebble.Options{
		FormatMajorVersion: pebble.FormatNewest,
		// Chunks go to packs, so the memtable holds records and small
		// blocks only: 8 MiB (it was 32 when every chunk went through
		// it, and a flush holds two).
		MemTableSize: 8 << 20,
	}
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           1 << 10,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.2,
		}
	}
	return o
}

// Blockstore returns the store's blocks. A read checks a large block's
// checksum, not its hash: Verify does that.
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// Close flushes and closes the store.
func (s *Store) Close() error {
	err := s.raw.close()
	if c, ok := s.ds.(interface{ Close() error }); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

// Sync makes every block written so far durable: the packs first, then
// the records that name them.
func (s *Store) Sync(ctx context.Context) error {
	if err := s.raw.sync(); err != nil {
		return fmt.Errorf("sync packs: %w", err)
	}
	return s.ds.Sync(ctx, ds.NewKey("/"))
}

// PinLock holds off garbage collection until the returned function is
// called. Adds and pinning fetches hold it from their first block to their
// pin, so GC never sees their blocks unpinned.
func (s *Store) PinLock(ctx context.Context) (unlock func()) {
	u := s.gc.PinLock(ctx)
	return func() { u.Unlock(ctx) }
}

// Pin records c as pinned. The caller makes sure c's blocks are all in the
// store first (and holds PinLock while getting them there).
func (s *Store) Pin(ctx context.Context, c cid.Cid, name string) error {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	b, err := json.Marshal(Pin{Name: name, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	k := pinPrefix.ChildString(c.String())
	if err := s.ds.Put(ctx, k, b); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	return s.ds.Sync(ctx, k)
}

// Repin moves the pin name from old to c in one synced write: for a root
// that replaces another (a new version of a space). c's blocks must all
// be in the store (under PinLock). old need not be pinned; old equal to c
// only renames.
func (s *Store) Repin(ctx context.Context, old, c cid.Cid, name string) error {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	v, err := json.Marshal(Pin{Name: name, Created: time.Now().UTC()})
	if err != nil {
		return err
	}
	b, err := s.ds.Batch(ctx)
	if err != nil {
		return err
	}
	if old.Defined() && !old.Equals(c) {
		if err := b.Delete(ctx, pinPrefix.ChildString(old.String())); err != nil {
			return err
		}
	}
	if err := b.Put(ctx, pinPrefix.ChildString(c.String()), v); err != nil {
		return err
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("pin %s: %w", c, err)
	}
	return s.ds.Sync(ctx, pinPrefix)
}

// Unpin removes c's pin. Its blocks stay until the next GC.
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	k := pinPrefix.ChildString(c.String())
	if ok, err := s.ds.Has(ctx, k); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("unpin %s: %w", c, ErrNotPinned)
	}
	if err := s.ds.Delete(ctx, k); err != nil {
		return fmt.Errorf("unpin %s: %w", c, err)
	}
	return s.ds.Sync(ctx, k)
}

// IsPinned reports whether c itself is a pinned root.
func (s *Store) IsPinned(ctx context.Context, c cid.Cid) (bool, error) {
	return s.ds.Has(ctx, pinPrefix.ChildString(c.String()))
}

// Pins lists the pinned roots, oldest first.
func (s *Store) Pins(ctx context.Context) ([]Pin, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: pinPrefix.String()})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []Pin
	for r := range res.Next() {
		if r.Error != nil {
			return nil, r.Error
		}
		k := ds.RawKey(r.Key)
		c, err := cid.Decode(k.BaseNamespace())
		if err != nil {
			continue // not ours; never written by Pin
		}
		p := Pin{CID: c}
		if err := json.Unmarshal(r.Value, &p); err != nil {
			return nil, fmt.Errorf("pin %s: bad record: %w", c, err)
		}
		p.CID = c
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// GCResult says what a garbage collection did.
type GCResult struct {
	Removed int   `json:"removed"` // blocks deleted
	Freed   int64 `json:"freed"`   // their bytes
	Kept    int   `json:"kept"`    // blocks reachable from a pin
}

// GC deletes every block not reachable from a pin. It waits for adds and
// pinning fetches under way to finish (they hold PinLock) and holds new
// ones off until it is done, so it never deletes a block they are about to
// pin.
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	unlock := s.gc.GCLock(ctx)
	defer unlock.Unlock(ctx)
	var res GCResult
	pins, err := s.Pins(ctx)
	if err != nil {
		return res, err
	}
	keep := make(map[string]struct{})
	for _, p := range pins {
		if err := s.walkLocal(ctx, p.CID, func(c cid.Cid) { keep[string(c.Hash())] = struct{}{} }); err != nil {
			return res, err
		}
	}
	res.Kept = len(keep)
	keys, err := s.raw.AllKeysChan(ctx)
	if err != nil {
		return res, err
	}
	var drop []cid.Cid
	for c := range keys {
		if _, ok := keep[string(c.Hash())]; !ok {
			drop = append(drop, c)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	for _, c := range drop {
		size, err := s.raw.GetSize(ctx, c)
		if err != nil && !isNotFound(err) {
			return res, err
		}
		if err := s.raw.DeleteBlock(ctx, c); err != nil {
			return res, fmt.Errorf("gc: delete %s: %w", c, err)
		}
		res.Removed++
		res.Freed += int64(max(size, 0))
	}
	if err := s.raw.compact(ctx); err != nil {
		return res, fmt.Errorf("gc: packs: %w", err)
	}
	return res, s.Sync(ctx)
}

// walkLocal calls visit for root and every block below it that is in the
// store. Missing blocks (a pin whose fetch was cut short) are skipped:
// GC keeps what there is.
func (s *Store) walkLocal(ctx context.Context, root cid.Cid, visit func(cid.Cid)) error {
	seen := map[cid.Cid]struct{}{}
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := seen[c]; ok {
			continue
		}
		seen[c] = struct{}{}
		if c.Prefix().MhType == mh.IDENTITY {
			continue // identity CIDs carry their bytes; nothing stored
		}
		b, err := s.raw.Get(ctx, c)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		visit(c)
		links, err := blockLinks(b)
		if err != nil {
			continue // a corrupt block: Verify reports it; keep it for inspection
		}
		stack = append(stack, links...)
	}
	return ctx.Err()
}

func isNotFound(err error) bool { return err != nil && ipld.IsNotFound(err) }

// blockLinks returns the CIDs a block links to: the links of dag-pb
// nodes (UnixFS), and every CID in a dag-cbor or dag-json block (as a CAR
// import may bring). Raw blocks and other codecs are leaves as far as GC,
// fetching and export are concerned.
func blockLinks(b blocks.Block) ([]cid.Cid, error) {
	var decode ipldcodec.Decoder
	switch b.Cid().Type() {
	case cid.DagProtobuf:
		n, err := mdag.DecodeProtobufBlock(b)
		if err != nil {
			return nil, err
		}
		out := make([]cid.Cid, 0, len(n.Links()))
		for _, l := range n.Links() {
			out = append(out, l.Cid)
		}
		return out, nil
	case cid.DagCBOR:
		decode = dagcbor.Decode
	case cid.DagJSON:
		decode = dagjson.Decode
	default:
		return nil, nil
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := decode(nb, bytes.NewReader(b.RawData())); err != nil {
		return nil, err
	}
	links, err := traversal.SelectLinks(nb.Build())
	if err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, len(links))
	for _, l := range links {
		if cl, ok := l.(cidlink.Link); ok {
			out = append(out, cl.Cid)
		}
	}
	return out, nil
}

// VerifyResult says what a store check found.
type VerifyResult struct {
	Checked int       `json:"checked"`
	Bad     []cid.Cid `json:"-"`
	Removed bool      `json:"removed"` // the bad blocks were deleted
}

// Verify reads every block in the store and checks its bytes against its
// CID. With remove, bad blocks are deleted (so they can be fetched again).
func (s *Store) Verify(ctx context.Context, remove bool) (VerifyResult, error) {
	var res VerifyResult
	keys, err := s.raw.AllKeysChan(ctx)
	if err != nil {
		return res, err
	}
	for c := range keys {
		res.Checked++
		data, err := s.raw.read(ctx, c, false, nil) // from the disk, always
		if isCorrupt(err) {
			res.Bad = append(res.Bad, c)
			continue
		}
		if isNotFound(err) {
			res.Checked-- // deleted since it was listed
			continue
		}
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", c, err)
		}
		// The store keys blocks by multihash; recompute it.
		got, err := c.Prefix().Sum(data)
		if err != nil || !got.Equals(c) {
			res.Bad = append(res.Bad, c)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if remove && len(res.Bad) > 0 {
		for _, c := range res.Bad {
			if err := s.raw.DeleteBlock(ctx, c); err != nil {
				return res, err
			}
		}
		res.Removed = true
	}
	return res, nil
}

// Stat counts the blocks in the store and their bytes.
func (s *Store) Stat(ctx context.Context) (blocks int, bytes int64, err error) {
	return s.raw.stat(ctx)
}
