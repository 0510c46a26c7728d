package nubetest

import (
	"bytes"
	"context"
	"io/fs"
	"testing"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"
)

// DAG builds UnixFS nodes by hand, for tests of what a stranger's DAG may
// hold: link names are taken as given (empty, "..", "a/b", with NUL), two
// links may share a name, and modes are whatever is asked. CAR writes
// what was built as a CAR file, for an import.
//
//	d := nubetest.NewDAG(t)
//	root := d.Dir("A", d.Dir("../a", d.Symlink("/home")), "a", d.Dir("f", d.File("x")))
//	car := d.CAR(root)
type DAG struct {
	t      testing.TB
	blocks []blocks.Block
}

// NewDAG starts an empty DAG; failures end t.
func NewDAG(t testing.TB) *DAG { return &DAG{t: t} }

func (d *DAG) node(fsn *ft.FSNode, links ...any) *mdag.ProtoNode {
	d.t.Helper()
	data, err := fsn.GetBytes()
	if err != nil {
		d.t.Fatal(err)
	}
	n := mdag.NodeWithData(data)
	n.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256})
	for i := 0; i+1 < len(links); i += 2 {
		l, err := ipld.MakeLink(links[i+1].(ipld.Node))
		if err != nil {
			d.t.Fatal(err)
		}
		if err := n.AddRawLink(links[i].(string), l); err != nil {
			d.t.Fatal(err)
		}
	}
	d.blocks = append(d.blocks, n)
	return n
}

// File makes a file of one node holding body, with mode if it is not 0.
func (d *DAG) File(body string, mode ...fs.FileMode) *mdag.ProtoNode {
	fsn := ft.NewFSNode(ft.TFile)
	fsn.SetData([]byte(body))
	if len(mode) > 0 {
		fsn.SetMode(mode[0])
	}
	return d.node(fsn)
}

// Symlink makes a symlink to target.
func (d *DAG) Symlink(target string) *mdag.ProtoNode {
	fsn := ft.NewFSNode(ft.TSymlink)
	fsn.SetData([]byte(target))
	return d.node(fsn)
}

// Dir makes a directory of the links given in pairs, name then node, in
// that order.
func (d *DAG) Dir(links ...any) *mdag.ProtoNode {
	return d.node(ft.NewFSNode(ft.TDirectory), links...)
}

// DirMode is Dir with a mode (UnixFS 1.5).
func (d *DAG) DirMode(mode fs.FileMode, links ...any) *mdag.ProtoNode {
	fsn := ft.NewFSNode(ft.TDirectory)
	fsn.SetMode(mode)
	return d.node(fsn, links...)
}

// CAR returns a CARv1 file of every node built, rooted at root.
func (d *DAG) CAR(root ipld.Node) []byte {
	d.t.Helper()
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, []cid.Cid{root.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, b := range d.blocks {
		if err := w.Put(context.Background(), b.Cid().KeyString(), b.RawData()); err != nil {
			d.t.Fatal(err)
		}
	}
	return buf.Bytes()
}
