package content_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

// tree is a directory of three files, one of several blocks, and a
// subdirectory.
func tree() content.Entries {
	return func(put func(string, io.Reader) error, mkdir func(string) error, link func(string, string) error) error {
		if err := put("big.bin", bytes.NewReader(randomBytes(3*content.ChunkSize+100, 7))); err != nil {
			return err
		}
		if err := mkdir("sub"); err != nil {
			return err
		}
		if err := put("sub/small.txt", strings.NewReader("small\n")); err != nil {
			return err
		}
		return link("sub/link", "../big.bin")
	}
}

// readCAR reads a CAR file whole, checking every block against its CID.
func readCAR(t *testing.T, data []byte) (roots []cid.Cid, got []blocks.Block) {
	t.Helper()
	br, err := car.NewBlockReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			return br.Roots, got
		}
		if err != nil {
			t.Fatalf("CAR block %d: %v", len(got), err)
		}
		got = append(got, b)
	}
}

// TestCARRoundTrip exports a directory from one node, fetched over the
// network by a second, as a CAR file; checks the file (one root, every
// block once and sound, the root first, as many blocks as the node
// stores for it); and imports it on a third node that meets no one: the
// root is pinned there and every file reads back the same.
func TestCARRoundTrip(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	root, err := c.Node(0).Content().AddTree(ctx, tree(), content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Node(1).Content().ExportCAR(ctx, root, &buf, nil); err != nil {
		t.Fatal(err)
	}
	roots, got := readCAR(t, buf.Bytes())
	if len(roots) != 1 || !roots[0].Equals(root) {
		t.Fatalf("CAR roots %v, want [%s]", roots, root)
	}
	if len(got) == 0 || !got[0].Cid().Equals(root) {
		t.Fatal("the CAR does not start with its root")
	}
	seen := map[cid.Cid]bool{}
	for _, b := range got {
		if seen[b.Cid()] {
			t.Fatalf("%s twice in the CAR", b.Cid())
		}
		seen[b.Cid()] = true
	}
	// Five blocks of big.bin (four leaves and their parent), small.txt,
	// link, sub and the root.
	if len(got) != 9 {
		t.Fatalf("%d blocks in the CAR, want 9", len(got))
	}

	lone := nubetest.Cluster(t, 1).Node(0)
	res, err := lone.Content().ImportCAR(ctx, bytes.NewReader(buf.Bytes()), content.ImportOptions{Name: "site"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != 9 || len(res.Roots) != 1 || !res.Roots[0].Equals(root) {
		t.Fatalf("import: %+v", res)
	}
	if !pinned(t, lone, root) {
		t.Fatal("the CAR's root is not pinned after the import")
	}
	// A GC keeps all of it, and it reads back with no one to ask.
	if _, err := lone.Content().GC(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := lone.Content().Get(ctx, root.String()+"/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, sum := readAllHash(t, f); n != 3*content.ChunkSize+100 || sum != sha256.Sum256(randomBytes(3*content.ChunkSize+100, 7)) {
		t.Fatal("big.bin differs after the round trip")
	}
	// And its export is the same file, byte for byte.
	var again bytes.Buffer
	if err := lone.Content().ExportCAR(ctx, root, &again, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Fatal("the re-export differs from the export")
	}
}

// TestCARDagCBOR imports a CAR whose root is a dag-cbor block linking to
// a raw block, as IPLD tools write: the root is pinned, GC keeps the raw
// block it links to, and a second node fetches the whole DAG over the
// network (the fetcher follows dag-cbor links) and exports it.
func TestCARDagCBOR(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	leaf := blocks.NewBlock([]byte("a raw leaf under a dag-cbor root"))
	leafCID := cid.NewCidV1(cid.Raw, leaf.Cid().Hash())
	leaf, _ = blocks.NewBlockWithCid(leaf.RawData(), leafCID)
	rootBlock := cborBlock(t, "leaf", leafCID)
	data := carFile(t, []cid.Cid{rootBlock.Cid()}, rootBlock, leaf)

	if _, err := c.Node(0).Content().ImportCAR(ctx, bytes.NewReader(data), content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Content().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _ := c.Node(0).Content().Has(ctx, leafCID); !has {
		t.Fatal("GC removed a block the pinned dag-cbor root links to")
	}
	var buf bytes.Buffer
	if err := c.Node(1).Content().ExportCAR(ctx, rootBlock.Cid(), &buf, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("the dag-cbor DAG fetched and exported differs from the CAR imported")
	}
}

// TestCARImportRefuses feeds ImportCAR bad files: each is refused with an
// error that says what was wrong, and nothing is pinned.
func TestCARImportRefuses(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	ctx := nubetest.Context(t, time.Minute)
	good := blocks.NewBlock([]byte("good"))
	goodCID := cid.NewCidV1(cid.Raw, good.Cid().Hash())
	good, _ = blocks.NewBlockWithCid(good.RawData(), goodCID)
	valid := carFile(t, []cid.Cid{goodCID}, good)

	// A block whose bytes were changed after its CID was made.
	forged := bytes.Clone(valid)
	forged[len(forged)-1] ^= 1
	// A section whose length says 1 GiB, with nothing after it.
	header := valid[:len(valid)-sectionLen(good)]
	huge := append(bytes.Clone(header), binary.AppendUvarint(nil, 1<<30)...)
	// A root linking to a block the file lacks.
	incomplete := cborBlock(t, "missing", cid.NewCidV1(cid.Raw, mustHash(t, []byte("nowhere"))))

	for _, tc := range []struct {
		name string
		data []byte
		want error
		says string
	}{
		{"altered block", forged, content.ErrBadCAR, "hash to"},
		{"truncated", valid[:len(valid)-2], content.ErrBadCAR, "block 1"},
		{"huge section", huge, content.ErrBadCAR, "block 1"},
		{"not a CAR", []byte("hello, I am not a CAR file"), content.ErrBadCAR, "header"},
		{"empty", nil, content.ErrBadCAR, "header"},
		{"incomplete DAG", carFile(t, []cid.Cid{incomplete.Cid()}, incomplete), content.ErrIncomplete, incomplete.Cid().String()},
	} {
		_, err := n.Content().ImportCAR(ctx, bytes.NewReader(tc.data), content.ImportOptions{})
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: err = %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	pins, err := n.Content().Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 0 {
		t.Fatalf("bad imports left pins: %v", pins)
	}
	// The valid file still imports.
	if _, err := n.Content().ImportCAR(ctx, bytes.NewReader(valid), content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
}

// FuzzImportCAR feeds arbitrary bytes to ImportCAR, as `nube dag import`
// does with a file from anyone: no panic, and whatever it stores verifies.
func FuzzImportCAR(f *testing.F) {
	n := nubetest.Cluster(f, 1).Node(0)
	b := blocks.NewBlock([]byte("seed"))
	raw, _ := blocks.NewBlockWithCid(b.RawData(), cid.NewCidV1(cid.Raw, b.Cid().Hash()))
	f.Add(carFileF(f, []cid.Cid{raw.Cid()}, raw))
	f.Add([]byte{0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x01})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		n.Content().ImportCAR(ctx, bytes.NewReader(data), content.ImportOptions{NoPin: true})
		v, err := n.Content().Verify(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Bad) > 0 {
			t.Fatalf("an import stored %d bad blocks", len(v.Bad))
		}
	})
}

// carFile writes a CARv1 file of bs under roots, in order.
func carFile(t *testing.T, roots []cid.Cid, bs ...blocks.Block) []byte {
	t.Helper()
	return carFileF(t, roots, bs...)
}

func carFileF(t testing.TB, roots []cid.Cid, bs ...blocks.Block) []byte {
	var buf bytes.Buffer
	w, err := storage.NewWritable(&buf, roots, car.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Put(context.Background(), b.Cid().KeyString(), b.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// sectionLen is the bytes b takes in a CAR file.
func sectionLen(b blocks.Block) int {
	n := len(b.Cid().Bytes()) + len(b.RawData())
	return len(binary.AppendUvarint(nil, uint64(n))) + n
}

// cborBlock is a dag-cbor block {key: link}.
func cborBlock(t *testing.T, key string, link cid.Cid) blocks.Block {
	t.Helper()
	node, err := qp.BuildMap(basicnode.Prototype.Any, 1, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, key, qp.Link(cidlink.Link{Cid: link}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(node, &buf); err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.DagCBOR, mustHash(t, buf.Bytes()))
	b, err := blocks.NewBlockWithCid(buf.Bytes(), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHash(t *testing.T, data []byte) mh.Multihash {
	t.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// pinned reports whether n has c pinned.
func pinned(t *testing.T, n *nube.Node, c cid.Cid) bool {
	t.Helper()
	pins, err := n.Content().Pins(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.CID.Equals(c) {
			return true
		}
	}
	return false
}
