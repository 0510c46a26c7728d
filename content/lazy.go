package content

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// localFirst is the NodeGetter behind a file being read: it serves what
// the store has straight from the store, and only when a block is missing
// does it start the fetch that walks the DAG ahead of the reader (once per
// file) and ask the network. A file whose blocks are all local is thus
// read exactly as fast as its reader reads it, with no walk of the whole
// DAG up front and no bitswap session.
type localFirst struct {
	local  ipld.NodeGetter
	remote ipld.NodeGetter
	// walk is the root of the file, set once its path is resolved;
	// blocks missing before then (the directories on the way) are asked
	// for one by one.
	walk cid.Cid
	// path holds the blocks asked for before walk was set: the path's
	// directories and the file's root.
	path  []cid.Cid
	start func(root cid.Cid, path []cid.Cid) // starts the walk ahead
	once  sync.Once
	// fetch brings one missing block of the path into the store, with
	// the fetcher's own search for providers (which Fetching reports).
	fetch func(ctx context.Context, c cid.Cid) error
	// store, if set, is the store behind local, which readLeaf reads
	// from into the caller's buffer.
	store *blockStore
}

// maxPathBlocks bounds the path blocks a localFirst remembers (a HAMT
// directory's shards count as blocks on the path).
const maxPathBlocks = 64

// readLeaf returns the bytes of the raw block c as the caller's own, in
// buf if it has room: a file reader reads leaf after leaf into one
// buffer rather than allocating each.
func (l *localFirst) readLeaf(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	if l.store != nil {
		data, err := l.store.readInto(ctx, c, buf)
		if err == nil || !ipld.IsNotFound(err) {
			return data, err
		}
	}
	n, err := l.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return append(buf[:0], n.RawData()...), nil
}

// missing notes that a block must come from the network: the first time
// after the file's root is known, it starts the walk ahead.
func (l *localFirst) missing() {
	if l.walk.Defined() {
		l.once.Do(func() { l.start(l.walk, l.path) })
	}
}

func (l *localFirst) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	if !l.walk.Defined() && len(l.path) < maxPathBlocks {
		l.path = append(l.path, c)
	}
	n, err := l.local.Get(ctx, c)
	if err == nil || !ipld.IsNotFound(err) {
		return n, err
	}
	if !l.walk.Defined() && l.fetch != nil {
		// A block on the path, the file's root among them.
		if err := l.fetch(ctx, c); err != nil {
			return nil, err
		}
		return l.local.Get(ctx, c)
	}
	l.missing()
	return l.remote.Get(ctx, c)
}

// GetMany answers from the store what it can, in order, and hands the rest
// to the network in one batch.
func (l *localFirst) GetMany(ctx context.Context, keys []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(keys))
	var missing []cid.Cid
	for _, c := range keys {
		n, err := l.local.Get(ctx, c)
		switch {
		case err == nil:
			out <- &ipld.NodeOption{Node: n}
		case ipld.IsNotFound(err):
			missing = append(missing, c)
		default:
			out <- &ipld.NodeOption{Err: err}
		}
	}
	if len(missing) == 0 {
		close(out)
		return out
	}
	l.missing()
	// out has room for every key, so this goroutine never blocks on a
	// reader that went away; it ends when the network side's channel
	// closes, which its context guarantees.
	go func() {
		defer close(out)
		for opt := range l.remote.GetMany(ctx, missing) {
			out <- opt
		}
	}()
	return out
}
