package content

import (
	"errors"
	"io"
)

// aheadSplitter cuts a file into chunks exactly as boxo's size splitter
// does (full chunks, then a shorter last one, then io.EOF), but reads them
// in a goroutine of its own, a few chunks ahead. An add then reads its
// bytes (for `nube add`, from the API's socket) on one core while it
// hashes the chunks before on the other: hashing and reading each took
// about half of an add's one busy goroutine (RATIONALE.md, Blocks).
//
// Stop ends the reading goroutine; if it is inside a Read of the source,
// it ends when that Read returns. Only the reading goroutine reads the
// source, and NextBytes, on the caller's goroutine, counts the bytes and
// tells progress: nothing is told after the import returns.
type aheadSplitter struct {
	r      io.Reader
	chunks chan chunkRead
	done   chan struct{}
	err    error // once NextBytes has returned an error, always that one

	n        int64       // the bytes NextBytes has returned
	progress func(int64) // if set, told n after each chunk
}

type chunkRead struct {
	b   []byte
	err error
}

// readAhead is how many chunks the reading goroutine may hold ready.
const readAhead = 4

func newAheadSplitter(r io.Reader, size int) *aheadSplitter {
	s := &aheadSplitter{r: r, chunks: make(chan chunkRead, readAhead), done: make(chan struct{})}
	go s.read(size)
	return s
}

// read reads chunk after chunk until the source ends or fails, or Stop.
func (s *aheadSplitter) read(size int) {
	defer close(s.chunks)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		c := chunkRead{b: make([]byte, size)}
		n, err := io.ReadFull(s.r, c.b)
		switch {
		case err == nil:
		case errors.Is(err, io.ErrUnexpectedEOF):
			c.b = append([]byte(nil), c.b[:n]...) // the last chunk, held at its size
		default:
			c = chunkRead{err: err} // io.EOF with nothing read, or the source's error
		}
		select {
		case s.chunks <- c:
		case <-s.done:
			return
		}
		if c.err != nil {
			return
		}
		if n < size {
			select {
			case s.chunks <- chunkRead{err: io.EOF}:
			case <-s.done:
			}
			return
		}
	}
}

// NextBytes returns the next chunk, or io.EOF after the last.
func (s *aheadSplitter) NextBytes() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	c, ok := <-s.chunks
	if !ok {
		c.err = io.EOF // after Stop
	}
	if c.err != nil {
		s.err = c.err
	}
	if len(c.b) > 0 {
		s.n += int64(len(c.b))
		if s.progress != nil {
			s.progress(s.n)
		}
	}
	return c.b, c.err
}

// Reader returns the source.
func (s *aheadSplitter) Reader() io.Reader { return s.r }

// Stop ends the reading goroutine. NextBytes must not be called after.
func (s *aheadSplitter) Stop() { close(s.done) }
