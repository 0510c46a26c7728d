package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/nubecloud/nube/internal/wire"
)

// errKeyNotFound is what raft expects of a stable store asked for a key it
// never stored: raft compares the message, not the value.
var errKeyNotFound = errors.New("not found")

// openDB opens the Pebble database that holds the logs and stable state of
// every group on the node, in dir, or in memory if dir is empty.
func openDB(dir string, log *slog.Logger) (*pebble.DB, error) {
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 8 << 20, Logger: pebbleLog{log}}
	if dir == "" {
		o.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("open group store: %w", err)
	}
	return db, nil
}

// pebbleLog hands Pebble's messages to the node's log: information at
// debug level, errors as warnings.
type pebbleLog struct{ l *slog.Logger }

func (p pebbleLog) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLog) Errorf(format string, args ...any) { p.l.Warn(fmt.Sprintf(format, args...)) }
func (p pebbleLog) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("group store: " + msg)
}

// store is one group's raft LogStore and StableStore: its keys are the
// group's prefix, then 'l' and a big-endian index for log entries or 's'
// and the name for stable values. Every write is synced before it returns.
type store struct {
	db     *pebble.DB
	prefix []byte
}

func newStore(db *pebble.DB, group string) *store {
	return &store{db: db, prefix: append([]byte("g/"+group), 0)}
}

func (s *store) logKey(i uint64) []byte {
	k := make([]byte, 0, len(s.prefix)+9)
	k = append(append(k, s.prefix...), 'l')
	return binary.BigEndian.AppendUint64(k, i)
}

func (s *store) stableKey(k []byte) []byte {
	return append(append(append([]byte{}, s.prefix...), 's'), k...)
}

// bounds of the log's keys: every index, and nothing else.
func (s *store) logBounds() *pebble.IterOptions {
	lo := append(append([]byte{}, s.prefix...), 'l')
	hi := append(append([]byte{}, s.prefix...), 'm')
	return &pebble.IterOptions{LowerBound: lo, UpperBound: hi}
}

func (s *store) edge(first bool) (uint64, error) {
	it, err := s.db.NewIter(s.logBounds())
	if err != nil {
		return 0, err
	}
	defer it.Close()
	ok := false
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	if !ok {
		return 0, it.Error()
	}
	k := it.Key()
	return binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

func (s *store) FirstIndex() (uint64, error) { return s.edge(true) }
func (s *store) LastIndex() (uint64, error)  { return s.edge(false) }

func (s *store) GetLog(i uint64, l *raft.Log) error {
	v, closer, err := s.db.Get(s.logKey(i))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	var w wireLog
	if err := wire.Unmarshal(v, &w); err != nil {
		return fmt.Errorf("log entry %d: %w", i, err)
	}
	got, err := w.toLog()
	if err != nil {
		return fmt.Errorf("log entry %d: %w", i, err)
	}
	*l = *got
	return nil
}

func (s *store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *store) StoreLogs(ls []*raft.Log) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, l := range ls {
		v, err := wire.Marshal(toWireLog(l))
		if err != nil {
			return err
		}
		if err := b.Set(s.logKey(l.Index), v, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

func (s *store) DeleteRange(lo, hi uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(s.logKey(lo), s.logKey(hi+1), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

func (s *store) Set(k, v []byte) error {
	return s.db.Set(s.stableKey(k), v, pebble.Sync)
}

func (s *store) Get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(s.stableKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

func (s *store) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

func (s *store) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("stable value %q is %d bytes, not 8", k, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// drop deletes everything the group stored.
func (s *store) drop() error {
	hi := append([]byte{}, s.prefix...)
	hi[len(hi)-1] = 1
	return s.db.DeleteRange(s.prefix, hi, pebble.Sync)
}
