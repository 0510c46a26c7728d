package content

import (
	"testing"

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

// FuzzBlockLinks decodes arbitrary bytes as a dag-pb block, as GC and the
// fetcher do with blocks from peers: no panic, errors are fine.
func FuzzBlockLinks(f *testing.F) {
	dag, _ := offlineDAG(f)
	n, _ := newDirectory(dag)
	node, _ := n.GetNode()
	f.Add(node.RawData())
	f.Add([]byte{0x12, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
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
