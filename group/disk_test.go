package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// diskMachine is a DiskMachine whose "disk" is a list of commands and the
// index it applied last; it counts what it skipped and restored.
type diskMachine struct {
	mu       sync.Mutex
	cmds     [][]byte
	index    uint64
	skipped  int
	restores int
	streamed int // snapshots written
}

func (d *diskMachine) Apply([]byte) ([]byte, error) { return nil, errors.New("ApplyAt only") }
func (d *diskMachine) Snapshot() ([]byte, error)    { return nil, errors.New("SnapshotTo only") }
func (d *diskMachine) Restore([]byte) error         { return errors.New("RestoreFrom only") }

func (d *diskMachine) ApplyAt(i uint64, cmd []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i <= d.index {
		d.skipped++
		return nil, nil
	}
	d.cmds, d.index = append(d.cmds, append([]byte{}, cmd...)), i
	return []byte(strconv.Itoa(len(d.cmds))), nil
}

func (d *diskMachine) SnapshotTo() (func(io.Writer) error, func(), error) {
	d.mu.Lock()
	cmds, index := append([][]byte{}, d.cmds...), d.index
	d.mu.Unlock()
	return func(w io.Writer) error {
		d.mu.Lock()
		d.streamed++
		d.mu.Unlock()
		var b []byte
		b = binary.BigEndian.AppendUint64(b, index)
		for _, c := range cmds {
			b = binary.AppendUvarint(b, uint64(len(c)))
			b = append(b, c...)
		}
		// Write in odd pieces, larger than a chunk, to cross frames.
		for len(b) > 0 {
			n := min(len(b), snapshotChunk+7)
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}, func() {}, nil
}

func (d *diskMachine) RestoreFrom(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) < 8 {
		return errors.New("short")
	}
	index := binary.BigEndian.Uint64(b)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.restores++
	if index <= d.index {
		return nil // this machine is at or past the snapshot: keep it
	}
	var cmds [][]byte
	for rd := bytes.NewReader(b[8:]); rd.Len() > 0; {
		n, err := binary.ReadUvarint(rd)
		if err != nil || n > uint64(rd.Len()) {
			return errors.New("bad")
		}
		c := make([]byte, n)
		io.ReadFull(rd, c)
		cmds = append(cmds, c)
	}
	d.cmds, d.index = cmds, index
	return nil
}

// TestDiskMachineSnapshot: a DiskMachine's state streams through a
// snapshot bigger than a chunk, and a restore that finds the machine
// already past it keeps the machine's state.
func TestDiskMachineSnapshot(t *testing.T) {
	src := &diskMachine{}
	f := newFSM(src)
	big := bytes.Repeat([]byte("x"), 100<<10)
	for i := range 8 {
		b, _ := wire.Marshal(command{Op: opApply, Data: append([]byte(strconv.Itoa(i)), big...)})
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Data: b}).(result); r.Err != "" || string(r.Data) != strconv.Itoa(i+1) {
			t.Fatalf("apply %d: %+v", i, r)
		}
	}
	// The same entry again (a replay) changes nothing.
	b, _ := wire.Marshal(command{Op: opApply, Data: []byte("again")})
	f.Apply(&raft.Log{Index: 8, Data: b})
	if src.skipped != 1 || len(src.cmds) != 8 {
		t.Fatalf("replayed entry: skipped %d, %d commands", src.skipped, len(src.cmds))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{&bytes.Buffer{}}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if sink.Len() < 8*100<<10 {
		t.Fatalf("snapshot of %d bytes", sink.Len())
	}
	dst := &diskMachine{}
	if err := newFSM(dst).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if dst.index != 8 || len(dst.cmds) != 8 || !bytes.Equal(dst.cmds[7], src.cmds[7]) {
		t.Fatalf("restored index %d, %d commands", dst.index, len(dst.cmds))
	}
	ahead := &diskMachine{index: 20}
	if err := newFSM(ahead).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if ahead.index != 20 || len(ahead.cmds) != 0 || ahead.restores != 1 {
		t.Fatalf("a machine ahead of the snapshot was replaced: index %d", ahead.index)
	}
	// A plain machine cannot take a streamed state.
	if err := newFSM(&listMachine{}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("streamed state into a plain machine: %v", err)
	}
	// A truncated stream fails, not hangs.
	if err := newFSM(&diskMachine{}).Restore(io.NopCloser(bytes.NewReader(sink.Bytes()[:sink.Len()-300<<10]))); err == nil {
		t.Fatal("a truncated snapshot restored")
	}
}

// TestDiskMachineCatchUp: a member that was away while the others
// compacted their logs catches up through a streamed snapshot sent over
// the transport; and a member that restarts skips the entries its machine
// had applied.
func TestDiskMachineCatchUp(t *testing.T) {
	hs := hosttest.Hosts(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := []peer.ID{hs[0].ID(), hs[1].ID(), hs[2].ID()}
	var ms []*Manager
	for _, h := range hs {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(ctx, Config{Host: h, Remote: e, Dir: t.TempDir(), HeartbeatTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		m.tune = func(c *raft.Config) { c.TrailingLogs = 4; c.SnapshotThreshold = 1 << 20 }
		t.Cleanup(func() { m.Close(); e.Close() })
		ms = append(ms, m)
	}
	machines := []*diskMachine{{}, {}, {}}
	open := func(i int) *Group {
		g, err := ms[i].Open(ctx, "disk", Options{Members: ids, Machine: machines[i]})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	gs := []*Group{open(0), open(1), open(2)}
	if _, err := gs[0].Apply(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	waitApplied := func(d *diskMachine, n int) {
		t.Helper()
		for {
			d.mu.Lock()
			got := len(d.cmds)
			d.mu.Unlock()
			if got >= n {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("machine has %d commands, want %d", got, n)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	waitApplied(machines[2], 1)
	gs[2].Close()
	for i := range 30 {
		if _, err := gs[i%2].Apply(ctx, append([]byte("cmd"+strconv.Itoa(i)), make([]byte, 20<<10)...)); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range gs[:2] {
		if err := g.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	// The restarted member keeps its machine (its "disk") and gets the
	// rest by a snapshot.
	open(2)
	waitApplied(machines[2], 31)
	if machines[2].restores == 0 {
		t.Fatal("member 2 caught up without a snapshot")
	}
	if !bytes.HasPrefix(machines[2].cmds[30], []byte("cmd29")) {
		t.Fatalf("member 2's last command %q", machines[2].cmds[30][:8])
	}
	// Member 0 restarts on its log: the entries it applied come again
	// and are skipped, none applied twice.
	gs[0].Close()
	before := len(machines[0].cmds)
	g0 := open(0)
	if _, err := g0.Apply(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	waitApplied(machines[0], before+1)
	if n := len(machines[0].cmds); n != before+1 {
		t.Fatalf("member 0 has %d commands after its restart, want %d", n, before+1)
	}
}
