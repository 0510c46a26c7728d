package group

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/nubecloud/nube/internal/wire"
)

// Operations in the log.
const (
	opPut = iota + 1
	opDelete
	opCAS
	opLock
	opUnlock
	opApply
	opNoop // changes nothing: a leader's barrier
)

// command is one entry of a group's log. ID makes a write apply at most
// once: a retry of the same ID (after a leader change, say) gets the first
// result back. Time is the leader's clock when it proposed the entry; lock
// leases are judged by it, so every member judges alike.
type command struct {
	Op     uint8  `cbor:"1,keyasint"`
	ID     []byte `cbor:"2,keyasint,omitempty"`
	Time   int64  `cbor:"3,keyasint,omitempty"`
	Key    string `cbor:"4,keyasint,omitempty"`
	Value  []byte `cbor:"5,keyasint,omitempty"`
	Old    []byte `cbor:"6,keyasint,omitempty"`
	HasOld bool   `cbor:"7,keyasint,omitempty"` // CAS: the key must exist with value Old
	Holder string `cbor:"8,keyasint,omitempty"`
	TTL    int64  `cbor:"9,keyasint,omitempty"`
	Token  uint64 `cbor:"10,keyasint,omitempty"`
	Data   []byte `cbor:"11,keyasint,omitempty"`
}

// result is what applying a command gave.
type result struct {
	OK      bool   `cbor:"1,keyasint,omitempty"`
	Version uint64 `cbor:"2,keyasint,omitempty"`
	Token   uint64 `cbor:"3,keyasint,omitempty"`
	Holder  string `cbor:"4,keyasint,omitempty"`
	Expires int64  `cbor:"5,keyasint,omitempty"`
	Data    []byte `cbor:"6,keyasint,omitempty"`
	Err     string `cbor:"7,keyasint,omitempty"`
}

// StateMachine is a program's own replicated state, for Apply. Every member
// must open the group with the same kind of machine. Apply must be
// deterministic: the same commands in the same order give the same state
// and results on every member.
type StateMachine interface {
	// Apply applies one command and returns its result, or an error that
	// the caller of Group.Apply gets (the state must then be unchanged).
	Apply(cmd []byte) ([]byte, error)
	// Snapshot returns the whole state. It is called between Applies.
	Snapshot() ([]byte, error)
	// Restore replaces the state with one Snapshot returned.
	Restore(state []byte) error
}

// DiskMachine is a StateMachine whose state lives on disk and may be far
// larger than memory (a topic's log). The group hands it each entry's log
// index, so that it can keep, with its state, the index it applied last
// and skip what it applied already when raft replays its log at a
// restart; and its snapshots stream, never held whole in memory. The
// group calls ApplyAt, SnapshotTo and RestoreFrom instead of Apply,
// Snapshot and Restore.
type DiskMachine interface {
	StateMachine
	// ApplyAt applies the command at log index i, as Apply does. An
	// index at or below the last it stored comes again only in a replay,
	// and must change nothing.
	ApplyAt(i uint64, cmd []byte) ([]byte, error)
	// SnapshotTo is called between applies. It returns write, which
	// writes the state as of the call to w while applies go on, and
	// release, called once when the snapshot is written or abandoned.
	SnapshotTo() (write func(w io.Writer) error, release func(), err error)
	// RestoreFrom replaces the state with one a write wrote. It may keep
	// its own state instead if that is at or past the snapshot's (a
	// restart restores the newest snapshot before replaying the log).
	RestoreFrom(r io.Reader) error
}

// entry is a value in the map with the index of the write that set it.
type entry struct {
	Key     string `cbor:"1,keyasint"`
	Value   []byte `cbor:"2,keyasint,omitempty"`
	Version uint64 `cbor:"3,keyasint"`
}

// lease is a held lock.
type lease struct {
	Name    string `cbor:"1,keyasint"`
	Holder  string `cbor:"2,keyasint"`
	Token   uint64 `cbor:"3,keyasint"`
	Expires int64  `cbor:"4,keyasint"`
}

// done is a write already applied, kept to answer its retries.
type done struct {
	ID     []byte `cbor:"1,keyasint"`
	Result result `cbor:"2,keyasint"`
}

// dedupWindow is how many recent writes a group remembers by ID, and
// dedupBytes how many bytes of their results at most: the oldest are
// forgotten first. Every member forgets alike, as it applies alike.
const (
	dedupWindow = 1 << 14
	dedupBytes  = 16 << 20
)

// Change is one change to a group's map, as Watch yields it.
type Change struct {
	Key     string
	Value   []byte // nil when Deleted
	Deleted bool
	Version uint64 // the log index of the write
}

// fsm is the state every member applies the log to: the map, the locks,
// the recent write IDs and the program's machine.
type fsm struct {
	machine StateMachine
	writes  atomic.Uint64 // entries applied since the group opened here

	mu    sync.RWMutex
	kv    map[string]entry
	locks map[string]lease
	seen  map[string]result
	order [][]byte // seen's IDs, oldest first
	// seenBytes is the size of seen's IDs and results.
	seenBytes int
	changed   chan struct{} // closed and replaced whenever the state changes

	wmu      sync.Mutex
	watchers map[*watcher]struct{}

	// members is the last configuration applied, for quick membership
	// checks; nil until one is.
	members atomic.Pointer[map[string]bool]
	// index is the log index of the last entry applied here (not moved
	// by a snapshot's restore, which does not say its index).
	index atomic.Uint64

	emu     sync.Mutex
	expects map[string]chan result // results someone on this node waits for, by write ID
}

// expect returns a channel that gets the result of the write id when this
// member applies it, and a func to call when no longer waiting.
func (f *fsm) expect(id []byte) (<-chan result, func()) {
	ch := make(chan result, 1)
	f.emu.Lock()
	if f.expects == nil {
		f.expects = map[string]chan result{}
	}
	f.expects[string(id)] = ch
	f.emu.Unlock()
	return ch, func() {
		f.emu.Lock()
		delete(f.expects, string(id))
		f.emu.Unlock()
	}
}

// deliver hands r to whoever waits for the write id.
func (f *fsm) deliver(id []byte, r result) {
	f.emu.Lock()
	ch := f.expects[string(id)]
	delete(f.expects, string(id))
	f.emu.Unlock()
	if ch != nil {
		ch <- r // buffered, and sent to once
	}
}

// StoreConfiguration keeps the members of each configuration raft applies
// (raft's ConfigurationStore).
func (f *fsm) StoreConfiguration(_ uint64, c raft.Configuration) {
	m := make(map[string]bool, len(c.Servers))
	for _, s := range c.Servers {
		m[string(s.ID)] = true
	}
	f.members.Store(&m)
	f.mu.Lock()
	f.moved()
	f.mu.Unlock()
}

// member reports whether id is in the last configuration applied.
func (f *fsm) member(id string) bool {
	m := f.members.Load()
	return m != nil && (*m)[id]
}

func newFSM(m StateMachine) *fsm {
	return &fsm{machine: m, kv: map[string]entry{}, locks: map[string]lease{}, seen: map[string]result{},
		changed: make(chan struct{}), watchers: map[*watcher]struct{}{}}
}

// Apply applies one log entry.
func (f *fsm) Apply(l *raft.Log) any {
	f.writes.Add(1)
	var c command
	if err := wire.Unmarshal(l.Data, &c); err != nil {
		f.index.Store(l.Index)
		return result{Err: fmt.Sprintf("entry %d: %v", l.Index, err)}
	}
	f.mu.Lock()
	r, changes := f.apply(l.Index, &c)
	f.index.Store(l.Index)
	f.moved()
	f.mu.Unlock()
	if len(c.ID) > 0 {
		f.deliver(c.ID, r)
	}
	f.notify(changes)
	return r
}

// moved wakes those waiting for the state to change; f.mu is held.
func (f *fsm) moved() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// apply changes the state for c at index i; f.mu is held.
func (f *fsm) apply(i uint64, c *command) (result, []Change) {
	if len(c.ID) > 0 {
		if r, ok := f.seen[string(c.ID)]; ok {
			return r, nil
		}
	}
	var r result
	var changes []Change
	switch c.Op {
	case opPut:
		f.kv[c.Key] = entry{Key: c.Key, Value: c.Value, Version: i}
		r = result{OK: true, Version: i}
		changes = []Change{{Key: c.Key, Value: c.Value, Version: i}}
	case opDelete:
		if _, ok := f.kv[c.Key]; ok {
			delete(f.kv, c.Key)
			r.OK = true
			changes = []Change{{Key: c.Key, Deleted: true, Version: i}}
		}
		r.Version = i
	case opCAS:
		e, ok := f.kv[c.Key]
		if ok != c.HasOld || (ok && !bytes.Equal(e.Value, c.Old)) {
			r = result{Version: e.Version}
			break
		}
		f.kv[c.Key] = entry{Key: c.Key, Value: c.Value, Version: i}
		r = result{OK: true, Version: i}
		changes = []Change{{Key: c.Key, Value: c.Value, Version: i}}
	case opLock:
		l, held := f.locks[c.Key]
		expired := held && c.Time >= l.Expires
		switch {
		case held && !expired && l.Holder == c.Holder && (c.Token == 0 || c.Token == l.Token):
			l.Expires = c.Time + c.TTL // the holder again: renew
		case c.Token != 0:
			// A renewal of a lease that ended: its holder must learn it
			// lost the lock, not get it back.
			r = result{Holder: l.Holder, Token: l.Token, Expires: l.Expires}
			return f.finish(c, r), nil
		case !held || expired:
			l = lease{Name: c.Key, Holder: c.Holder, Token: i, Expires: c.Time + c.TTL}
		default:
			r = result{Holder: l.Holder, Token: l.Token, Expires: l.Expires}
			return f.finish(c, r), nil
		}
		f.locks[c.Key] = l
		r = result{OK: true, Holder: l.Holder, Token: l.Token, Expires: l.Expires}
	case opUnlock:
		if l, ok := f.locks[c.Key]; ok && l.Holder == c.Holder && l.Token == c.Token {
			delete(f.locks, c.Key)
			r.OK = true
		}
	case opNoop:
		r = result{OK: true, Version: i}
	case opApply:
		if f.machine == nil {
			r.Err = "the group has no state machine on this member"
			break
		}
		var out []byte
		var err error
		if dm, ok := f.machine.(DiskMachine); ok {
			out, err = dm.ApplyAt(i, c.Data)
		} else {
			out, err = f.machine.Apply(c.Data)
		}
		if err != nil {
			r.Err = err.Error()
		} else {
			r = result{OK: true, Data: out}
		}
	default:
		r.Err = fmt.Sprintf("unknown operation %d", c.Op)
	}
	return f.finish(c, r), changes
}

// finish remembers the result of a write with an ID.
func (f *fsm) finish(c *command, r result) result {
	if len(c.ID) > 0 {
		f.remember(c.ID, r)
	}
	return r
}

func (f *fsm) remember(id []byte, r result) {
	f.seen[string(id)] = r
	f.order = append(f.order, id)
	f.seenBytes += len(id) + len(r.Data) + len(r.Holder) + len(r.Err)
	for len(f.order) > dedupWindow || (len(f.order) > 1 && f.seenBytes > dedupBytes) {
		old := f.seen[string(f.order[0])]
		f.seenBytes -= len(f.order[0]) + len(old.Data) + len(old.Holder) + len(old.Err)
		delete(f.seen, string(f.order[0]))
		f.order = f.order[1:]
	}
}

// synced reports whether this member has applied the write id, or the
// entry at index (or any after it).
func (f *fsm) synced(id []byte, index uint64) bool {
	if f.index.Load() >= index {
		return true
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.seen[string(id)]
	return ok
}

// next returns a channel closed at the state's next change.
func (f *fsm) next() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.changed
}

func (f *fsm) get(key string) (entry, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	e, ok := f.kv[key]
	return e, ok
}

func (f *fsm) list(prefix string) []entry {
	f.mu.RLock()
	var out []entry
	for k, e := range f.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, e)
		}
	}
	f.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (f *fsm) lock(name string) (lease, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	l, ok := f.locks[name]
	return l, ok
}

// Snapshot copies the state for raft to persist while applying goes on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := &snapshot{kv: make([]entry, 0, len(f.kv)), locks: make([]lease, 0, len(f.locks))}
	for _, e := range f.kv {
		s.kv = append(s.kv, e)
	}
	for _, l := range f.locks {
		s.locks = append(s.locks, l)
	}
	for _, id := range f.order {
		s.seen = append(s.seen, done{ID: id, Result: f.seen[string(id)]})
	}
	if dm, ok := f.machine.(DiskMachine); ok {
		write, release, err := dm.SnapshotTo()
		if err != nil {
			return nil, fmt.Errorf("state machine snapshot: %w", err)
		}
		s.stream, s.release = write, release
	} else if f.machine != nil {
		st, err := f.machine.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("state machine snapshot: %w", err)
		}
		s.machine = st
	}
	return s, nil
}

// A snapshot is a stream of frames: a header with the counts, then each
// entry, lease and remembered write, then the machine's state in chunks.
type snapHeader struct {
	Entries int `cbor:"1,keyasint"`
	Locks   int `cbor:"2,keyasint"`
	Seen    int `cbor:"3,keyasint"`
	Machine int `cbor:"4,keyasint"` // bytes of machine state
	// Stream says a DiskMachine's state follows instead, in frames of at
	// most snapshotChunk bytes that an empty frame ends.
	Stream bool `cbor:"5,keyasint,omitempty"`
}

type snapshot struct {
	kv      []entry
	locks   []lease
	seen    []done
	machine []byte
	stream  func(io.Writer) error // a DiskMachine's state
	release func()
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriterSize(sink, 64<<10)
	var buf []byte
	put := func(v any) error {
		b, err := wire.Marshal(v)
		if err != nil {
			return err
		}
		buf = wire.AppendFrame(buf[:0], b)
		_, err = w.Write(buf)
		return err
	}
	err := put(snapHeader{Entries: len(s.kv), Locks: len(s.locks), Seen: len(s.seen), Machine: len(s.machine), Stream: s.stream != nil})
	for i := 0; err == nil && i < len(s.kv); i++ {
		err = put(s.kv[i])
	}
	for i := 0; err == nil && i < len(s.locks); i++ {
		err = put(s.locks[i])
	}
	for i := 0; err == nil && i < len(s.seen); i++ {
		err = put(s.seen[i])
	}
	for m := s.machine; err == nil && len(m) > 0; {
		n := min(len(m), snapshotChunk)
		err = put(m[:n])
		m = m[n:]
	}
	if err == nil && s.stream != nil {
		mw := &machineWriter{w: w}
		if err = s.stream(mw); err == nil {
			err = mw.end()
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// machineWriter writes a DiskMachine's state as frames of at most
// snapshotChunk bytes; end writes the empty frame that ends them.
type machineWriter struct {
	w   io.Writer
	buf []byte
	fr  []byte
}

func (c *machineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), snapshotChunk-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == snapshotChunk {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (c *machineWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	b, err := wire.Marshal(c.buf)
	if err != nil {
		return err
	}
	c.fr = wire.AppendFrame(c.fr[:0], b)
	c.buf = c.buf[:0]
	_, err = c.w.Write(c.fr)
	return err
}

func (c *machineWriter) end() error {
	if err := c.flush(); err != nil {
		return err
	}
	b, err := wire.Marshal([]byte{})
	if err != nil {
		return err
	}
	_, err = c.w.Write(wire.AppendFrame(nil, b))
	return err
}

// machineReader reads what a machineWriter wrote, up to its empty frame.
type machineReader struct {
	r    *bufio.Reader
	buf  []byte
	done bool
}

func (c *machineReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		var chunk []byte
		if err := wire.DecodeFrame(c.r, snapshotChunk+16, &chunk); err != nil {
			return 0, fmt.Errorf("snapshot machine state: %w", err)
		}
		if len(chunk) > snapshotChunk {
			return 0, fmt.Errorf("%w: machine chunk of %d bytes", ErrMalformed, len(chunk))
		}
		c.buf, c.done = chunk, len(chunk) == 0
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

// Restore replaces the state with a snapshot's.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	r := bufio.NewReaderSize(rc, 64<<10)
	var h snapHeader
	if err := wire.DecodeFrame(r, maxHelloFrame, &h); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	if h.Entries < 0 || h.Locks < 0 || h.Seen < 0 || h.Machine < 0 {
		return fmt.Errorf("%w: snapshot header %+v", ErrMalformed, h)
	}
	kv := make(map[string]entry, min(h.Entries, 1<<20))
	for range h.Entries {
		var e entry
		if err := wire.DecodeFrame(r, maxEntry+64, &e); err != nil {
			return fmt.Errorf("snapshot entry: %w", err)
		}
		kv[e.Key] = e
	}
	locks := map[string]lease{}
	for range h.Locks {
		var l lease
		if err := wire.DecodeFrame(r, maxEntry, &l); err != nil {
			return fmt.Errorf("snapshot lock: %w", err)
		}
		locks[l.Name] = l
	}
	seen := map[string]result{}
	var order [][]byte
	seenBytes := 0
	for range h.Seen {
		var d done
		if err := wire.DecodeFrame(r, maxEntry+64, &d); err != nil {
			return fmt.Errorf("snapshot write id: %w", err)
		}
		seen[string(d.ID)] = d.Result
		order = append(order, d.ID)
		seenBytes += len(d.ID) + len(d.Result.Data) + len(d.Result.Holder) + len(d.Result.Err)
	}
	var state []byte
	for len(state) < h.Machine {
		var chunk []byte
		if err := wire.DecodeFrame(r, snapshotChunk+16, &chunk); err != nil {
			return fmt.Errorf("snapshot machine state: %w", err)
		}
		if len(chunk) == 0 {
			return fmt.Errorf("%w: empty machine chunk", ErrMalformed)
		}
		state = append(state, chunk...)
	}
	if len(state) != h.Machine {
		return fmt.Errorf("%w: machine state of %d bytes, header says %d", ErrMalformed, len(state), h.Machine)
	}
	if f.machine != nil && h.Machine > 0 {
		if err := f.machine.Restore(state); err != nil {
			return fmt.Errorf("state machine restore: %w", err)
		}
	}
	if h.Stream {
		dm, ok := f.machine.(DiskMachine)
		if !ok {
			return fmt.Errorf("%w: a streamed machine state, and no DiskMachine to take it", ErrMalformed)
		}
		mr := &machineReader{r: r}
		// What the machine left unread (it kept its own state) is not
		// read at all: it may be the size of the disk.
		if err := dm.RestoreFrom(mr); err != nil {
			return fmt.Errorf("state machine restore: %w", err)
		}
	}
	f.mu.Lock()
	old := f.kv
	f.kv, f.locks, f.seen, f.order, f.seenBytes = kv, locks, seen, order, seenBytes
	f.moved()
	f.mu.Unlock()
	f.notify(diff(old, kv))
	return nil
}

// diff lists the changes that turn map a into map b, for watchers of a
// member that jumped ahead by a snapshot.
func diff(a, b map[string]entry) []Change {
	var out []Change
	for k, e := range b {
		if o, ok := a[k]; !ok || o.Version != e.Version {
			out = append(out, Change{Key: k, Value: e.Value, Version: e.Version})
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, Change{Key: k, Deleted: true})
		}
	}
	slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Key, y.Key) })
	return out
}

// watchBuffer is how many changes a watcher may have unread.
const watchBuffer = 4096

type watcher struct {
	prefix string
	ch     chan Change
	lagged bool // set under fsm.wmu when ch overflowed; ch is then closed
}

func (f *fsm) watch(prefix string) *watcher {
	w := &watcher{prefix: prefix, ch: make(chan Change, watchBuffer)}
	f.wmu.Lock()
	f.watchers[w] = struct{}{}
	f.wmu.Unlock()
	return w
}

func (f *fsm) unwatch(w *watcher) {
	f.wmu.Lock()
	if _, ok := f.watchers[w]; ok {
		delete(f.watchers, w)
		close(w.ch)
	}
	f.wmu.Unlock()
}

func (f *fsm) isLagged(w *watcher) bool {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return w.lagged
}

// notify hands changes to the watchers, never blocking the log: a watcher
// whose buffer is full is ended with ErrLagged.
func (f *fsm) notify(changes []Change) {
	if len(changes) == 0 {
		return
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	for w := range f.watchers {
		for _, c := range changes {
			if !strings.HasPrefix(c.Key, w.prefix) {
				continue
			}
			select {
			case w.ch <- c:
			default:
				w.lagged = true
				delete(f.watchers, w)
				close(w.ch)
			}
			if w.lagged {
				break
			}
		}
	}
}
