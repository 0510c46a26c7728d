package space

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mc "github.com/multiformats/go-multicodec"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
)

// The DAG of a space:
//
//	root (dag-pb: the space's ID) ──"t"──▶ HAMT (UnixFS sharded directory)
//	                                         │ one link per key, named by its tag
//	                                         ▼
//	                                  entry (dag-pb: epoch + sealed meta) ──"v"──▶ value (UnixFS file of sealed segments)
//
// The root carries the space's ID so that two spaces with the same
// contents (two empty ones, say) never share a root CID, which would make
// one's pin the other's.

// MaxKeyLen is the longest key.
const MaxKeyLen = 1024

const shardWidth = 256

// rootData is the root node's payload.
type rootData struct {
	Space string `cbor:"1,keyasint"`
}

// entryData is an entry node's payload: the epoch whose key sealed it and
// its sealed meta.
type entryData struct {
	Epoch uint64 `cbor:"1,keyasint"`
	Meta  []byte `cbor:"2,keyasint"`
}

// meta is what an entry says of its key, sealed.
type meta struct {
	Key    string `cbor:"1,keyasint"`
	Size   uint64 `cbor:"2,keyasint"` // plaintext bytes
	Value  []byte `cbor:"3,keyasint"` // the value's root CID
	Time   int64  `cbor:"4,keyasint"` // unix nanoseconds
	Writer string `cbor:"5,keyasint"` // user ID
}

// metaAD binds sealed metadata to its space and tag, so an entry cannot be
// moved under another key or space.
func metaAD(space, tag string) []byte { return []byte(space + "\x00" + tag) }

func newProto(data []byte) *mdag.ProtoNode {
	n := mdag.NodeWithData(data)
	n.SetCidBuilder(mdag.V1CidPrefix())
	return n
}

// emptyRoot builds (and writes to dag) the root of an empty space.
func emptyRoot(ctx context.Context, dag ipld.DAGService, space string) (cid.Cid, error) {
	sh, err := hamt.NewShard(dag, shardWidth)
	if err != nil {
		return cid.Undef, err
	}
	sh.SetCidBuilder(mdag.V1CidPrefix())
	return writeRoot(ctx, dag, space, sh)
}

func writeRoot(ctx context.Context, dag ipld.DAGService, space string, sh *hamt.Shard) (cid.Cid, error) {
	hn, err := sh.Node()
	if err != nil {
		return cid.Undef, err
	}
	data, err := marshal(rootData{Space: space})
	if err != nil {
		return cid.Undef, err
	}
	r := newProto(data)
	if err := r.AddNodeLink("t", hn); err != nil {
		return cid.Undef, err
	}
	if err := dag.Add(ctx, r); err != nil {
		return cid.Undef, err
	}
	return r.Cid(), nil
}

// openTree reads a space's root and opens its HAMT.
func openTree(ctx context.Context, dag ipld.DAGService, space string, root cid.Cid) (*hamt.Shard, error) {
	n, err := dag.Get(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("space root %s: %w", root, err)
	}
	pn, ok := n.(*mdag.ProtoNode)
	if !ok {
		return nil, fmt.Errorf("%w: space root %s is not dag-pb", ErrBadHead, root)
	}
	var rd rootData
	if err := unmarshal(pn.Data(), &rd); err != nil || rd.Space != space {
		return nil, fmt.Errorf("%w: root %s is not of space %s", ErrBadHead, root, space)
	}
	l, err := pn.GetNodeLink("t")
	if err != nil {
		return nil, fmt.Errorf("%w: root %s has no tree", ErrBadHead, root)
	}
	hn, err := dag.Get(ctx, l.Cid)
	if err != nil {
		return nil, fmt.Errorf("space tree %s: %w", l.Cid, err)
	}
	sh, err := hamt.NewHamtFromDag(dag, hn)
	if err != nil {
		return nil, fmt.Errorf("%w: tree %s: %v", ErrBadHead, l.Cid, err)
	}
	sh.SetCidBuilder(mdag.V1CidPrefix())
	return sh, nil
}

// findEntry returns the CID of tag's entry under root, or ErrNotFound.
func findEntry(ctx context.Context, dag ipld.DAGService, space string, root cid.Cid, tag string) (cid.Cid, error) {
	sh, err := openTree(ctx, dag, space, root)
	if err != nil {
		return cid.Undef, err
	}
	l, err := sh.Find(ctx, tag)
	if errors.Is(err, os.ErrNotExist) {
		return cid.Undef, ErrNotFound
	}
	if err != nil {
		return cid.Undef, err
	}
	return l.Cid, nil
}

// makeEntry seals m and builds the entry node, linked to the value
// (stored unsealed if public).
func makeEntry(kr keyring, epoch uint64, space, tag string, m meta, public bool) (*mdag.ProtoNode, error) {
	key, err := kr.data(epoch)
	if err != nil {
		return nil, err
	}
	pm, err := marshal(m)
	if err != nil {
		return nil, err
	}
	data, err := marshal(entryData{Epoch: epoch, Meta: sealSmall(key, metaAD(space, tag), pm)})
	if err != nil {
		return nil, err
	}
	n := newProto(data)
	vc, err := cid.Cast(m.Value)
	if err != nil {
		return nil, err
	}
	if err := n.AddRawLink("v", &ipld.Link{Cid: vc, Size: storedSize(m.Size, public)}); err != nil {
		return nil, err
	}
	return n, nil
}

// readEntry decodes and opens an entry, checking that it is tag's and
// that its link is the value its meta names.
func readEntry(n ipld.Node, kr keyring, space, tag string) (meta, uint64, error) {
	var m meta
	pn, ok := n.(*mdag.ProtoNode)
	if !ok {
		return m, 0, fmt.Errorf("%w: entry %s is not dag-pb", ErrBadChange, n.Cid())
	}
	var ed entryData
	if err := unmarshal(pn.Data(), &ed); err != nil {
		return m, 0, fmt.Errorf("%w: entry %s: %v", ErrBadChange, n.Cid(), err)
	}
	key, err := kr.data(ed.Epoch)
	if err != nil {
		return m, 0, err
	}
	pm, err := openSmall(key, metaAD(space, tag), ed.Meta)
	if err != nil {
		return m, 0, fmt.Errorf("entry %s: %w", n.Cid(), err)
	}
	if err := unmarshal(pm, &m); err != nil {
		return m, 0, fmt.Errorf("%w: entry %s: %v", ErrBadChange, n.Cid(), err)
	}
	l, err := pn.GetNodeLink("v")
	if err != nil || !bytesEqualCID(m.Value, l.Cid) {
		return m, 0, fmt.Errorf("%w: entry %s links to another value than its meta names", ErrBadChange, n.Cid())
	}
	if kr.tag(m.Key) != tag {
		return m, 0, fmt.Errorf("%w: entry %s is filed under another key's tag", ErrBadChange, n.Cid())
	}
	return m, ed.Epoch, nil
}

func bytesEqualCID(b []byte, c cid.Cid) bool {
	d, err := cid.Cast(b)
	return err == nil && d.Equals(c)
}

// fileSize is the size of the UnixFS file whose root is n.
func fileSize(n ipld.Node) (uint64, error) {
	switch n := n.(type) {
	case *mdag.RawNode:
		return uint64(len(n.RawData())), nil
	case *mdag.ProtoNode:
		fs, err := ft.FSNodeFromBytes(n.Data())
		if err != nil {
			return 0, err
		}
		return fs.FileSize(), nil
	}
	return 0, fmt.Errorf("value %s is neither raw nor dag-pb", n.Cid())
}

// decodeBlock decodes a dag-pb or raw block.
func decodeBlock(b blocks.Block) (ipld.Node, error) {
	switch mc.Code(b.Cid().Prefix().Codec) {
	case mc.DagPb:
		return mdag.DecodeProtobufBlock(b)
	case mc.Raw:
		return mdag.DecodeRawBlock(b)
	}
	return nil, fmt.Errorf("block %s: codec %d is not part of a space", b.Cid(), b.Cid().Prefix().Codec)
}

// checkedBlock makes a block of data and the CID it came under, refusing
// data that does not hash to that CID.
func checkedBlock(c []byte, data []byte) (blocks.Block, error) {
	id, err := cid.Cast(c)
	if err != nil {
		return nil, err
	}
	sum, err := id.Prefix().Sum(data)
	if err != nil {
		return nil, err
	}
	if !sum.Equals(id) {
		return nil, fmt.Errorf("block %s: data does not match its CID", id)
	}
	return blocks.NewBlockWithCid(data, id)
}

// memDAG is a DAG service over blocks in memory, read first, falling back
// to next (nil: none). Adds go to memory. It records the order blocks were
// added, so a write can ship exactly the blocks it made.
type memDAG struct {
	mu    sync.Mutex
	m     map[cid.Cid]blocks.Block
	order []cid.Cid
	next  ipld.NodeGetter
}

func newMemDAG(next ipld.NodeGetter) *memDAG {
	return &memDAG{m: map[cid.Cid]blocks.Block{}, next: next}
}

func (d *memDAG) put(b blocks.Block) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[b.Cid()]; !ok {
		d.m[b.Cid()] = b
		d.order = append(d.order, b.Cid())
	}
}

func (d *memDAG) has(c cid.Cid) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.m[c]
	return ok
}

func (d *memDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	d.mu.Lock()
	b, ok := d.m[c]
	d.mu.Unlock()
	if ok {
		return decodeBlock(b)
	}
	if d.next == nil {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return d.next.Get(ctx, c)
}

func (d *memDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		n, err := d.Get(ctx, c)
		out <- &ipld.NodeOption{Node: n, Err: err}
	}
	close(out)
	return out
}

func (d *memDAG) Add(_ context.Context, n ipld.Node) error {
	b, err := blocks.NewBlockWithCid(n.RawData(), n.Cid())
	if err != nil {
		return err
	}
	d.put(b)
	return nil
}

func (d *memDAG) AddMany(ctx context.Context, ns []ipld.Node) error {
	for _, n := range ns {
		if err := d.Add(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (d *memDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *memDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// values returns the raw blocks held (values' leaves) and the dag-pb ones
// that are UnixFS file nodes, in the order they were added: what of a
// value a read brought.
func (d *memDAG) values() []blocks.Block {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []blocks.Block
	for _, c := range d.order {
		b := d.m[c]
		if c.Prefix().Codec == cid.Raw {
			out = append(out, b)
			continue
		}
		if n, err := mdag.DecodeProtobufBlock(b); err == nil {
			if fs, err := ft.FSNodeFromBytes(n.(*mdag.ProtoNode).Data()); err == nil && fs.Type() == ft.TFile {
				out = append(out, b)
			}
		}
	}
	return out
}

// blocks returns the blocks added, in order.
func (d *memDAG) added() []block {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]block, 0, len(d.order))
	for _, c := range d.order {
		out = append(out, block{CID: c.Bytes(), Data: d.m[c].RawData()})
	}
	return out
}

// treeCache keeps the small blocks (tree nodes, entries, small values) a
// holder served lately, by CID, so that the reads of a busy space skip the
// store and its hash check; blocks never change under their CID. At most
// treeCacheBytes in all, no block over treeCacheBlock; when full, arbitrary
// blocks go.
type treeCache struct {
	mu    sync.Mutex
	m     map[cid.Cid]blocks.Block
	bytes int
}

const (
	treeCacheBytes = 16 << 20
	treeCacheBlock = 64 << 10
)

func (c *treeCache) get(id cid.Cid) blocks.Block {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *treeCache) put(b blocks.Block) {
	n := len(b.RawData())
	if n > treeCacheBlock {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[cid.Cid]blocks.Block{}
	}
	for k, v := range c.m {
		if c.bytes+n <= treeCacheBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= len(v.RawData())
	}
	if _, ok := c.m[b.Cid()]; !ok {
		c.m[b.Cid()] = b
		c.bytes += n
	}
}

// cachedDAG reads small blocks through a treeCache.
type cachedDAG struct {
	ipld.DAGService
	c *treeCache
}

func (d cachedDAG) Get(ctx context.Context, id cid.Cid) (ipld.Node, error) {
	if b := d.c.get(id); b != nil {
		return decodeBlock(b)
	}
	n, err := d.DAGService.Get(ctx, id)
	if err == nil {
		if b, berr := blocks.NewBlockWithCid(n.RawData(), id); berr == nil {
			d.c.put(b)
		}
	}
	return n, err
}

// recordDAG reads through to a DAG service and records every node it
// returns, so a holder can send a reader exactly the blocks of a path.
type recordDAG struct {
	ipld.DAGService
	mu    sync.Mutex
	seen  map[cid.Cid]bool
	got   []block
	bytes int
}

func (r *recordDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	n, err := r.DAGService.Get(ctx, c)
	if err == nil {
		r.mu.Lock()
		if !r.seen[c] {
			r.seen[c] = true
			r.got = append(r.got, block{CID: c.Bytes(), Data: n.RawData()})
			r.bytes += len(n.RawData())
		}
		r.mu.Unlock()
	}
	return n, err
}
