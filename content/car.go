package content

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
)

// CAR files (Content Addressable aRchives) carry whole DAGs between
// nodes and tools, as `ipfs dag export` and `ipfs dag import` do. The
// reading side takes anything: every block is checked against its CID
// before it is stored, and a file's sizes are bounded before anything is
// allocated for them.

// Limits on what ImportCAR reads.
const (
	// MaxCARHeaderSize bounds a CAR header: a list of roots, a few
	// dozen bytes each.
	MaxCARHeaderSize = 64 << 10
	// MaxBlockSize bounds one block in a CAR file: bitswap moves
	// nothing larger, so a larger block could never leave this node.
	MaxBlockSize = 2 << 20
	// maxCARSection is a block and its CID.
	maxCARSection = MaxBlockSize + 256
	// importBatch is how many blocks are written to the store at once.
	importBatch = 256
)

// ExportCAR writes the DAG under root to w as a CARv1 file with root as
// its only root, each block once, in depth-first order (as `ipfs dag
// export` writes). Blocks the store lacks are fetched first, from every
// provider at once; progress, if set, is called as they arrive.
func (s *Service) ExportCAR(ctx context.Context, root cid.Cid, w io.Writer, progress func(FetchProgress)) error {
	if err := s.Fetch(ctx, root, progress); err != nil {
		return fmt.Errorf("export %s: %w", root, err)
	}
	cw, err := storage.NewWritable(w, []cid.Cid{root}, car.WriteAsCarV1(true), car.AllowDuplicatePuts(true))
	if err != nil {
		return fmt.Errorf("export %s: %w", root, err)
	}
	err = s.walkDFS(ctx, root, func(b blocks.Block) error {
		return cw.Put(ctx, b.Cid().KeyString(), b.RawData())
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", root, err)
	}
	return nil
}

// walkDFS calls visit for root and every block under it, each once, in
// depth-first order, links in the order their block lists them. Every
// block must be in the store. Blocks are read unchecked: both callers
// have just checked them (the fetch that precedes an export reads every
// block through the checking store; an import hashes each on the way in),
// and a block is hashed once per pass, not twice.
func (s *Service) walkDFS(ctx context.Context, root cid.Cid, visit func(blocks.Block) error) error {
	seen := cid.NewSet()
	stack := []cid.Cid{root}
	bs := blockstore.NewIdStore(s.store.raw)
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen.Visit(c) {
			continue
		}
		b, err := bs.Get(ctx, c)
		if err != nil {
			return fmt.Errorf("block %s: %w", c, err)
		}
		if err := visit(b); err != nil {
			return err
		}
		links, err := blockLinks(b)
		if err != nil {
			return fmt.Errorf("block %s: %w", c, err)
		}
		for i := len(links) - 1; i >= 0; i-- {
			stack = append(stack, links[i])
		}
	}
	return ctx.Err()
}

// ImportOptions tune ImportCAR.
type ImportOptions struct {
	// NoPin stores the blocks without pinning the file's roots: they
	// stay until the next GC.
	NoPin bool
	// Name names the pins.
	Name string
	// Progress, if set, is called after each batch of blocks stored.
	Progress func(FetchProgress)
}

// ImportResult says what a CAR import stored.
type ImportResult struct {
	// Roots are the roots the file names, pinned unless NoPin.
	Roots []cid.Cid `json:"-"`
	// Blocks and Bytes count the blocks stored.
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// ImportCAR reads a CAR file (v1 or v2) from r, checks every block against
// its CID, stores the blocks, and pins each root the file names (unless
// opt.NoPin), then announces them. A block that fails its check, a
// section over MaxBlockSize, or a malformed file ends the import with
// ErrBadCAR, and nothing is pinned; a root whose DAG neither the file nor
// the store holds whole is not pinned either, and the error (ErrIncomplete)
// names the first block it lacks. Blocks stored before an error stay
// until the next GC.
func (s *Service) ImportCAR(ctx context.Context, r io.Reader, opt ImportOptions) (ImportResult, error) {
	var res ImportResult
	unlock := s.store.PinLock(ctx)
	defer unlock()
	br, err := car.NewBlockReader(ctxReader{ctx, r},
		car.MaxAllowedHeaderSize(MaxCARHeaderSize),
		car.MaxAllowedSectionSize(maxCARSection),
		// checkBlock hashes each block, once, with a message of ours.
		car.WithTrustedCAR(true))
	if err != nil {
		return res, fmt.Errorf("%w: header: %v", ErrBadCAR, err)
	}
	res.Roots = br.Roots
	bs := s.store.Blockstore()
	batch := make([]blocks.Block, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := bs.PutMany(ctx, batch); err != nil {
			return fmt.Errorf("import: store: %w", err)
		}
		batch = batch[:0]
		if opt.Progress != nil {
			opt.Progress(FetchProgress{Blocks: res.Blocks, Bytes: res.Bytes})
		}
		return nil
	}
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, fmt.Errorf("%w: block %d: %v", ErrBadCAR, res.Blocks+1, err)
		}
		if err := checkBlock(b); err != nil {
			return res, fmt.Errorf("%w: block %d: %v", ErrBadCAR, res.Blocks+1, err)
		}
		res.Blocks++
		res.Bytes += int64(len(b.RawData()))
		if batch = append(batch, b); len(batch) == importBatch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := s.store.Sync(ctx); err != nil {
		return res, fmt.Errorf("import: sync: %w", err)
	}
	if opt.NoPin {
		return res, nil
	}
	for _, root := range res.Roots {
		if err := s.complete(ctx, root); err != nil {
			return res, err
		}
	}
	for _, root := range res.Roots {
		if err := s.store.Pin(ctx, root, opt.Name); err != nil {
			return res, err
		}
		s.announce(root)
	}
	return res, nil
}

// checkBlock checks that b's bytes hash to its CID, and that b is no
// larger than a block can be.
func checkBlock(b blocks.Block) error {
	c, data := b.Cid(), b.RawData()
	if len(data) > MaxBlockSize {
		return fmt.Errorf("%s is %d bytes, over the %d a block may be", c, len(data), MaxBlockSize)
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("%s: %v", c, err)
	}
	if !sum.Equals(c) {
		return fmt.Errorf("the bytes of %s hash to %s", c, sum)
	}
	return nil
}

// complete reports, as ErrIncomplete, the first block under root that the
// store lacks.
func (s *Service) complete(ctx context.Context, root cid.Cid) error {
	err := s.walkDFS(ctx, root, func(blocks.Block) error { return nil })
	if isNotFound(err) {
		return fmt.Errorf("%w: root %s: %v", ErrIncomplete, root, err)
	}
	return err
}
