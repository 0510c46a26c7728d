package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	chunk "github.com/ipfs/boxo/chunker"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/boxo/ipld/unixfs/importer/trickle"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	ipld "github.com/ipfs/go-ipld-format"
)

// TestFileReader reads files of many shapes (raw leaves, dag-pb leaves
// with their bytes inline, balanced and trickle layouts, tiny chunks that
// make deep trees) in random pieces and at random offsets, and checks
// every byte against the data and against boxo's DagReader: once from a
// store in memory, once from a store on disk whose raw leaves the reader
// reads into its one buffer.
func TestFileReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		chunk   int64
		links   int
		raw     bool
		trickle bool
	}{
		{"empty", 0, 256 << 10, 174, true, false},
		{"one raw leaf", 1000, 256 << 10, 174, true, false},
		{"one dag-pb leaf", 1000, 256 << 10, 174, false, false},
		{"balanced raw", 3<<20 + 17, 256 << 10, 174, true, false},
		{"deep balanced", 200<<10 + 3, 1 << 10, 4, true, false},
		{"deep dag-pb leaves", 100<<10 + 1, 512, 3, false, false},
		{"trickle", 300<<10 + 9, 1 << 10, 5, false, true},
		{"more raw leaves than the store keeps in memory", 6<<20 + 5, 256 << 10, 174, true, false},
	} {
		for _, buffered := range []string{"", "memory", "disk"} {
			name := tc.name
			if buffered != "" {
				name += ", leaves read into one buffer from a store in " + buffered
			}
			t.Run(name, func(t *testing.T) {
				testFileReader(t, tc.size, tc.chunk, tc.links, tc.raw, tc.trickle, buffered)
			})
		}
	}
}

// testFileReader checks the reader on one file, built with the chunk
// size, links per node, leaves and layout given. With buffered "memory"
// or "disk" (chunks in packs), the reader reads raw leaves into its one
// buffer from such a store, through localFirst: the store must never
// hand it bytes it still holds.
func testFileReader(t *testing.T, size int, chunkSize int64, links int, raw, trickled bool, buffered string) {
	ctx := context.Background()
	dag, s := offlineDAG(t)
	var ng ipld.NodeGetter = dag
	if buffered == "disk" {
		var err error
		if s, err = OpenStore(t.TempDir()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		dag = mdag.NewDAGService(blockservice.New(s.Blockstore(), nil))
	}
	if buffered != "" {
		ng = &localFirst{local: dag, store: s.raw}
	}
	data := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(data)
	p := helpers.DagBuilderParams{Dagserv: dag, Maxlinks: links, RawLeaves: raw}
	if raw {
		p.CidBuilder = cidBuilder
	}
	db, err := p.New(chunk.NewSizeSplitter(bytes.NewReader(data), chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	var root ipld.Node
	if trickled {
		root, err = trickle.Layout(db)
	} else {
		root, err = balanced.Layout(db)
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err := newFileReader(ctx, ng, root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != uint64(len(data)) {
		t.Fatalf("Size %d, want %d", r.Size(), len(data))
	}
	var all bytes.Buffer
	if _, err := r.WriteTo(&all); err != nil || !bytes.Equal(all.Bytes(), data) {
		t.Fatalf("WriteTo: %d bytes, %v; differ from the data", all.Len(), err)
	}
	ref, err := uio.NewDagReader(ctx, root, dag)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	buf, refBuf := make([]byte, 70000), make([]byte, 70000)
	for range 200 {
		off := int64(0)
		if len(data) > 0 {
			off = rng.Int63n(int64(len(data)) + 10)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		n := rng.Intn(len(buf)) + 1
		got, err := io.ReadFull(r, buf[:n])
		if off >= int64(len(data)) {
			if got != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read at %d, past the end: %d bytes, %v", off, got, err)
			}
			continue
		}
		want := data[off:min(off+int64(n), int64(len(data)))]
		if !bytes.Equal(buf[:got], want) {
			t.Fatalf("read %d at %d: wrong bytes (%v)", n, off, err)
		}
		if _, err := ref.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		refGot, _ := io.ReadFull(ref, refBuf[:n])
		if !bytes.Equal(refBuf[:refGot], buf[:got]) {
			t.Fatalf("read %d at %d: differs from boxo's DagReader", n, off)
		}
	}
	if end, err := r.Seek(-1, io.SeekEnd); len(data) > 0 && (err != nil || end != int64(len(data)-1)) {
		t.Fatalf("Seek(-1, end) = %d, %v", end, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("a seek before the start succeeded")
	}
}

// TestFileReaderMalformed feeds the reader DAGs whose sizes lie: it must
// fail with an error, never panic or loop.
func TestFileReaderMalformed(t *testing.T) {
	ctx := context.Background()
	dag, _ := offlineDAG(t)
	data := make([]byte, 600<<10)
	root, err := importFile(dag, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Give a file root children whose sizes it misstates.
	pn := root.Copy().(*mdag.ProtoNode)
	fs, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		t.Fatal(err)
	}
	fs.RemoveAllBlockSizes()
	for range root.Links() {
		fs.AddBlockSize(100) // every leaf holds 256 KiB, not 100 bytes
	}
	b, err := fs.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	pn.SetData(b)
	if err := dag.Add(ctx, pn); err != nil {
		t.Fatal(err)
	}
	r, err := newFileReader(ctx, dag, pn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("a file whose sizes lie read without error")
	} else {
		t.Log(err)
	}
	// A directory is not a file.
	dir, err := newDirectory(dag)
	if err != nil {
		t.Fatal(err)
	}
	dn, _ := dir.GetNode()
	if _, err := newFileReader(ctx, dag, dn); !errors.Is(err, ErrIsDir) {
		t.Fatalf("a directory opened as a file: %v", err)
	}
}
