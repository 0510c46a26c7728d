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
	for _, n := range []int{0, 1, size - 1, size, size + 1, 7*size + 13, 9 * size} {
		data := make([]byte, n)
		rand.New(rand.NewSource(int64(n))).Read(data)
		want := cuts(t, chunk.NewSizeSplitter(bytes.NewReader(data), size))
		s := newAheadSplitter(bytes.NewReader(data), size)
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
		}
	}

	broken := errors.New("disk on fire")
	src := io.MultiReader(bytes.NewReader(make([]byte, 2*size+10)), &failingReader{broken})
	s := newAheadSplitter(src, size)
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

// TestAheadSplitterStop checks that Stop ends the reading goroutine while
// it waits for room, and, when it is inside a Read, once that Read returns.
func TestAheadSplitterStop(t *testing.T) {
	s := newAheadSplitter(bytes.NewReader(make([]byte, 100*10)), 10) // more than it may read ahead
	if _, err := s.NextBytes(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	for range s.chunks { // closed once the goroutine has ended
	}

	g := &gateReader{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s = newAheadSplitter(g, 10)
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
