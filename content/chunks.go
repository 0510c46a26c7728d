package content

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
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
	pool   *chunkPool // if set, what full chunks are read into
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

// newAheadSplitter starts reading r in chunks of size. With a pool (of
// chunks of that size), full chunks are read into buffers it lends.
func newAheadSplitter(r io.Reader, size int, pool *chunkPool) *aheadSplitter {
	s := &aheadSplitter{r: r, pool: pool, chunks: make(chan chunkRead, readAhead), done: make(chan struct{})}
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
		var c chunkRead
		if s.pool != nil {
			c.b = s.pool.get()
		} else {
			c.b = make([]byte, size)
		}
		n, err := io.ReadFull(s.r, c.b)
		switch {
		case err == nil:
		case errors.Is(err, io.ErrUnexpectedEOF):
			last := append([]byte(nil), c.b[:n]...) // the last chunk, held at its size
			s.pool.giveBack(c.b)
			c.b = last
		default:
			s.pool.giveBack(c.b)
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

// A chunkPool lends the buffers an add reads a file's full chunks into,
// and takes each back once the store has copied it into a pack, so that
// an add of a GiB does not leave a GiB of chunks for the collector, the
// zeroing of new buffers and the faulting in of pages (together a third
// of an add's CPU; RATIONALE.md, Blocks).
//
// A buffer is reused only within the file it was lent for. Nothing holds
// a chunk's bytes once the store has them but the importer's node for it,
// which is not read again, except that a file of one chunk is its own
// root, kept by a directory being built for its CID and size: buffers lent
// for earlier files are not taken back, so that root's bytes stay as they
// were. A nil *chunkPool lends nothing.
type chunkPool struct {
	size int

	mu   sync.Mutex
	lent map[*byte]bool // buffers lent for this file and not back, by first byte
	free [][]byte       // buffers back from this file
}

func newChunkPool(size int) *chunkPool {
	return &chunkPool{size: size, lent: make(map[*byte]bool)}
}

// nextFile starts the next file: buffers lent before are not taken back.
func (p *chunkPool) nextFile() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = nil
	clear(p.lent)
}

// get lends a buffer of the pool's size, with any bytes in it.
func (p *chunkPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b []byte
	if n := len(p.free); n > 0 {
		b, p.free = p.free[n-1], p.free[:n-1]
	} else {
		b = make([]byte, p.size)
	}
	p.lent[&b[0]] = true
	return b
}

// owns reports whether data is a whole buffer lent for this file and not
// yet back.
func (p *chunkPool) owns(data []byte) bool {
	if p == nil || len(data) != p.size {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lent[&data[0]]
}

// giveBack takes back a buffer lent for this file; the borrower must not
// use it again. Anything else is left to the collector.
func (p *chunkPool) giveBack(b []byte) {
	if p == nil || len(b) != p.size {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lent[&b[0]] {
		delete(p.lent, &b[0])
		p.free = append(p.free, b)
	}
}

// returningStore is the store as an add writes to it: the chunks an add
// read into its pool's buffers go straight to a pack, not kept among the
// store's recent blocks, and their buffers go back to the pool once the
// pack has their bytes. Every other block is put as usual.
type returningStore struct {
	blockstore.Blockstore
	raw  *blockStore
	pool *chunkPool
}

func (s returningStore) Put(ctx context.Context, b blocks.Block) error {
	return s.PutMany(ctx, []blocks.Block{b})
}

func (s returningStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	var rest []blocks.Block
	for _, b := range bs {
		data := b.RawData()
		if !s.raw.packable(len(data)) || !s.pool.owns(data) {
			rest = append(rest, b)
			continue
		}
		if err := s.raw.putPacked(ctx, b.Cid(), data, checksum(b), false); err != nil {
			return err
		}
		s.pool.giveBack(data)
	}
	if len(rest) == 0 {
		return nil
	}
	return s.Blockstore.PutMany(ctx, rest)
}
