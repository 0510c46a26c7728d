package topic

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wire"
)

// The log of a durable topic is a group.DiskMachine: every holder applies
// the same batches of commands in the same order to a Pebble database
// under Config.Dir, one per node, where each topic's keys sit behind its
// group's name:
//
//	PREFIX 's'                  the log's state (logState)
//	PREFIX 'm' OFFSET           a message: its time (8 bytes) and envelope
//	PREFIX 'i' KEY              a publish ID seen: its offset and time
//	PREFIX 'e' TIME KEY         the same, by time, to forget it
//	PREFIX 'c' NAME             a durable consumer (consumerState)
//
// Offsets and times are big-endian, so keys sort in log order.

// Operations of a log command.
const (
	opAppend  = iota + 1 // store Raw, unless Key was seen in the window
	opFetch              // hand Worker up to Max messages of Consumer
	opAck                // Consumer's Offsets are handled
	opRelease            // Worker's messages go back to Consumer's queue
	opTrim               // apply the age retention at the batch's time
	opDropConsumer
)

// command is one operation in a batch.
type command struct {
	Op       uint8    `cbor:"1,keyasint"`
	Raw      []byte   `cbor:"2,keyasint,omitempty"` // append: the signed envelope
	Key      string   `cbor:"3,keyasint,omitempty"` // append: the dedup key
	Consumer string   `cbor:"4,keyasint,omitempty"`
	Worker   string   `cbor:"5,keyasint,omitempty"`
	Max      int      `cbor:"6,keyasint,omitempty"`
	Wait     int64    `cbor:"7,keyasint,omitempty"` // ack wait, ns
	Offsets  []uint64 `cbor:"8,keyasint,omitempty"`
	From     uint8    `cbor:"9,keyasint,omitempty"` // a new consumer's start: 0 newest, 1 offset, 2 time
	FromOff  uint64   `cbor:"10,keyasint,omitempty"`
	FromTime int64    `cbor:"11,keyasint,omitempty"`
}

// batch is one raft entry: commands gathered by one holder, stamped with
// its clock (the log's time never goes back: see logState.Time) and the
// topic's retention.
type batch struct {
	Time   int64     `cbor:"1,keyasint"`
	Retain Retention `cbor:"2,keyasint,omitempty"`
	Cmds   []command `cbor:"3,keyasint"`
}

// outcome is a command's result.
type outcome struct {
	Offset  uint64   `cbor:"1,keyasint,omitempty"` // append
	Dup     bool     `cbor:"2,keyasint,omitempty"`
	Offsets []uint64 `cbor:"3,keyasint,omitempty"` // fetch: handed to the worker
	Lagged  bool     `cbor:"4,keyasint,omitempty"` // fetch: the consumer was behind the retention
	Asked   uint64   `cbor:"5,keyasint,omitempty"`
	First   uint64   `cbor:"6,keyasint,omitempty"`
	Err     string   `cbor:"7,keyasint,omitempty"`
	Stored  bool     `cbor:"8,keyasint,omitempty"` // the command was applied (not a replay)
}

type batchResult struct {
	Out []outcome `cbor:"1,keyasint"`
}

// Bounds of what the log takes.
const (
	// maxBatch caps a batch's encoding; one message over it goes alone.
	maxBatch = 256 << 10
	// maxCommands caps the commands of a batch.
	maxCommands = 4096
	// maxPending caps a consumer's messages handed out and not acked.
	maxPending = 4096
	// maxFetch caps the messages one fetch hands out.
	maxFetch = 512
	// maxConsumerName caps a consumer's name.
	maxConsumerName = 128
	// maxConsumers caps a topic's durable consumers.
	maxConsumers = 1024
	// maxAckWait caps a consumer's ack wait: a worker that asks for
	// longer gets this.
	maxAckWait = int64(12 * time.Hour)
	// maxCommandBytes caps one encoded batch as the log decodes it: the
	// batcher gathers while under maxBatch, then takes one more command,
	// which may be a whole envelope.
	maxCommandBytes = maxBatch + MaxEnvelope + 64<<10
)

// A batch the batcher gathers must fit one of the group's entries.
var _ [group.MaxValue - maxCommandBytes]struct{}

// DedupWindow is how long a durable topic remembers a publish ID: a
// publish whose ID it stored within the last DedupWindow (by the log's
// clock) is stored once.
const DedupWindow = 2 * time.Minute

// decodeBatch decodes a raft entry's command, with its caps.
func decodeBatch(b []byte) (batch, error) {
	var bt batch
	if len(b) > max(maxCommandBytes, maxBatch) {
		return bt, fmt.Errorf("%w: batch of %d bytes", ErrBadMessage, len(b))
	}
	if err := wire.Unmarshal(b, &bt); err != nil {
		return bt, fmt.Errorf("%w: batch: %v", ErrBadMessage, err)
	}
	if len(bt.Cmds) > maxCommands {
		return bt, fmt.Errorf("%w: batch of %d commands", ErrBadMessage, len(bt.Cmds))
	}
	if bt.Retain.Count < 0 || bt.Retain.Bytes < 0 || bt.Retain.Age < 0 {
		return bt, fmt.Errorf("%w: negative retention", ErrBadMessage)
	}
	// A command out of bounds fails alone, when it is applied (see
	// checkCommand): refusing the entry would fail every honest command
	// gathered beside it.
	return bt, nil
}

// checkCommand says why the log refuses c, or nil.
func checkCommand(c *command) error {
	if len(c.Consumer) > maxConsumerName || len(c.Worker) > maxConsumerName || len(c.Key) > MaxIDLen+128 ||
		len(c.Offsets) > maxPending || c.Max < 0 || c.Wait < 0 {
		return fmt.Errorf("%w: command out of bounds", ErrBadMessage)
	}
	return nil
}

// logState is a log's own record.
type logState struct {
	Index uint64 `cbor:"1,keyasint"` // raft index last applied
	First uint64 `cbor:"2,keyasint"` // first offset held
	Next  uint64 `cbor:"3,keyasint"` // offset of the next message
	Bytes int64  `cbor:"4,keyasint"`
	Time  int64  `cbor:"5,keyasint"` // the log's clock: the newest batch's time, never going back
}

// consumerState is a durable consumer on the holders.
type consumerState struct {
	Name    string    `cbor:"1,keyasint"`
	Next    uint64    `cbor:"2,keyasint"` // the next offset never handed out
	Pending []pending `cbor:"3,keyasint,omitempty"`
}

// pending is a message handed to a worker and not acknowledged.
type pending struct {
	Off      uint64 `cbor:"1,keyasint"`
	Worker   string `cbor:"2,keyasint"`
	Deadline int64  `cbor:"3,keyasint"`
	Count    uint32 `cbor:"4,keyasint"` // deliveries
}

// acked is the consumer's floor: every offset below it is acknowledged.
func (c *consumerState) acked() uint64 {
	if len(c.Pending) > 0 {
		return min(c.Pending[0].Off, c.Next)
	}
	return c.Next
}

// maxConsumerBytes caps a consumer's encoding.
const maxConsumerBytes = maxPending*(maxConsumerName+32) + 1024

func decodeConsumer(b []byte) (consumerState, error) {
	var c consumerState
	if len(b) > maxConsumerBytes {
		return c, fmt.Errorf("%w: consumer of %d bytes", ErrBadMessage, len(b))
	}
	if err := wire.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: consumer: %v", ErrBadMessage, err)
	}
	if len(c.Pending) > maxPending {
		return c, fmt.Errorf("%w: consumer with %d pending", ErrBadMessage, len(c.Pending))
	}
	return c, nil
}

// topicLog is one durable topic's state machine on this node.
type topicLog struct {
	db     *pebble.DB
	prefix []byte

	mu        sync.Mutex
	st        logState
	consumers map[string]*consumerState
	changed   chan struct{} // closed and replaced at each apply
	// fresh are the publish IDs the batch being applied stored, by
	// dedup key (the batch is not indexed: reading it back is slow).
	fresh map[string]uint64
	// recent answers most dedup lookups in memory (recent.go).
	recent *recentKeys
}

func openLog(db *pebble.DB, group string) (*topicLog, error) {
	l := &topicLog{db: db, prefix: append([]byte("t/"+group), 0), consumers: map[string]*consumerState{}, changed: make(chan struct{}), fresh: map[string]uint64{}}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *topicLog) key(kind byte, rest ...[]byte) []byte {
	k := append(append([]byte{}, l.prefix...), kind)
	for _, r := range rest {
		k = append(k, r...)
	}
	return k
}

func be(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func (l *topicLog) msgKey(off uint64) []byte { return l.key('m', be(off)) }

// load reads the state and the consumers from disk.
func (l *topicLog) load() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = logState{First: 1, Next: 1} // offsets count from 1: 0 is "none"
	l.consumers = map[string]*consumerState{}
	defer func() { l.recent = newRecentKeys(l.st.Time) }()
	v, closer, err := l.db.Get(l.key('s'))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		err = wire.Unmarshal(v, &l.st)
		closer.Close()
		if err != nil {
			return fmt.Errorf("topic log state: %w", err)
		}
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: l.key('c'), UpperBound: l.key('d')})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		c, err := decodeConsumer(it.Value())
		if err != nil {
			return err
		}
		l.consumers[c.Name] = &c
	}
	return it.Error()
}

// state returns the log's state.
func (l *topicLog) state() logState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// next returns a channel closed at the next apply.
func (l *topicLog) next() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// consumer returns a copy of consumer name's state.
func (l *topicLog) consumer(name string) (consumerState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.consumers[name]
	if !ok {
		return consumerState{}, false
	}
	cp := *c
	cp.Pending = slices.Clone(c.Pending)
	return cp, true
}

func (l *topicLog) consumerInfos() []ConsumerInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ConsumerInfo
	for _, c := range l.consumers {
		a := c.acked()
		out = append(out, ConsumerInfo{Name: c.Name, Acked: a, Pending: len(c.Pending), Lag: l.st.Next - min(a, l.st.Next)})
	}
	slices.SortFunc(out, func(a, b ConsumerInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Apply and the other StateMachine methods are not used: the group calls
// ApplyAt, SnapshotTo and RestoreFrom of a DiskMachine.
func (l *topicLog) Apply([]byte) ([]byte, error) { return nil, errors.New("topic log: ApplyAt only") }
func (l *topicLog) Snapshot() ([]byte, error)    { return nil, errors.New("topic log: SnapshotTo only") }
func (l *topicLog) Restore([]byte) error         { return errors.New("topic log: RestoreFrom only") }

// ApplyAt applies the batch at raft index i.
func (l *topicLog) ApplyAt(i uint64, cmd []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i <= l.st.Index {
		// A replay after a restart: applied already, kept on disk.
		return nil, nil
	}
	bt, err := decodeBatch(cmd)
	if err != nil {
		return nil, err
	}
	wb := l.db.NewBatch()
	clear(l.fresh)
	defer wb.Close()
	st := l.st
	st.Index = i
	st.Time = max(st.Time, bt.Time)
	res := batchResult{Out: make([]outcome, len(bt.Cmds))}
	touched := map[string]bool{}
	for k, c := range bt.Cmds {
		res.Out[k] = l.apply(wb, &st, &c, touched)
		res.Out[k].Stored = true
	}
	if err := l.trim(wb, &st, bt.Retain, touched); err != nil {
		return nil, err
	}
	if err := l.forget(wb, st.Time); err != nil {
		return nil, err
	}
	for name := range touched {
		c := l.consumers[name]
		if c == nil {
			wb.Delete(l.key('c', []byte(name)), nil)
			continue
		}
		b, err := wire.Marshal(c)
		if err != nil {
			return nil, err
		}
		wb.Set(l.key('c', []byte(name)), b, nil)
	}
	sb, err := wire.Marshal(st)
	if err != nil {
		return nil, err
	}
	wb.Set(l.key('s'), sb, nil)
	// Not synced: raft's log is, and a restart replays what this batch
	// lost (the state's index says where it stopped).
	if err := wb.Commit(pebble.NoSync); err != nil {
		return nil, fmt.Errorf("topic log: %w", err)
	}
	l.st = st
	close(l.changed)
	l.changed = make(chan struct{})
	return wire.Marshal(res)
}

// apply applies one command; l.mu is held.
func (l *topicLog) apply(wb *pebble.Batch, st *logState, c *command, touched map[string]bool) outcome {
	if err := checkCommand(c); err != nil {
		return outcome{Err: err.Error()}
	}
	switch c.Op {
	case opAppend:
		if c.Key != "" {
			if off, ok := l.seen(c.Key, st.Time); ok {
				return outcome{Offset: off, Dup: true}
			}
		}
		off := st.Next
		// Written in place in the batch: the envelope is copied once.
		op := wb.SetDeferred(len(l.prefix)+9, 8+len(c.Raw))
		copy(op.Key, l.prefix)
		op.Key[len(l.prefix)] = 'm'
		binary.BigEndian.PutUint64(op.Key[len(l.prefix)+1:], off)
		binary.BigEndian.PutUint64(op.Value, uint64(st.Time))
		copy(op.Value[8:], c.Raw)
		if err := op.Finish(); err != nil {
			return outcome{Err: err.Error()}
		}
		st.Next++
		st.Bytes += int64(len(c.Raw))
		if c.Key != "" {
			l.fresh[c.Key] = off
			l.recent.add(c.Key, st.Time)
			wb.Set(l.key('i', []byte(c.Key)), append(be(off), be(uint64(st.Time))...), nil)
			wb.Set(l.key('e', be(uint64(st.Time)), []byte(c.Key)), nil, nil)
		}
		return outcome{Offset: off}
	case opFetch:
		return l.fetch(wb, st, c, touched)
	case opAck:
		cs := l.consumers[c.Consumer]
		if cs == nil {
			return outcome{Err: "no consumer " + c.Consumer}
		}
		cs.Pending = removeAcked(cs.Pending, c.Offsets)
		touched[c.Consumer] = true
		return outcome{}
	case opRelease:
		if cs := l.consumers[c.Consumer]; cs != nil {
			for k := range cs.Pending {
				if cs.Pending[k].Worker == c.Worker {
					cs.Pending[k].Deadline = 0
				}
			}
			touched[c.Consumer] = true
		}
		return outcome{}
	case opTrim:
		return outcome{}
	case opDropConsumer:
		if l.consumers[c.Consumer] != nil {
			delete(l.consumers, c.Consumer)
			touched[c.Consumer] = true
		}
		return outcome{}
	}
	return outcome{Err: fmt.Sprintf("unknown operation %d", c.Op)}
}

// removeAcked drops the offsets acked from pending, in O((p+a) log a):
// an ack of many offsets against many pending ones costs no product.
func removeAcked(ps []pending, acked []uint64) []pending {
	if len(acked) == 0 {
		return ps
	}
	sorted := slices.Clone(acked)
	slices.Sort(sorted)
	return slices.DeleteFunc(ps, func(p pending) bool {
		_, ok := slices.BinarySearch(sorted, p.Off)
		return ok
	})
}

// seen looks key up in the dedup window; l.mu is held. The batch's own
// writes count (a repeat within one batch).
func (l *topicLog) seen(key string, now int64) (uint64, bool) {
	if off, ok := l.fresh[key]; ok {
		return off, true
	}
	if l.recent.absent(key, now) {
		return 0, false
	}
	v, closer, err := l.db.Get(l.key('i', []byte(key)))
	if err != nil {
		return 0, false
	}
	defer closer.Close()
	if len(v) != 16 {
		return 0, false
	}
	if int64(binary.BigEndian.Uint64(v[8:])) < now-int64(DedupWindow) {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// forget drops the publish IDs older than the dedup window.
func (l *topicLog) forget(wb *pebble.Batch, now int64) error {
	cut := now - int64(DedupWindow)
	if cut <= 0 {
		return nil
	}
	lo, hi := l.key('e'), l.key('e', be(uint64(cut)))
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid() && n < 4*maxCommands; it.Next() {
		k := it.Key()
		key := k[len(lo)+8:]
		ik := l.key('i', key)
		// A key this batch stored again is newer than the cut.
		if _, ok := l.fresh[string(key)]; !ok && l.older(ik, cut) {
			wb.Delete(ik, nil)
		}
		wb.Delete(k, nil)
		n++
	}
	return it.Error()
}

// older reports whether the publish ID at ik was stored before cut.
func (l *topicLog) older(ik []byte, cut int64) bool {
	v, closer, err := l.db.Get(ik)
	if err != nil {
		return false
	}
	defer closer.Close()
	return len(v) == 16 && int64(binary.BigEndian.Uint64(v[8:])) < cut
}

// trim drops the oldest messages past the retention; l.mu is held.
func (l *topicLog) trim(wb *pebble.Batch, st *logState, r Retention, touched map[string]bool) error {
	if !r.Durable() || st.First >= st.Next {
		return nil
	}
	over := func(t int64) bool {
		return r.Count > 0 && int64(st.Next-st.First) > r.Count ||
			r.Bytes > 0 && st.Bytes > r.Bytes ||
			r.Age > 0 && t < st.Time-int64(r.Age)
	}
	// A message's time is read only when the age bound needs it.
	if !(r.Count > 0 && int64(st.Next-st.First) > r.Count || r.Bytes > 0 && st.Bytes > r.Bytes || r.Age > 0) {
		return nil
	}
	first := st.First
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: l.msgKey(first), UpperBound: l.msgKey(st.Next)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid() && st.First < st.Next; it.Next() {
		v := it.Value()
		if len(v) < 8 || !over(int64(binary.BigEndian.Uint64(v))) {
			break
		}
		st.Bytes -= int64(len(v) - 8)
		st.First++
	}
	if err := it.Error(); err != nil {
		return err
	}
	if st.First > first {
		wb.DeleteRange(l.msgKey(first), l.msgKey(st.First), nil)
	}
	return nil
}

// fetch hands a worker messages of a consumer; l.mu is held.
func (l *topicLog) fetch(wb *pebble.Batch, st *logState, c *command, touched map[string]bool) outcome {
	cs := l.consumers[c.Consumer]
	if cs == nil {
		if len(l.consumers) >= maxConsumers {
			return outcome{Err: fmt.Sprintf("the topic has %d consumers, the most it keeps", maxConsumers)}
		}
		cs = &consumerState{Name: c.Consumer, Next: st.Next}
		switch c.From {
		case 1:
			cs.Next = c.FromOff
			if c.FromOff == 0 {
				cs.Next = st.First // FromOffset(0): the first held
			}
		case 2:
			cs.Next = l.offsetAt(c.FromTime, st)
		}
		l.consumers[c.Consumer] = cs
	}
	touched[c.Consumer] = true
	var out outcome
	if cs.Next < st.First || len(cs.Pending) > 0 && cs.Pending[0].Off < st.First {
		out = outcome{Lagged: true, Asked: cs.acked(), First: st.First}
		cs.Next = max(cs.Next, st.First)
		cs.Pending = slices.DeleteFunc(cs.Pending, func(p pending) bool { return p.Off < st.First })
		return out
	}
	if cs.Next > st.Next {
		cs.Next = st.Next // an offset not yet written: start at the end
	}
	n := min(c.Max, maxFetch)
	for k := range cs.Pending {
		if len(out.Offsets) >= n {
			break
		}
		if p := &cs.Pending[k]; p.Deadline <= st.Time {
			p.Worker, p.Deadline, p.Count = c.Worker, deadline(st.Time, c.Wait), p.Count+1
			out.Offsets = append(out.Offsets, p.Off)
		}
	}
	for len(out.Offsets) < n && cs.Next < st.Next && len(cs.Pending) < maxPending {
		cs.Pending = append(cs.Pending, pending{Off: cs.Next, Worker: c.Worker, Deadline: deadline(st.Time, c.Wait), Count: 1})
		out.Offsets = append(out.Offsets, cs.Next)
		cs.Next++
	}
	slices.Sort(out.Offsets)
	return out
}

// deadline is now plus an ack wait, the wait capped at maxAckWait and
// the sum saturated: a deadline that wrapped negative would hand the
// message to a second worker at once.
func deadline(now, wait int64) int64 {
	wait = min(max(wait, 0), maxAckWait)
	if now > math.MaxInt64-wait {
		return math.MaxInt64
	}
	return now + wait
}

// offsetAt is the first offset stored at or after time t (st.Next if
// none); l.mu is held or st is l.st's copy.
func (l *topicLog) offsetAt(t int64, st *logState) uint64 {
	lo, hi := st.First, st.Next
	for lo < hi {
		mid := lo + (hi-lo)/2
		mt, ok := l.timeOf(mid)
		if !ok || mt >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func (l *topicLog) timeOf(off uint64) (int64, bool) {
	v, closer, err := l.db.Get(l.msgKey(off))
	if err != nil {
		return 0, false
	}
	defer closer.Close()
	if len(v) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v)), true
}

// stored is a message as the log keeps it.
type stored struct {
	Offset uint64 `cbor:"1,keyasint"`
	Time   int64  `cbor:"2,keyasint"`
	Raw    []byte `cbor:"3,keyasint"`
}

// read returns up to n messages (and about maxBytes) from offset from,
// and the state they were read at.
func (l *topicLog) read(from uint64, n int, maxBytes int) ([]stored, logState, error) {
	st := l.state()
	if from < st.First || from >= st.Next {
		return nil, st, nil
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: l.msgKey(from), UpperBound: l.msgKey(st.Next)})
	if err != nil {
		return nil, st, err
	}
	defer it.Close()
	var out []stored
	size := 0
	for it.First(); it.Valid() && len(out) < n && (size < maxBytes || len(out) == 0); it.Next() {
		k, v := it.Key(), it.Value()
		if len(v) < 8 {
			return nil, st, fmt.Errorf("topic log: message of %d bytes", len(v))
		}
		out = append(out, stored{Offset: binary.BigEndian.Uint64(k[len(k)-8:]), Time: int64(binary.BigEndian.Uint64(v)), Raw: slices.Clone(v[8:])})
		size += len(v)
	}
	return out, st, it.Error()
}

// readOffsets returns the messages at offs (those still held).
func (l *topicLog) readOffsets(offs []uint64) ([]stored, error) {
	var out []stored
	for _, o := range offs {
		v, closer, err := l.db.Get(l.msgKey(o))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(v) >= 8 {
			out = append(out, stored{Offset: o, Time: int64(binary.BigEndian.Uint64(v)), Raw: slices.Clone(v[8:])})
		}
		closer.Close()
	}
	return out, nil
}

// drop deletes everything the log keeps.
func (l *topicLog) drop() error {
	hi := append([]byte{}, l.prefix...)
	hi[len(hi)-1] = 1
	return l.db.DeleteRange(l.prefix, hi, pebble.Sync)
}

// The snapshot is the log's keys and values, as frames of (key, value)
// pairs, from a Pebble snapshot taken between applies.
type snapPair struct {
	K []byte `cbor:"1,keyasint"`
	V []byte `cbor:"2,keyasint"`
}

// maxSnapPair caps one pair of a snapshot.
const maxSnapPair = MaxEnvelope + 1024

// SnapshotTo takes a Pebble snapshot of the log, to stream later.
func (l *topicLog) SnapshotTo() (func(io.Writer) error, func(), error) {
	l.mu.Lock()
	snap := l.db.NewSnapshot()
	l.mu.Unlock()
	var once sync.Once
	release := func() { once.Do(func() { snap.Close() }) }
	write := func(w io.Writer) error {
		hi := append([]byte{}, l.prefix...)
		hi[len(hi)-1] = 1
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: l.prefix, UpperBound: hi})
		if err != nil {
			return err
		}
		defer it.Close()
		var buf []byte
		put := func(k, v []byte) error {
			b, err := wire.Marshal(snapPair{K: k, V: v})
			if err != nil {
				return err
			}
			buf = wire.AppendFrame(buf[:0], b)
			_, err = w.Write(buf)
			return err
		}
		// The state first: a restore that finds its own log at or past
		// it stops there, without reading the rest.
		state := l.key('s')
		v, closer, err := snap.Get(state)
		if err == nil {
			err = put([]byte{'s'}, v)
			closer.Close()
			if err != nil {
				return err
			}
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			if bytes.Equal(it.Key(), state) {
				continue
			}
			if err := put(it.Key()[len(l.prefix):], it.Value()); err != nil {
				return err
			}
		}
		return it.Error()
	}
	return write, release, nil
}

// RestoreFrom replaces the log with a snapshot's, unless the log on disk
// is at or past it (a restart, which restores its newest snapshot first).
func (l *topicLog) RestoreFrom(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var first snapPair
	err := wire.DecodeFrame(br, maxSnapPair, &first)
	if errors.Is(err, io.EOF) {
		return nil // an empty log's snapshot: nothing applied yet
	}
	if err != nil {
		return fmt.Errorf("topic log snapshot: %w", err)
	}
	// The state comes first: a log at or past it stays as it is (a
	// restart restores the newest snapshot before it replays the log).
	if len(first.K) == 1 && first.K[0] == 's' {
		var st logState
		if err := wire.Unmarshal(first.V, &st); err != nil {
			return fmt.Errorf("topic log snapshot state: %w", err)
		}
		if st.Index <= l.state().Index {
			return nil
		}
	}
	return l.reset(&first, br)
}

// reset rewrites the log from a snapshot's pairs (first, then the rest
// of br).
func (l *topicLog) reset(first *snapPair, br *bufio.Reader) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	hi := append([]byte{}, l.prefix...)
	hi[len(hi)-1] = 1
	// Write the snapshot beside the log under a scratch prefix, then
	// swap: if the snapshot turns out older than the log on disk, the
	// log stays.
	scratch := append(append([]byte{}, l.prefix[:len(l.prefix)-1]...), '~', 0)
	shi := append([]byte{}, scratch...)
	shi[len(shi)-1] = 1
	if err := l.db.DeleteRange(scratch, shi, pebble.NoSync); err != nil {
		return err
	}
	var snapState logState
	wb := l.db.NewBatch()
	put := func(p snapPair) error {
		if len(p.K) == 1 && p.K[0] == 's' {
			if err := wire.Unmarshal(p.V, &snapState); err != nil {
				return fmt.Errorf("topic log snapshot state: %w", err)
			}
		}
		wb.Set(append(append([]byte{}, scratch...), p.K...), p.V, nil)
		if wb.Len() > 4<<20 {
			if err := wb.Commit(pebble.NoSync); err != nil {
				return err
			}
			wb.Close()
			wb = l.db.NewBatch()
		}
		return nil
	}
	defer func() { wb.Close() }()
	if err := put(*first); err != nil {
		return err
	}
	{
		for {
			var p snapPair
			err := wire.DecodeFrame(br, maxSnapPair, &p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("topic log snapshot: %w", err)
			}
			if err := put(p); err != nil {
				return err
			}
		}
	}
	if err := wb.Commit(pebble.NoSync); err != nil {
		return err
	}
	defer l.db.DeleteRange(scratch, shi, pebble.NoSync)
	if snapState.Index <= l.st.Index {
		return nil // the log on disk is at or past the snapshot
	}
	// Swap: delete the log, copy the scratch keys in.
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: scratch, UpperBound: shi})
	if err != nil {
		return err
	}
	defer it.Close()
	cb := l.db.NewBatch()
	cb.DeleteRange(l.prefix, hi, nil)
	for it.First(); it.Valid(); it.Next() {
		cb.Set(append(append([]byte{}, l.prefix...), it.Key()[len(scratch):]...), it.Value(), nil)
		if cb.Len() > 4<<20 {
			if err := cb.Commit(pebble.NoSync); err != nil {
				cb.Close()
				return err
			}
			cb.Close()
			cb = l.db.NewBatch()
		}
	}
	if err := cb.Commit(pebble.Sync); err != nil {
		cb.Close()
		return err
	}
	cb.Close()
	l.mu.Unlock()
	err = l.load()
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	return err
}

func memFS() vfs.FS { return vfs.NewMem() }

// quietPebble drops Pebble's chatter; its fatal errors still stop it.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic("topic log store: " + fmt.Sprintf(format, args...))
}
