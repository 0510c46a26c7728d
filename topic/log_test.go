package topic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/nubecloud/nube/internal/wire"
)

func memLog(t testing.TB, db *pebble.DB) *topicLog {
	t.Helper()
	if db == nil {
		var err error
		db, err = pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietPebble{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
	}
	l, err := openLog(db, "topic.test")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// applier applies batches to a log at increasing indexes.
type applier struct {
	t     testing.TB
	l     *topicLog
	index uint64
	now   time.Time
}

func (a *applier) do(r Retention, cmds ...command) []outcome {
	a.t.Helper()
	a.index++
	b, _ := wire.Marshal(batch{Time: a.now.UnixNano(), Retain: r, Cmds: cmds})
	out, err := a.l.ApplyAt(a.index, b)
	if err != nil {
		a.t.Fatal(err)
	}
	var res batchResult
	if err := wire.Unmarshal(out, &res); err != nil {
		a.t.Fatal(err)
	}
	return res.Out
}

func TestLogAppendDedupRetention(t *testing.T) {
	l := memLog(t, nil)
	a := &applier{t: t, l: l, now: time.Unix(1000, 0)}
	keep := Retention{Count: 5}
	out := a.do(keep, command{Op: opAppend, Raw: []byte("a"), Key: "k1"}, command{Op: opAppend, Raw: []byte("b"), Key: "k1"},
		command{Op: opAppend, Raw: []byte("c")})
	if out[0].Offset != 1 || out[0].Dup || out[1].Offset != 1 || !out[1].Dup || out[2].Offset != 2 { // offsets count from 1
		t.Fatalf("append: %+v", out)
	}
	// A replay of index 1 changes nothing.
	b, _ := wire.Marshal(batch{Time: 1, Cmds: []command{{Op: opAppend, Raw: []byte("x")}}})
	if _, err := l.ApplyAt(1, b); err != nil || l.state().Next != 3 {
		t.Fatalf("replay: next %d, %v", l.state().Next, err)
	}
	for i := range 10 {
		a.now = a.now.Add(time.Second)
		a.do(keep, command{Op: opAppend, Raw: []byte(fmt.Sprint(i))})
	}
	st := l.state()
	if st.Next != 13 || st.First != 8 || st.Next-st.First != 5 {
		t.Fatalf("count retention: %+v", st)
	}
	if msgs, _, _ := l.read(0, 10, 1<<20); len(msgs) != 0 {
		t.Fatalf("read below the retention: %d messages", len(msgs))
	}
	msgs, _, _ := l.read(8, 10, 1<<20)
	if len(msgs) != 5 || string(msgs[0].Raw) != "5" || msgs[0].Offset != 8 {
		t.Fatalf("read: %+v", msgs)
	}
	// The dedup key is forgotten past the window.
	a.now = a.now.Add(DedupWindow + time.Second)
	out = a.do(keep, command{Op: opAppend, Raw: []byte("again"), Key: "k1"})
	if out[0].Dup || out[0].Offset != 13 {
		t.Fatalf("after the window: %+v", out)
	}
	// Time: the first offset at or after a moment.
	st = l.state()
	if o := l.offsetAt(time.Unix(1009, 0).UnixNano(), &st); o != 11 {
		t.Fatalf("offsetAt: %d", o)
	}
	// Age and bytes retention.
	a.do(Retention{Age: time.Minute}, command{Op: opTrim})
	if st := l.state(); st.First != 13 || st.Bytes != 5 {
		t.Fatalf("age retention: %+v", st)
	}
	a.do(Retention{Bytes: 6}, command{Op: opAppend, Raw: []byte("xyz")})
	if st := l.state(); st.First != 14 || st.Bytes != 3 {
		t.Fatalf("bytes retention: %+v", st)
	}
}

func TestLogConsumers(t *testing.T) {
	l := memLog(t, nil)
	a := &applier{t: t, l: l, now: time.Unix(1000, 0)}
	for range 9 { // offsets 1 to 9
		a.do(Retention{Count: 100}, command{Op: opAppend, Raw: []byte("m")})
	}
	wait := int64(10 * time.Second)
	out := a.do(Retention{}, command{Op: opFetch, Consumer: "c", Worker: "w1", Max: 4, Wait: wait, From: 1, FromOff: 2},
		command{Op: opFetch, Consumer: "c", Worker: "w2", Max: 4, Wait: wait})
	if fmt.Sprint(out[0].Offsets) != "[2 3 4 5]" || fmt.Sprint(out[1].Offsets) != "[6 7 8 9]" {
		t.Fatalf("fetch: %+v", out)
	}
	a.do(Retention{}, command{Op: opAck, Consumer: "c", Offsets: []uint64{2, 3, 6}})
	if c, _ := l.consumer("c"); c.acked() != 4 || len(c.Pending) != 5 {
		t.Fatalf("after acks: acked %d, pending %d", c.acked(), len(c.Pending))
	}
	// Before the deadline nothing goes to another worker.
	if out := a.do(Retention{}, command{Op: opFetch, Consumer: "c", Worker: "w3", Max: 10, Wait: wait}); len(out[0].Offsets) != 0 {
		t.Fatalf("fetch before any deadline: %v", out[0].Offsets)
	}
	a.now = a.now.Add(11 * time.Second)
	out = a.do(Retention{}, command{Op: opFetch, Consumer: "c", Worker: "w3", Max: 10, Wait: wait})
	if fmt.Sprint(out[0].Offsets) != "[4 5 7 8 9]" {
		t.Fatalf("fetch after the deadlines: %v", out[0].Offsets)
	}
	// Release hands w3's messages back at once.
	a.do(Retention{}, command{Op: opRelease, Consumer: "c", Worker: "w3"})
	out = a.do(Retention{}, command{Op: opFetch, Consumer: "c", Worker: "w4", Max: 2, Wait: wait})
	if fmt.Sprint(out[0].Offsets) != "[4 5]" {
		t.Fatalf("fetch after a release: %v", out[0].Offsets)
	}
	// The state survives a reopen from disk.
	l2, err := openLog(l.db, "topic.test")
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := l2.consumer("c"); c.acked() != 4 || c.Next != 10 || len(c.Pending) != 5 {
		t.Fatalf("reopened consumer: %+v", c)
	}
	// A consumer behind the retention lags, once, then goes on.
	for range 200 {
		a.do(Retention{Count: 100}, command{Op: opAppend, Raw: []byte("m")})
	}
	out = a.do(Retention{Count: 100}, command{Op: opFetch, Consumer: "c", Worker: "w1", Max: 1, Wait: wait})
	if !out[0].Lagged || out[0].Asked != 4 || out[0].First != 110 {
		t.Fatalf("lagging consumer: %+v", out[0])
	}
	out = a.do(Retention{Count: 100}, command{Op: opFetch, Consumer: "c", Worker: "w1", Max: 1, Wait: wait})
	if out[0].Lagged || fmt.Sprint(out[0].Offsets) != "[110]" {
		t.Fatalf("after the lag: %+v", out[0])
	}
}

// TestLogSnapshot: a log streams out and into another node's store, and
// a restore that finds the log at or past the snapshot keeps it.
func TestLogSnapshot(t *testing.T) {
	src := memLog(t, nil)
	a := &applier{t: t, l: src, now: time.Unix(1000, 0)}
	for i := range 50 {
		a.do(Retention{Count: 40}, command{Op: opAppend, Raw: bytes.Repeat([]byte{byte(i)}, 1000), Key: fmt.Sprint(i)})
	}
	a.do(Retention{}, command{Op: opFetch, Consumer: "c", Worker: "w", Max: 3, Wait: 1, From: 1, FromOff: 11})
	write, release, err := src.SnapshotTo()
	if err != nil {
		t.Fatal(err)
	}
	// Applies go on while the snapshot streams.
	a.do(Retention{Count: 40}, command{Op: opAppend, Raw: []byte("later")})
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	release()
	dst := memLog(t, nil)
	if err := dst.RestoreFrom(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if st := dst.state(); st.Next != 51 || st.First != 11 || st.Index != 51 {
		t.Fatalf("restored state %+v", st)
	}
	if c, ok := dst.consumer("c"); !ok || len(c.Pending) != 3 {
		t.Fatalf("restored consumer %+v", c)
	}
	msgs, _, _ := dst.read(50, 5, 1<<20)
	if len(msgs) != 1 || msgs[0].Raw[0] != 49 {
		t.Fatalf("restored messages %+v", msgs)
	}
	// The source, past the snapshot, keeps its own state.
	if err := src.RestoreFrom(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if st := src.state(); st.Next != 52 {
		t.Fatalf("a log past the snapshot was replaced: %+v", st)
	}
	// A truncated snapshot fails.
	if err := memLog(t, nil).RestoreFrom(io.LimitReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()/2))); err == nil {
		t.Fatal("a truncated snapshot restored")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	b, _ := wire.Marshal(batch{Time: 1, Retain: Retention{Count: 3}, Cmds: []command{{Op: opAppend, Raw: []byte("x"), Key: "k"}, {Op: opFetch, Consumer: "c", Max: 3}}})
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		bt, err := decodeBatch(in)
		if err != nil {
			return
		}
		// Whatever decodes applies without a panic.
		l := memLog(t, nil)
		out, err := l.ApplyAt(1, in)
		if err == nil && len(bt.Cmds) > 0 && len(out) == 0 {
			t.Fatal("no result")
		}
	})
}

func FuzzDecodeConsumer(f *testing.F) {
	b, _ := wire.Marshal(consumerState{Name: "c", Next: 3, Pending: []pending{{Off: 1, Worker: "w", Deadline: 5, Count: 1}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := decodeConsumer(in)
		if err == nil {
			c.acked()
		}
	})
}

func FuzzRestoreLog(f *testing.F) {
	src := memLog(f, nil)
	a := &applier{t: f, l: src, now: time.Unix(1000, 0)}
	a.do(Retention{Count: 4}, command{Op: opAppend, Raw: []byte("m"), Key: "k"})
	write, release, _ := src.SnapshotTo()
	var buf bytes.Buffer
	write(&buf)
	release()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		l := memLog(t, nil)
		if err := l.RestoreFrom(bytes.NewReader(in)); err != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
	})
}

// FuzzCalls decodes arbitrary bytes as each call's input, as the remote
// layer does for a holder, and runs the checks a holder makes before it
// touches its log: none may panic.
func FuzzCalls(f *testing.F) {
	for _, v := range []any{
		pubReq{Topic: "a/b", Msgs: []pubItem{{Raw: []byte("x"), Nonce: "n"}}, Config: []byte{1}},
		fetchReq{Topic: "a/b", Consumer: "c", Worker: "w", Max: 3, AckWait: 5},
		ackReq{Topic: "a/b", Consumer: "c", Offsets: []uint64{1, 2}},
		readReq{Topic: "a/b", From: 3, Kind: 1, Time: 7, Max: 9, Wait: 10},
		moveReq{Topic: "a/b", Holders: []string{"x"}},
	} {
		b, _ := wire.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var p pubReq
		if wire.Unmarshal(in, &p) == nil {
			for _, m := range p.Msgs {
				openMessage(m.Raw)
			}
			SplitID(p.Topic)
		}
		var fr fetchReq
		wire.Unmarshal(in, &fr)
		var ar ackReq
		wire.Unmarshal(in, &ar)
		var rr readReq
		wire.Unmarshal(in, &rr)
		var mr moveReq
		wire.Unmarshal(in, &mr)
		var a pubAck
		if wire.Unmarshal(in, &a) == nil {
			a.err()
		}
	})
}
