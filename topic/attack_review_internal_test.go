package topic

import (
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wire"
)

// reviewLog is a topic log on an in-memory Pebble, applied to by hand.
type reviewLog struct {
	t   *testing.T
	l   *topicLog
	idx uint64
}

func newReviewLog(t *testing.T) *reviewLog {
	db, err := pebble.Open("", &pebble.Options{FS: memFS(), Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := openLog(db, "topic.review")
	if err != nil {
		t.Fatal(err)
	}
	return &reviewLog{t: t, l: l}
}

func (r *reviewLog) apply(at int64, cmds ...command) []outcome {
	r.t.Helper()
	b, err := wire.Marshal(batch{Time: at, Cmds: cmds})
	if err != nil {
		r.t.Fatal(err)
	}
	r.idx++
	out, err := r.l.ApplyAt(r.idx, b)
	if err != nil {
		r.t.Fatal(err)
	}
	var res batchResult
	if err := wire.Unmarshal(out, &res); err != nil {
		r.t.Fatal(err)
	}
	return res.Out
}

// TestAttackAckWaitOverflow: attack "overflow a deadline". A worker that
// asks for an ack wait of "forever" (math.MaxInt64 ns, what
// time.Duration(math.MaxInt64) is) gets a deadline of log time + wait,
// which wraps negative: the message is at once due again and goes to a
// second worker of the same consumer, though the doc promises no message
// goes to two workers before its deadline. Fix: saturate the deadline
// (or cap AckWait) in fetch.
func TestAttackAckWaitOverflow(t *testing.T) {
	r := newReviewLog(t)
	const now = int64(1_000_000_000_000)
	r.apply(now, command{Op: opAppend, Raw: []byte("job")})
	a := r.apply(now, command{Op: opFetch, Consumer: "q", Worker: "a", Max: 1, Wait: math.MaxInt64, From: 1})
	if len(a[0].Offsets) != 1 {
		t.Fatalf("worker a got %v", a[0].Offsets)
	}
	b := r.apply(now+1, command{Op: opFetch, Consumer: "q", Worker: "b", Max: 1, Wait: 1e9, From: 1})
	if len(b[0].Offsets) != 0 {
		t.Fatalf("offset %v handed to worker b while worker a holds it with an ack wait of forever (its deadline wrapped)", b[0].Offsets)
	}
}

// TestAttackBatchOverGroupCap: attack "a huge message poisons a batch".
// The batcher gathers commands while the batch is under maxBatch, then
// takes one more, which may be a whole MaxEnvelope; but the group takes
// an Apply command of at most about group.MaxValue, and decodeBatch at
// most maxCommandBytes. A publisher that sends near-MaxMessage bodies
// makes every batch they land in too large, and all the honest publishes
// gathered with it fail (and a lone MaxMessage body is never storable).
// Fix: bound a batch by what the group and decodeBatch take (stop
// gathering before a command that would cross it; refuse bodies a lone
// batch cannot carry, or lower MaxMessage for durable topics).
func TestAttackBatchOverGroupCap(t *testing.T) {
	// The largest batch the batcher can gather: just under maxBatch, then
	// one message of MaxEnvelope (plus the encoding's few bytes a command).
	largest := maxBatch - 1 + MaxEnvelope + 64
	if largest > group.MaxValue {
		t.Errorf("the batcher can gather a batch of %d bytes; the group stores a command of at most about %d", largest, group.MaxValue)
	}
	if largest > max(maxCommandBytes, maxBatch) {
		t.Errorf("the batcher can gather a batch of %d bytes; decodeBatch refuses one over %d", largest, max(maxCommandBytes, maxBatch))
	}
}
