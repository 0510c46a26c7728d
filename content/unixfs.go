package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

// The import settings of `ipfs add --cid-version 1` in kubo (its defaults
// otherwise): CIDv1, sha2-256, fixed 256 KiB chunks, raw leaves, balanced
// DAGs of at most 174 links per node, and UnixFS directories that turn
// into HAMT shards past 256 KiB of links. The same bytes get the same CID
// in nube and in IPFS.
const (
	ChunkSize     = 256 << 10
	LinksPerBlock = 174
)

// cidBuilder makes CIDv1 dag-pb CIDs with sha2-256 for the DAG's inner
// nodes; raw leaves get the raw codec.
var cidBuilder = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

// importFile chunks r into a balanced UnixFS file DAG, writes its blocks
// to dag, and returns its root.
func importFile(dag ipld.DAGService, r io.Reader) (ipld.Node, error) {
	n, _, err := importFileProgress(dag, r, nil, nil)
	return n, err
}

// importFileProgress is importFile telling progress, if not nil, how many
// bytes it has imported, and returning how many it read. With a pool, it
// reads full chunks into the pool's buffers (see chunkPool).
func importFileProgress(dag ipld.DAGService, r io.Reader, progress func(int64), pool *chunkPool) (ipld.Node, int64, error) {
	p := helpers.DagBuilderParams{
		Dagserv:    dag,
		Maxlinks:   LinksPerBlock,
		RawLeaves:  true,
		CidBuilder: cidBuilder,
	}
	pool.nextFile()
	spl := newAheadSplitter(r, ChunkSize, pool)
	spl.progress = progress
	defer spl.Stop()
	db, err := p.New(spl)
	if err != nil {
		return nil, 0, err
	}
	n, err := balanced.Layout(db)
	return n, spl.n, err
}

// newDirectory starts an empty UnixFS directory with kubo's settings.
func newDirectory(dag ipld.DAGService) (uio.Directory, error) {
	return uio.NewDirectory(dag,
		uio.WithCidBuilder(cidBuilder),
		uio.WithSizeEstimationMode(uio.SizeEstimationLinks))
}

// symlinkNode makes a UnixFS symlink node pointing at target.
func symlinkNode(target string) (ipld.Node, error) {
	data, err := ft.SymlinkData(target)
	if err != nil {
		return nil, err
	}
	n := mdag.NodeWithData(data)
	if err := n.SetCidBuilder(cidBuilder); err != nil {
		return nil, err
	}
	return n, nil
}

// A treeBuilder collects the entries of a directory tree in any order
// (files are imported as they come) and builds the UnixFS directories
// bottom-up at the end, so a tar stream or a directory walk give the same
// CID as kubo's `add -r`.
type treeBuilder struct {
	dag  ipld.DAGService
	root *treeDir
}

type treeDir struct {
	dirs  map[string]*treeDir
	nodes map[string]ipld.Node // files and symlinks
}

func newTreeBuilder(dag ipld.DAGService) *treeBuilder {
	return &treeBuilder{dag: dag, root: &treeDir{dirs: map[string]*treeDir{}, nodes: map[string]ipld.Node{}}}
}

// cleanPath splits a relative slash-separated path into its parts,
// refusing any part CheckName refuses: "a/../b" is an error, not "b". A
// backslash is a slash, and a slash at either end is dropped; "" is the
// root.
func cleanPath(p string) ([]string, error) {
	p = strings.Trim(strings.ReplaceAll(p, "\\", "/"), "/")
	if p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if err := CheckName(s); err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
	}
	return parts, nil
}

// dir returns the directory at parts, creating it and its parents.
func (t *treeBuilder) dir(parts []string) (*treeDir, error) {
	d := t.root
	for _, s := range parts {
		if _, ok := d.nodes[s]; ok {
			return nil, fmt.Errorf("%s is both a file and a directory", s)
		}
		next := d.dirs[s]
		if next == nil {
			next = &treeDir{dirs: map[string]*treeDir{}, nodes: map[string]ipld.Node{}}
			d.dirs[s] = next
		}
		d = next
	}
	return d, nil
}

// mkdir records an (empty, so far) directory.
func (t *treeBuilder) mkdir(p string) error {
	parts, err := cleanPath(p)
	if err != nil {
		return err
	}
	_, err = t.dir(parts)
	return err
}

// put records a file or symlink node at p.
func (t *treeBuilder) put(p string, n ipld.Node) error {
	parts, err := cleanPath(p)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return errors.New("a file needs a name inside the directory")
	}
	d, err := t.dir(parts[:len(parts)-1])
	if err != nil {
		return err
	}
	name := parts[len(parts)-1]
	if _, ok := d.dirs[name]; ok {
		return fmt.Errorf("%s is both a file and a directory", p)
	}
	d.nodes[name] = n
	return nil
}

// finish builds the directories and returns the root's node.
func (t *treeBuilder) finish(ctx context.Context) (ipld.Node, error) {
	return t.build(ctx, t.root)
}

func (t *treeBuilder) build(ctx context.Context, d *treeDir) (ipld.Node, error) {
	dir, err := newDirectory(t.dag)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.dirs)+len(d.nodes))
	for name := range d.dirs {
		names = append(names, name)
	}
	for name := range d.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n, ok := d.nodes[name]
		if !ok {
			if n, err = t.build(ctx, d.dirs[name]); err != nil {
				return nil, err
			}
		}
		if err := dir.AddChild(ctx, name, n); err != nil {
			return nil, fmt.Errorf("directory entry %s: %w", name, err)
		}
	}
	n, err := dir.GetNode()
	if err != nil {
		return nil, err
	}
	return n, t.dag.Add(ctx, n)
}

// Kind tells files, directories and symlinks apart.
type Kind string

// The kinds of UnixFS node.
const (
	KindFile    Kind = "file"
	KindDir     Kind = "directory"
	KindSymlink Kind = "symlink"
)

// Entry describes a node in a UnixFS tree.
type Entry struct {
	Name   string  `json:"name"`
	CID    cid.Cid `json:"-"`
	Kind   Kind    `json:"kind"`
	Size   uint64  `json:"size"`             // a file's bytes; for a directory the DAG's total size
	Target string  `json:"target,omitempty"` // a symlink's target
	// Mode is the permission bits the DAG carries (UnixFS 1.5), 0 if
	// none. Set-id and sticky bits are dropped: content from the network
	// never asks for them.
	Mode os.FileMode `json:"mode,omitempty"`
	// MTime is the modification time the DAG carries, zero if none.
	MTime time.Time `json:"mtime,omitzero"`
}

// describe says what node n is.
func describe(name string, n ipld.Node) (Entry, error) {
	e := Entry{Name: name, CID: n.Cid()}
	switch n := n.(type) {
	case *mdag.RawNode:
		e.Kind, e.Size = KindFile, uint64(len(n.RawData()))
		return e, nil
	case *mdag.ProtoNode:
		fs, err := ft.FSNodeFromBytes(n.Data())
		if err != nil {
			return e, fmt.Errorf("%s: not UnixFS: %w", n.Cid(), err)
		}
		e.Mode, e.MTime = fs.Mode().Perm(), fs.ModTime()
		switch fs.Type() {
		case ft.TFile, ft.TRaw:
			e.Kind, e.Size = KindFile, fs.FileSize()
		case ft.TDirectory, ft.THAMTShard:
			e.Kind = KindDir
			e.Size, _ = n.Size()
		case ft.TSymlink:
			e.Kind, e.Target = KindSymlink, string(fs.Data())
			e.Size = uint64(len(e.Target))
		default:
			return e, fmt.Errorf("%s: unsupported UnixFS type %s", n.Cid(), fs.Type())
		}
		return e, nil
	default:
		return e, fmt.Errorf("%s: not UnixFS (codec %#x)", n.Cid(), n.Cid().Type())
	}
}

// ImportFile writes r's bytes as a UnixFS file into dag, with the settings
// Add uses (so the same bytes get the same CID), and returns its root. It
// neither pins nor announces: for a layer that builds DAGs of its own in
// memory or under its own pin lock.
func ImportFile(dag ipld.DAGService, r io.Reader) (ipld.Node, error) {
	return importFile(dag, r)
}

// FileCID returns the CID that adding r's bytes as a file gives, without
// storing anything: the way to check that bytes are what a CID names.
func FileCID(r io.Reader) (cid.Cid, error) {
	n, err := importFile(discardDAG{}, r)
	if err != nil {
		return cid.Undef, err
	}
	return n.Cid(), nil
}

// discardDAG is a DAG service that keeps nothing. The importer only
// writes, so FileCID needs no more.
type discardDAG struct{}

func (discardDAG) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	return nil, ipld.ErrNotFound{Cid: c}
}

func (discardDAG) GetMany(_ context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		ch <- &ipld.NodeOption{Err: ipld.ErrNotFound{Cid: c}}
	}
	close(ch)
	return ch
}

func (discardDAG) Add(context.Context, ipld.Node) error        { return nil }
func (discardDAG) AddMany(context.Context, []ipld.Node) error  { return nil }
func (discardDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (discardDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }
