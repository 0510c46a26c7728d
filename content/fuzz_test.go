package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	mdag "github.com/ipfs/boxo/ipld/merkledag"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// FuzzParsePath feeds arbitrary strings to the path parser: no panic, and
// anything accepted names a defined CID.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
		"/ipfs/bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354/a/b",
		"QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn//x/", "", "/", "not a cid", "ipfs://",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, parts, err := ParsePath(s)
		if err != nil {
			return
		}
		if !c.Defined() {
			t.Fatalf("%q: accepted without a CID", s)
		}
		for _, p := range parts {
			if p == "" {
				t.Fatalf("%q: empty path part", s)
			}
		}
	})
}

// FuzzBlockLinks decodes arbitrary bytes as a dag-pb, dag-cbor or dag-json
// block, as GC and the fetcher do with blocks from peers: no panic, errors
// are fine.
func FuzzBlockLinks(f *testing.F) {
	dag, _ := offlineDAG(f)
	n, _ := newDirectory(dag)
	node, _ := n.GetNode()
	f.Add(node.RawData(), uint8(0))
	f.Add([]byte{0x12, 0x00}, uint8(0))
	f.Add([]byte{}, uint8(0))
	// {"a": CID} in dag-cbor (tag 42) and dag-json.
	f.Add([]byte{0xa1, 0x61, 0x61, 0xd8, 0x2a, 0x45, 0x00, 0x01, 0x55, 0x00, 0x00}, uint8(1))
	f.Add([]byte(`{"a":{"/":"bafkqaaa"}}`), uint8(2))
	codecs := []uint64{cid.DagProtobuf, cid.DagCBOR, cid.DagJSON}
	f.Fuzz(func(t *testing.T, data []byte, codec uint8) {
		pre := cid.Prefix{Version: 1, Codec: codecs[int(codec)%len(codecs)], MhType: mh.SHA2_256, MhLength: -1}
		c, err := pre.Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			t.Fatal(err)
		}
		blockLinks(b)
	})
}

// FuzzFileReader reads arbitrary bytes as the root of a UnixFS file whose
// leaves are in the store, as Get does with a root from a peer: no panic,
// no endless loop, and what it reads never exceeds the size it claims.
func FuzzFileReader(f *testing.F) {
	ctx := context.Background()
	dag, _ := offlineDAG(f)
	root, err := importFile(dag, bytes.NewReader(bytes.Repeat([]byte("leaf "), 120<<10)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(root.RawData(), int64(0))
	f.Add(root.RawData(), int64(300<<10))
	f.Add([]byte{0x0a, 0x02, 0x08, 0x02}, int64(1))
	f.Fuzz(func(t *testing.T, data []byte, off int64) {
		n, err := mdag.DecodeProtobuf(data)
		if err != nil {
			return
		}
		r, err := newFileReader(ctx, dag, n)
		if err != nil {
			return
		}
		defer r.Close()
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return
		}
		got, _ := io.Copy(io.Discard, io.LimitReader(r, 2<<20))
		if off >= 0 && uint64(got) > r.Size() {
			t.Fatalf("read %d bytes of a file of %d", got, r.Size())
		}
	})
}

// FuzzParseLocation feeds the pack record decoder any bytes, as a damaged
// store might hold: it never panics, refuses what is not a record with
// ErrCorruptBlock, and what it accepts encodes back to the same bytes.
func FuzzParseLocation(f *testing.F) {
	f.Add(location{pack: 1, offset: 0, size: ChunkSize, crc: 7}.marshal())
	f.Add(location{pack: 1<<32 - 1, offset: 1 << 40, size: maxBlockSize, crc: 1<<32 - 1}.marshal())
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x80, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLocation(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptBlock) {
				t.Fatalf("error %v is not ErrCorruptBlock", err)
			}
			return
		}
		if l.size < 0 || l.size > maxBlockSize || l.offset < 0 {
			t.Fatalf("accepted %+v", l)
		}
		if again, err := parseLocation(l.marshal()); err != nil || again != l {
			t.Fatalf("round trip of %+v: %+v, %v", l, again, err)
		}
	})
}
