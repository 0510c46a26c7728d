package space

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// A write at the home goes in three steps (owned.apply): read what the
// rules look at (openWrite, writeTree.read), decide (planWrite, which does
// no I/O, so a table tests it: write_test.go), and carry out the plan
// (owned.commitWrite: the HAMT edit, the store batch, the repin, the
// signature, the push).

// writeState is what the rules of a write know of the space: its head's
// counts, the key epoch now, the limit, and the entry filed under the
// write's tag now.
type writeState struct {
	space    string // its ID, for messages
	deleted  bool
	count    uint64 // keys, as the head says
	bytes    uint64 // plaintext bytes of the values, as the head says
	epoch    uint64 // the key epoch a new value must be sealed under
	maxValue uint64 // the largest value, in plaintext bytes
	public   bool   // values are stored unsealed (Policy.Public)
	old      *meta  // the entry under the tag now, opened; nil: none, or one that does not open
}

// writeReq is one write as the home got it: put (the entry to file under
// tag) or delete of tag, and for a put what the home read of its entry and
// of the value the entry names (writeTree.read). Reading stops at the
// first thing that cannot be fetched: the fields after an error are unset.
type writeReq struct {
	op     Op
	tag    string
	entry  cid.Cid // a put's
	prefix string  // a loan's: the key must start with it ("" for any)
	writer string  // who a put's entry must name as its writer ("" for anyone)

	entryErr error  // why the entry could not be fetched or opened
	meta     meta   // the entry, opened
	epoch    uint64 // the key epoch that sealed the entry
	valueErr error  // why the value's root could not be fetched
	size     uint64 // the value's file size, as its root says (sealed bytes)
	sizeErr  error  // why the value's root does not say its size
	whole    error  // for a value whose root came with the write: why not all its blocks did
}

// writePlan is what a write does, as planWrite decides it: the tag to
// set or take out of the tree, and the next head's counts and change.
// What the plan leaves to the commit follows from it: the new root (the
// edited tree's), the pin moved from the old root to it, and the push to
// the holders.
type writePlan struct {
	op    Op
	tag   string
	entry cid.Cid // to file under tag; cid.Undef: take tag's entry out
	name  string  // the key, sealed into the head's change for watchers
	count uint64  // the next head's
	bytes uint64  // the next head's
}

// planWrite decides a write: the plan, or why the home refuses it
// (ErrNotFound for a deleted space or a delete of no key, ErrStale for a
// value sealed under another epoch than the space's, ErrTooLarge for a
// key or value over its limit, ErrBadChange for an entry or value that is
// not what it claims, ErrNotAuthorised for a key outside the prefix of
// the loan the write is made under, or the error reading it). It does no
// I/O. The key is the one the entry under the tag says, which the home
// opens with its keys and checks against the tag: a runner cannot hide a
// key outside its loan's prefix behind another's name.
//
// The counts use the head's arithmetic as it stands: a key that replaces
// one counts once, and its old size is taken off. An old entry that does
// not open counts as none (the keyring keeps every epoch's key, so only a
// corrupt entry does not open).
func planWrite(s writeState, w writeReq) (writePlan, error) {
	if s.deleted {
		return writePlan{}, fmt.Errorf("%w: space %s was deleted", ErrNotFound, s.space)
	}
	p := writePlan{op: w.op, tag: w.tag, count: s.count, bytes: s.bytes}
	switch w.op {
	case OpPut:
		if w.entryErr != nil {
			return writePlan{}, w.entryErr
		}
		if w.epoch != s.epoch {
			return writePlan{}, fmt.Errorf("%w: the value is sealed under key epoch %d; the space is at %d", ErrStale, w.epoch, s.epoch)
		}
		if len(w.meta.Key) > MaxKeyLen {
			return writePlan{}, fmt.Errorf("%w: key of %d bytes, over the limit of %d", ErrTooLarge, len(w.meta.Key), MaxKeyLen)
		}
		if w.writer != "" && w.meta.Writer != w.writer {
			return writePlan{}, fmt.Errorf("%w: the entry names %q as its writer, and the write is %s's", ErrBadChange, w.meta.Writer, w.writer)
		}
		if w.valueErr != nil {
			return writePlan{}, w.valueErr
		}
		if w.sizeErr != nil || w.size != storedSize(w.meta.Size, s.public) {
			return writePlan{}, fmt.Errorf("%w: the value's size does not match its entry", ErrBadChange)
		}
		// A value that came inline must be whole: holders would wait
		// forever for a block nobody has. (One fetched by Pin is whole.)
		if w.whole != nil {
			return writePlan{}, fmt.Errorf("%w: the value's blocks are not all there: %v", ErrBadChange, w.whole)
		}
		if w.meta.Size > s.maxValue {
			return writePlan{}, fmt.Errorf("%w: value of %d bytes, over the limit of %d", ErrTooLarge, w.meta.Size, s.maxValue)
		}
		p.entry, p.name = w.entry, w.meta.Key
		if s.old != nil {
			p.bytes -= s.old.Size
		} else {
			p.count++
		}
		p.bytes += w.meta.Size
	case OpDelete:
		if s.old == nil {
			return writePlan{}, fmt.Errorf("%w: no such key", ErrNotFound)
		}
		p.name = s.old.Key
		p.bytes -= s.old.Size
		p.count--
	default:
		// decodeChange refuses other ops before they get here.
		return writePlan{}, fmt.Errorf("%w: unknown op %d", ErrBadChange, w.op)
	}
	if !strings.HasPrefix(p.name, w.prefix) {
		return writePlan{}, fmt.Errorf("%w: a key outside the loan's prefix %q", ErrNotAuthorised, w.prefix)
	}
	return p, nil
}

// writeTree is a space's tree opened for one write, over the blocks the
// write made or brought (kept in memory, so that only those the new root
// reaches are stored, and holders get them with the head) and the store.
type writeTree struct {
	space string
	keys  keyring
	root  cid.Cid // the current one
	made  *memDAG
	sh    *hamt.Shard
}

// openWrite opens the tree of h for a write that brought blocks, each
// checked against its CID (else ErrBadChange); store is where the rest
// is read from.
func openWrite(ctx context.Context, store ipld.NodeGetter, space string, keys keyring, h *head, blocks []block) (*writeTree, error) {
	root, err := h.root()
	if err != nil {
		return nil, err
	}
	made := newMemDAG(store)
	for _, b := range blocks {
		blk, err := checkedBlock(b.CID, b.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadChange, err)
		}
		made.put(blk)
	}
	sh, err := openTree(ctx, made, space, root)
	if err != nil {
		return nil, err
	}
	return &writeTree{space: space, keys: keys, root: root, made: made, sh: sh}, nil
}

// current returns the entry filed under tag now, opened, or nil if there
// is none or it does not open.
func (t *writeTree) current(ctx context.Context, tag string) *meta {
	l, err := t.sh.Find(ctx, tag)
	if err != nil {
		return nil
	}
	n, err := t.made.Get(ctx, l.Cid)
	if err != nil {
		return nil
	}
	m, _, err := readEntry(n, t.keys, t.space, tag)
	if err != nil {
		return nil
	}
	return &m
}

// read fills in what the rules of a put look at: w's entry, opened as its
// tag's, and the value the entry names. It stops at the first thing that
// cannot be fetched.
func (t *writeTree) read(ctx context.Context, w *writeReq) {
	en, err := t.made.Get(ctx, w.entry)
	if err != nil {
		w.entryErr = fmt.Errorf("entry %s: %w", w.entry, err)
		return
	}
	if w.meta, w.epoch, err = readEntry(en, t.keys, t.space, w.tag); err != nil {
		w.entryErr = err
		return
	}
	vc, _ := cid.Cast(w.meta.Value) // readEntry checked it is the entry's link
	vn, err := t.made.Get(ctx, vc)
	if err != nil {
		w.valueErr = fmt.Errorf("value %s: %w", vc, err)
		return
	}
	w.size, w.sizeErr = fileSize(vn)
	if t.made.has(vc) {
		w.whole = walk(ctx, t.made, vc)
	}
}
