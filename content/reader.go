package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// maxFileDepth bounds how deep a file's DAG may go. A balanced DAG of
// 256 KiB leaves with 174 links per node is 7 levels deep at a zettabyte.
const maxFileDepth = 32

// fileReader reads a UnixFS file in order, holding only the leaf it is in
// and the inner nodes above it: a slow reader costs about one leaf of
// memory. (Boxo's DagReader preloads ten children at every level, some
// megabytes a reader.) Blocks come through ng as they are needed; Seek
// walks down from the root by the sizes the inner nodes record.
type fileReader struct {
	ctx  context.Context
	ng   ipld.NodeGetter
	size uint64
	off  uint64 // where the next Read starts

	// path holds the nodes from the root down to the current leaf's
	// parent, to be reused by the next descent.
	path []pathNode
	// leaf holds the current leaf's bytes, which start at leafStart in
	// the file.
	leaf      []byte
	leafStart uint64
	// spare is the buffer raw leaves are read into when ng is a
	// leafReader: the current leaf's bytes, until the next leaf is read.
	spare []byte
}

// leafReader is a NodeGetter that can read a raw block into the caller's
// buffer, whose bytes the caller owns and may overwrite.
type leafReader interface {
	readLeaf(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error)
}

type pathNode struct {
	c     cid.Cid
	node  ipld.Node
	data  []byte   // the node's own bytes, before its children's
	sizes []uint64 // its children's sizes, from its UnixFS data
}

// newFileReader opens the UnixFS file whose root is n.
func newFileReader(ctx context.Context, ng ipld.NodeGetter, n ipld.Node) (*fileReader, error) {
	root, err := parseFileNode(n)
	if err != nil {
		return nil, err
	}
	return &fileReader{ctx: ctx, ng: ng, size: childSize(root), path: []pathNode{root}}, nil
}

// parseFileNode reads a node of a file: a raw leaf, or a dag-pb node of
// UnixFS type File or Raw whose sizes match its links.
func parseFileNode(n ipld.Node) (pathNode, error) {
	p := pathNode{c: n.Cid(), node: n}
	switch n := n.(type) {
	case *mdag.RawNode:
		p.data = n.RawData()
		return p, nil
	case *mdag.ProtoNode:
		fs, err := ft.FSNodeFromBytes(n.Data())
		if err != nil {
			return p, fmt.Errorf("%s: not UnixFS: %w", n.Cid(), err)
		}
		switch fs.Type() {
		case ft.TFile, ft.TRaw:
		case ft.TDirectory, ft.THAMTShard:
			return p, fmt.Errorf("%s: %w", n.Cid(), ErrIsDir)
		default:
			return p, fmt.Errorf("%s: UnixFS type %s is not a file", n.Cid(), fs.Type())
		}
		if fs.NumChildren() != len(n.Links()) {
			return p, fmt.Errorf("%s: malformed file node: %d sizes for %d links", n.Cid(), fs.NumChildren(), len(n.Links()))
		}
		p.data = fs.Data()
		p.sizes = fs.BlockSizes()
		return p, nil
	default:
		return p, fmt.Errorf("%s: not UnixFS (codec %#x)", n.Cid(), n.Cid().Type())
	}
}

// Size returns the file's length in bytes.
func (r *fileReader) Size() uint64 { return r.size }

// load makes the leaf holding r.off the current one, reusing the nodes on
// the path that lead to it.
func (r *fileReader) load() error {
	off := r.off
	base := uint64(0)
	for depth := 0; ; depth++ {
		if depth >= maxFileDepth {
			return fmt.Errorf("%s: file DAG deeper than %d levels", r.path[0].c, maxFileDepth)
		}
		p := r.path[depth]
		if off < base+uint64(len(p.data)) || len(p.sizes) == 0 {
			r.path = r.path[:depth+1]
			r.leaf, r.leafStart = p.data, base
			return nil
		}
		pos := base + uint64(len(p.data))
		i := 0
		for ; i < len(p.sizes) && off >= pos+p.sizes[i]; i++ {
			pos += p.sizes[i]
		}
		if i == len(p.sizes) {
			return fmt.Errorf("%s: malformed file: its parts end at %d of its %d bytes", r.path[0].c, pos, r.size)
		}
		link := p.node.Links()[i].Cid
		if len(r.path) <= depth+1 || r.path[depth+1].c != link {
			child, err := r.child(link, depth)
			if err != nil {
				return err
			}
			if got := childSize(child); got != p.sizes[i] {
				return fmt.Errorf("%s: malformed file: part %s holds %d bytes, its parent says %d", r.path[0].c, link, got, p.sizes[i])
			}
			r.path = append(r.path[:depth+1], child)
		}
		base = pos
	}
}

// child reads the node link, a child of the node at depth on the path. A
// raw leaf is read into r.spare when it can be: the leaf it replaces (the
// last on the path) is let go first, so nothing still reads the buffer.
func (r *fileReader) child(link cid.Cid, depth int) (pathNode, error) {
	if lr, ok := r.ng.(leafReader); ok && link.Type() == cid.Raw {
		r.path, r.leaf = r.path[:depth+1], nil
		data, err := lr.readLeaf(r.ctx, link, r.spare)
		if err != nil {
			return pathNode{}, fetchError(r.ctx, link, err)
		}
		r.spare = data
		return pathNode{c: link, data: data}, nil
	}
	n, err := r.ng.Get(r.ctx, link)
	if err != nil {
		return pathNode{}, fetchError(r.ctx, link, err)
	}
	return parseFileNode(n)
}

// childSize is the number of file bytes under p (for a root, the file's
// size, as its UnixFS data records it).
func childSize(p pathNode) uint64 {
	n := uint64(len(p.data))
	for _, s := range p.sizes {
		n += s
	}
	return n
}

// next returns the bytes from r.off to the end of its leaf, loading the
// leaf if need be, or io.EOF at the end of the file.
func (r *fileReader) next() ([]byte, error) {
	if r.path == nil {
		return nil, errors.New("read of a closed file")
	}
	if r.off >= r.size {
		return nil, io.EOF
	}
	if r.off < r.leafStart || r.off >= r.leafStart+uint64(len(r.leaf)) {
		if err := r.load(); err != nil {
			return nil, err
		}
		if r.off >= r.leafStart+uint64(len(r.leaf)) {
			return nil, fmt.Errorf("%s: malformed file: no bytes at offset %d", r.path[0].c, r.off)
		}
	}
	return r.leaf[r.off-r.leafStart:], nil
}

// Read reads the next bytes of the file.
func (r *fileReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := r.next()
	if err != nil {
		return 0, err
	}
	n := copy(p, b)
	r.off += uint64(n)
	return n, nil
}

// WriteTo writes the rest of the file to w, a leaf at a time.
func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		b, err := r.next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, err := w.Write(b)
		total += int64(n)
		r.off += uint64(n)
		if err != nil {
			return total, err
		}
	}
}

// Seek sets where the next Read starts. Seeking past the end is allowed;
// reads there give io.EOF.
func (r *fileReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = int64(r.off) + offset
	case io.SeekEnd:
		abs = int64(r.size) + offset
	default:
		return int64(r.off), fmt.Errorf("seek: bad whence %d", whence)
	}
	if abs < 0 {
		return int64(r.off), fmt.Errorf("seek to %d: before the start", abs)
	}
	r.off = uint64(abs)
	return abs, nil
}

// Close releases the reader's blocks.
func (r *fileReader) Close() error {
	r.leaf, r.path, r.spare = nil, nil, nil
	return nil
}
