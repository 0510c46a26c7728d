package content

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	chunk "github.com/ipfs/boxo/chunker"
)

// TestAheadSplitter checks that the reading-ahead splitter cuts exactly
// as boxo's size splitter does, which the CIDs kubo gives depend on,
// counts what it hands out, and passes a source's error on as boxo's
// does.
func TestAheadSplitter(t *testing.T) {
	const size = 1000
	for _, pool := range []*chunkPool{nil, newChunkPool(size)} {
		testAheadSplitter(t, size, pool)
	}

	broken := errors.New("disk on fire")
	src := io.MultiReader(bytes.NewReader(make([]byte, 2*size+10)), &failingReader{broken})
	s := newAheadSplitter(src, size, nil)
	defer s.Stop()
	for i := range 2 {
		if b, err := s.NextBytes(); err != nil || len(b) != size {
			t.Fatalf("chunk %d: %d bytes, %v", i, len(b), err)
		}
	}
	for range 2 { // and again: the error stays
		if _, err := s.NextBytes(); !errors.Is(err, broken) {
			t.Fatalf("after the source failed: %v, want %v", err, broken)
		}
	}
}

func testAheadSplitter(t *testing.T, size int, pool *chunkPool) {
	for _, n := range []int{0, 1, size - 1, size, size + 1, 7*size + 13, 9 * size} {
		data := make([]byte, n)
		rand.New(rand.NewSource(int64(n))).Read(data)
		want := cuts(t, chunk.NewSizeSplitter(bytes.NewReader(data), int64(size)))
		pool.nextFile()
		s := newAheadSplitter(bytes.NewReader(data), size, pool)
		told := int64(0)
		s.progress = func(n int64) { told = n }
		got := cuts(t, s)
		s.Stop()
		if told != int64(n) || s.n != int64(n) {
			t.Errorf("%d bytes: progress told %d, counted %d", n, told, s.n)
		}
		if len(got) != len(want) {
			t.Fatalf("%d bytes: %d chunks, boxo cuts %d", n, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%d bytes: chunk %d differs from boxo's (%d and %d bytes)", n, i, len(got[i]), len(want[i]))
			}
			if full := len(got[i]) == size; pool != nil && pool.owns(got[i]) != full {
				t.Fatalf("%d bytes: chunk %d of %d bytes: lent by the pool %v, want %v", n, i, len(got[i]), !full, full)
			}
		}
	}
}

// TestChunkPool: a buffer given back is lent again within the file it was
// lent for, and never after the next file starts; the pool takes back
// only its own buffers, once.
func TestChunkPool(t *testing.T) {
	p := newChunkPool(8)
	a, b := p.get(), p.get()
	if &a[0] == &b[0] || !p.owns(a) || !p.owns(b) {
		t.Fatal("two buffers lent at once are not two of the pool's own")
	}
	p.giveBack(a)
	if p.owns(a) {
		t.Fatal("a buffer given back is still counted as lent")
	}
	p.giveBack(a) // twice: must not be lent twice after
	if c, d := p.get(), p.get(); &c[0] != &a[0] || &d[0] == &a[0] {
		t.Fatal("a buffer given back (twice) was not lent again exactly once")
	}
	foreign := make([]byte, 8)
	p.giveBack(foreign)
	if p.owns(foreign) || &p.get()[0] == &foreign[0] {
		t.Fatal("the pool took a buffer it never lent")
	}

	p.nextFile()
	if p.owns(b) {
		t.Fatal("a buffer lent for the last file is still the pool's")
	}
	p.giveBack(b) // from the last file: left to the collector
	if e := p.get(); &e[0] == &b[0] {
		t.Fatal("a buffer lent for the last file was lent again for this one")
	}
	var none *chunkPool
	none.giveBack(a)
	if none.owns(a) {
		t.Fatal("a nil pool owns a buffer")
	}
}

// TestAheadSplitterStop checks that Stop ends the reading goroutine while
// it waits for room, and, when it is inside a Read, once that Read returns.
func TestAheadSplitterStop(t *testing.T) {
	s := newAheadSplitter(bytes.NewReader(make([]byte, 100*10)), 10, nil) // more than it may read ahead
	if _, err := s.NextBytes(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for range s.chunks { // closed once the goroutine has ended
	}

	g := &gateReader{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s = newAheadSplitter(g, 10, nil)
	<-g.entered
	s.Stop()
	close(g.release) // the Read under way returns; no other begins
	for range s.chunks {
	}
}

// gateReader tells of each Read and holds it until release is closed.
type gateReader struct {
	entered, release chan struct{}
}

func (g *gateReader) Read(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return len(p), nil
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// cuts reads every chunk of s.
func cuts(t *testing.T, s chunk.Splitter) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		b, err := s.NextBytes()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}
