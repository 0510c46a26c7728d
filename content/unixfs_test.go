package content

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ipld "github.com/ipfs/go-ipld-format"
)

// offlineDAG is a DAG service over a fresh in-memory store.
func offlineDAG(t testing.TB) (ipld.DAGService, *Store) {
	t.Helper()
	s, err := OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return mdag.NewDAGService(blockservice.New(s.Blockstore(), nil)), s
}

// goRandom reproduces `random COUNT SEED` from github.com/jbenet/go-random
// (the version kubo's test dependencies pin), the generator kubo's sharness
// tests make their big-file fixtures with: math/rand seeded with SEED, each
// Uint32 giving four bytes, low byte first.
func goRandom(count int, seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	out := make([]byte, count)
	for i := 0; i < count; {
		v := rng.Uint32()
		for j := 0; j < 4 && i < count; j++ {
			out[i] = byte(v)
			v >>= 8
			i++
		}
	}
	return out
}

// TestGoRandomMatchesKubo checks goRandom against the SHA-1 sums kubo's
// t0040-add-and-cat.sh asserts for its generated files, so the CID tests
// below test the importer, not the generator.
func TestGoRandomMatchesKubo(t *testing.T) {
	for _, tc := range []struct {
		count int
		seed  int64
		sha1  string // multihash hex: 0x11 0x14, then the digest
	}{
		{5242880, 41, "11145620fb92eb5a49c9986b5c6844efda37e471660e"},
		{104857600, 42, "1114885b197b01e0f7ff584458dc236cb9477d2e736d"},
	} {
		sum := sha1.Sum(goRandom(tc.count, tc.seed))
		if got := "1114" + hex.EncodeToString(sum[:]); got != tc.sha1 {
			t.Errorf("random %d %d: sha1 multihash %s, kubo's fixture says %s", tc.count, tc.seed, got, tc.sha1)
		}
	}
}

// TestFileCIDsMatchKubo adds files and compares their CIDs with the ones
// kubo gives for `ipfs add --cid-version 1`. Where each expected CID comes
// from is noted beside it.
func TestFileCIDsMatchKubo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		// kubo test/sharness/t0040-add-and-cat.sh, "zero length file has
		// correct hash" (raw leaves, as --cid-version 1 implies).
		{"empty", nil, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		// t0040: `echo "Hello Mars!"` added with --cid-version=1 (MARS).
		{"few bytes", []byte("Hello Mars!\n"), "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4"},
		// kubo test/sharness/t0124-gateway-ipns-record/README.md:
		// `echo "Hello IPFS" | ipfs add --cid-version 1 -q`.
		{"hello ipfs", []byte("Hello IPFS\n"), "bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244"},
		// t0040, test_add_cat_5MB --cid-version=1: `random 5242880 41`,
		// 20 chunks under one root.
		{"5 MB, one level", goRandom(5242880, 41), "bafybeigfnx3tka2rf5ovv2slb7ymrt4zbwa3ryeqibe6fipyt5vgsrli3u"},
		// t0040, test_add_cat_expensive --cid-version=1: `random
		// 104857600 42`, 400 chunks, so two levels (174 links per node).
		{"100 MB, two levels", goRandom(104857600, 42), "bafybeidkj5ecbhrqmzrcee2rw7qwsx24z3364qya3fnp2ktkg2tnsrewhi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dag, _ := offlineDAG(t)
			n, err := importFile(dag, bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Cid().String(); got != tc.want {
				t.Fatalf("CID %s, kubo gives %s", got, tc.want)
			}
			// And it reads back byte for byte.
			r, err := newFileReader(ctx, dag, n)
			if err != nil {
				t.Fatal(err)
			}
			var back bytes.Buffer
			if _, err := back.ReadFrom(r); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Bytes(), tc.data) {
				t.Fatalf("read back %d bytes, differ from the %d added", back.Len(), len(tc.data))
			}
		})
	}
}

// TestDirectoryCIDsMatchKubo builds directory trees and compares their
// CIDs with kubo's `ipfs add -r --cid-version 1`.
func TestDirectoryCIDsMatchKubo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		files map[string]string // path -> contents; a trailing / is an empty dir
		want  string
	}{
		// The empty directory: the CIDv1 go-ipfs's gateway hard-codes as
		// emptyDirCidStr (core/corehttp/gateway_handler.go), the base32
		// form of the well-known QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn.
		{"empty", nil, "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"},
		// kubo t0040-add-and-cat.sh, add_directory '--cid-version=1'
		// (PLANETS).
		{"planets", map[string]string{
			"mars.txt":  "Hello Mars!\n",
			"venus.txt": "Hello Venus!\n",
		}, "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi"},
		// kubo test/sharness/t0114-gateway-subdomains/README.md:
		// testdirlisting, nested directories, `ipfs add -Qr --cid-version 1`
		// (ipfs 0.18.1), DIR_CID.
		{"nested", map[string]string{
			"hello":         "hello\n",
			"ipfs/ipns/bar": "text-file-content\n",
			"api/file.txt":  "I am a txt file\n",
			"ipfs/file.txt": "I am a txt file\n",
			"ipfs/ipns/":    "",
			"api/":          "",
		}, "bafybeiht6dtwk3les7vqm6ibpvz6qpohidvlshsfyr7l5mpysdw2vmbbhe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dag, _ := offlineDAG(t)
			tb := newTreeBuilder(dag)
			for p, body := range tc.files {
				if strings.HasSuffix(p, "/") {
					if err := tb.mkdir(p); err != nil {
						t.Fatal(err)
					}
					continue
				}
				n, err := importFile(dag, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if err := tb.put(p, n); err != nil {
					t.Fatal(err)
				}
			}
			n, err := tb.finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := n.Cid().String(); got != tc.want {
				t.Fatalf("CID %s, kubo gives %s", got, tc.want)
			}
		})
	}
}

func TestTreeBuilderRefusesBadPaths(t *testing.T) {
	dag, _ := offlineDAG(t)
	tb := newTreeBuilder(dag)
	n, _ := importFile(dag, strings.NewReader("x"))
	if err := tb.put("a", n); err != nil {
		t.Fatal(err)
	}
	if err := tb.put("a/b", n); err == nil {
		t.Error("a file used as a directory was accepted")
	}
	if err := tb.put("", n); err == nil {
		t.Error("a file with no name was accepted")
	}
	// ".." is refused, not cleaned against the root into another path.
	if err := tb.put("../../etc/passwd", n); !errors.Is(err, ErrBadName) {
		t.Errorf("../../etc/passwd: %v, want %v", err, ErrBadName)
	}
	if len(tb.root.dirs) != 0 {
		t.Errorf("../../etc/passwd left directories: %v", tb.root.dirs)
	}
}

// TestFileCID checks that FileCID, which stores nothing, names bytes as
// an add does: kubo's CID for a one-block file and for a 20-chunk one.
func TestFileCID(t *testing.T) {
	for data, want := range map[string]string{
		"Hello IPFS\n":                "bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244",
		string(goRandom(5242880, 41)): "bafybeigfnx3tka2rf5ovv2slb7ymrt4zbwa3ryeqibe6fipyt5vgsrli3u",
	} {
		c, err := FileCID(strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if c.String() != want {
			t.Errorf("FileCID of %d bytes = %s, want %s", len(data), c, want)
		}
	}
}
