package space

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"
)

// TestPlanWrite runs the rules of a write through a table: each case a
// small space (three keys of 300 bytes in all, at key epoch 2, values up
// to 1000 bytes), a write as the home read it, and the plan or the
// sentinel error the rules must give.
func TestPlanWrite(t *testing.T) {
	const space = "owner/s"
	entry := testCID(t, "entry")
	errRead := errors.New("entry: read failed") // one the rules pass on as it is
	base := writeState{space: space, count: 3, bytes: 300, epoch: 2, maxValue: 1000}
	// old is an entry under the tag now: key "k", size bytes.
	old := func(size uint64) *meta { return &meta{Key: "k", Size: size} }
	// put is a put of key, size bytes, sealed under epoch, whose value
	// says the size its entry does.
	put := func(key string, size, epoch uint64) writeReq {
		return writeReq{op: OpPut, tag: "t", entry: entry, meta: meta{Key: key, Size: size}, epoch: epoch, size: sealedSize(size)}
	}
	del := writeReq{op: OpDelete, tag: "t"}
	with := func(s writeState, f func(*writeState)) writeState { f(&s); return s }
	req := func(w writeReq, f func(*writeReq)) writeReq { f(&w); return w }

	cases := []struct {
		name  string
		state writeState
		req   writeReq
		plan  writePlan // if err is nil
		err   error
	}{
		// Puts that the rules allow.
		{name: "put of a new key", state: base, req: put("k", 100, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 4, bytes: 400}},
		{name: "put over a key", state: with(base, func(s *writeState) { s.old = old(50) }), req: put("k", 100, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 3, bytes: 350}},
		{name: "put over a key with a smaller value", state: with(base, func(s *writeState) { s.old = old(250) }), req: put("k", 10, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 3, bytes: 60}},
		{name: "put of an empty value", state: base, req: put("k", 0, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 4, bytes: 300}},
		{name: "put into an empty space", state: writeState{space: space, epoch: 0, maxValue: 1000}, req: put("k", 7, 0),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 1, bytes: 7}},
		{name: "put of a key at the limit", state: base, req: put(strings.Repeat("k", MaxKeyLen), 1, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: strings.Repeat("k", MaxKeyLen), count: 4, bytes: 301}},
		{name: "put of a value at the limit", state: base, req: put("k", 1000, 2),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "k", count: 4, bytes: 1300}},

		// Puts that the rules refuse.
		{name: "put into a deleted space", state: with(base, func(s *writeState) { s.deleted = true }), req: put("k", 100, 2), err: ErrNotFound},
		{name: "put into a deleted space, of an entry that did not read", state: with(base, func(s *writeState) { s.deleted = true }),
			req: writeReq{op: OpPut, tag: "t", entry: entry, entryErr: errRead}, err: ErrNotFound},
		{name: "put of an entry that did not read", state: base,
			req: writeReq{op: OpPut, tag: "t", entry: entry, entryErr: errRead}, err: errRead},
		{name: "put of an entry that does not open", state: base,
			req: writeReq{op: OpPut, tag: "t", entry: entry, entryErr: fmt.Errorf("%w: entry is filed under another key's tag", ErrBadChange)}, err: ErrBadChange},
		{name: "put sealed under an older epoch", state: base, req: put("k", 100, 1), err: ErrStale},
		{name: "put sealed under a newer epoch", state: base, req: put("k", 100, 3), err: ErrStale},
		{name: "put of a key over the limit", state: base, req: put(strings.Repeat("k", MaxKeyLen+1), 1, 2), err: ErrTooLarge},
		{name: "put of a value that did not read", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.valueErr = ipld.ErrNotFound{Cid: entry} }), err: ipld.ErrNotFound{Cid: entry}},
		{name: "put of a value larger than its entry says", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.size++ }), err: ErrBadChange},
		{name: "put of a value smaller than its entry says", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.size-- }), err: ErrBadChange},
		{name: "put of a value with the plaintext size, not the sealed one", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.size = 100 }), err: ErrBadChange},
		{name: "put of a value whose root says no size", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.sizeErr = errors.New("not a file") }), err: ErrBadChange},
		{name: "put of an inline value missing blocks", state: base,
			req: req(put("k", 100, 2), func(w *writeReq) { w.whole = errors.New("block not found") }), err: ErrBadChange},
		{name: "put of a value over the limit", state: base, req: put("k", 1001, 2), err: ErrTooLarge},
		{name: "put of a value at the largest size", state: base, req: put("k", math.MaxUint64, 2), err: ErrTooLarge},

		// Which refusal comes first, when several apply.
		{name: "a stale put of a key over the limit is stale", state: base,
			req: put(strings.Repeat("k", MaxKeyLen+1), 1, 1), err: ErrStale},
		{name: "a key over the limit, with a value that did not read, is too large", state: base,
			req: req(put(strings.Repeat("k", MaxKeyLen+1), 1, 2), func(w *writeReq) { w.valueErr = errRead }), err: ErrTooLarge},
		{name: "a value over the limit whose size does not match is a bad change", state: base,
			req: req(put("k", 5000, 2), func(w *writeReq) { w.size = 1 }), err: ErrBadChange},

		// Deletes.
		{name: "delete of a key", state: with(base, func(s *writeState) { s.old = old(120) }), req: del,
			plan: writePlan{op: OpDelete, tag: "t", name: "k", count: 2, bytes: 180}},
		{name: "delete of the last key", state: writeState{space: space, count: 1, bytes: 9, old: old(9)}, req: del,
			plan: writePlan{op: OpDelete, tag: "t", name: "k", count: 0, bytes: 0}},
		{name: "delete of a key that is not there", state: base, req: del, err: ErrNotFound},
		{name: "delete of a key in a deleted space", state: with(base, func(s *writeState) { s.deleted, s.old = true, old(1) }), req: del, err: ErrNotFound},
		{name: "delete looks at no entry or value", state: with(base, func(s *writeState) { s.old = old(100) }),
			req:  req(del, func(w *writeReq) { w.entryErr, w.valueErr, w.whole = errRead, errRead, errRead }),
			plan: writePlan{op: OpDelete, tag: "t", name: "k", count: 2, bytes: 200}},

		// Writes under a loan, whose prefix the key must start with.
		{name: "put under a loan's prefix", state: base, req: req(put("runs/k", 1, 2), func(w *writeReq) { w.prefix = "runs/" }),
			plan: writePlan{op: OpPut, tag: "t", entry: entry, name: "runs/k", count: 4, bytes: 301}},
		{name: "put outside a loan's prefix", state: base, req: req(put("k", 1, 2), func(w *writeReq) { w.prefix = "runs/" }), err: ErrNotAuthorised},
		{name: "delete under a loan's prefix", state: with(base, func(s *writeState) { s.old = &meta{Key: "runs/k", Size: 100} }),
			req:  req(del, func(w *writeReq) { w.prefix = "runs/" }),
			plan: writePlan{op: OpDelete, tag: "t", name: "runs/k", count: 2, bytes: 200}},
		{name: "delete outside a loan's prefix", state: with(base, func(s *writeState) { s.old = old(100) }),
			req: req(del, func(w *writeReq) { w.prefix = "runs/" }), err: ErrNotAuthorised},
		{name: "a stale put outside a loan's prefix is stale", state: base, req: req(put("k", 1, 1), func(w *writeReq) { w.prefix = "runs/" }), err: ErrStale},

		// Ops that are neither.
		{name: "unknown op", state: base, req: writeReq{op: 7, tag: "t"}, err: ErrBadChange},
		{name: "zero op", state: base, req: writeReq{tag: "t"}, err: ErrBadChange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := planWrite(c.state, c.req)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("planWrite = %+v, %v; want error %v", p, err, c.err)
				}
				if p != (writePlan{}) {
					t.Fatalf("refused with a plan: %+v", p)
				}
			} else if err != nil || p != c.plan {
				t.Fatalf("planWrite = %+v, %v;\nwant %+v", p, err, c.plan)
			}
		})
	}
}

// testCID is a CID for a table, of nothing stored.
func testCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}
