package content

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/hosttest"
)

// TestAddLendsChunks adds through a Service on a disk store, where an add
// reads full chunks into buffers that go back to a pool once their pack
// has them and are read into again: a file of 400 chunks gets the CID kubo
// gives, reads back, rehashes clean, and is read without allocating a
// buffer per chunk; a tree whose one-chunk files (each its own root, kept
// until the directory is built) come before bigger ones gets the CID the
// plain importer gives.
func TestAddLendsChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, Config{Host: hosttest.Hosts(t, 1)[0], Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); st.Close() })

	// kubo t0040, test_add_cat_expensive --cid-version=1 (as in
	// TestFileCIDsMatchKubo): 400 chunks.
	data := goRandom(104857600, 42)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := s.Add(ctx, bytes.NewReader(data), AddOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bafybeidkj5ecbhrqmzrcee2rw7qwsx24z3364qya3fnp2ktkg2tnsrewhi"; c.String() != want {
		t.Fatalf("CID %s, kubo gives %s", c, want)
	}
	// Without the pool, the chunks alone are 100 MB of allocations.
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(data))/2 {
		t.Errorf("an add of %d bytes allocated %d: the chunks' buffers were not lent again", len(data), got)
	}
	f, err := s.Get(ctx, c.String())
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d of %d bytes (%v), or they differ", len(back), len(data), err)
	}

	chunk := func(seed int64, n int) []byte {
		b := make([]byte, n)
		rand.New(rand.NewSource(seed)).Read(b)
		return b
	}
	files := []struct {
		path string
		data []byte
	}{
		{"one", chunk(1, ChunkSize)},
		{"big", goRandom(5242880, 41)},
		{"d/two", chunk(2, ChunkSize)},
		{"d/one-again", chunk(1, ChunkSize)},
		{"tail", chunk(3, 3*ChunkSize+7)},
	}
	entries := func(put func(string, io.Reader) error, _ func(string) error, _ func(string, string) error) error {
		for _, f := range files {
			if err := put(f.path, bytes.NewReader(f.data)); err != nil {
				return err
			}
		}
		return nil
	}
	tc, err := s.AddTree(ctx, entries, AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dag, _ := offlineDAG(t)
	tb := newTreeBuilder(dag)
	for _, f := range files {
		n, err := importFile(dag, bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		if err := tb.put(f.path, n); err != nil {
			t.Fatal(err)
		}
	}
	want, err := tb.finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tc != want.Cid() {
		t.Fatalf("tree CID %s, the plain importer gives %s", tc, want.Cid())
	}

	v, err := st.Verify(ctx, false)
	if err != nil || len(v.Bad) != 0 {
		t.Fatalf("verify: %v; bad blocks %v", err, v.Bad)
	}
}
