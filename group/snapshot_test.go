package group

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// listMachine is a StateMachine that keeps every command, for checking
// that a snapshot carries a program's state.
type listMachine struct{ cmds [][]byte }

func (l *listMachine) Apply(cmd []byte) ([]byte, error) {
	l.cmds = append(l.cmds, append([]byte{}, cmd...))
	return nil, nil
}
func (l *listMachine) Snapshot() ([]byte, error) { return bytes.Join(l.cmds, []byte{0}), nil }
func (l *listMachine) Restore(b []byte) error {
	l.cmds = bytes.Split(b, []byte{0})
	return nil
}

// TestInstallSnapshot: a member that was away while the leader compacted
// its log catches up from a snapshot sent over the transport, the map,
// the locks, the remembered writes and the program's machine included.
func TestInstallSnapshot(t *testing.T) {
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
	open := func(i int) *Group {
		g, err := ms[i].Open(ctx, "snap", Options{Members: ids, Machine: &listMachine{}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	gs := []*Group{open(0), open(1), open(2)}
	if _, err := gs[0].Put(ctx, "first", []byte("1")); err != nil {
		t.Fatal(err)
	}
	away := gs[2].raft.LastIndex()
	gs[2].Close()
	a, b := gs[0], gs[1]
	for i := range 50 {
		if _, err := a.Put(ctx, "k"+strconv.Itoa(i), bytes.Repeat([]byte{byte(i)}, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Apply(ctx, []byte("cmd"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	// Snapshot on both survivors: the log before the snapshot is gone,
	// so member 2 can only catch up from one.
	for _, g := range []*Group{a, b} {
		if err := g.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	lead := a
	if b.raft.State() == raft.Leader {
		lead = b
	}
	if first, _ := lead.store.FirstIndex(); first <= away+1 {
		t.Fatalf("the leader's log starts at %d, and member 2 has up to %d", first, away)
	}
	c := open(2)
	for {
		changed := c.fsm.next()
		if _, ok := c.fsm.lock("held"); ok {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("member 2 never caught up")
		}
	}
	if n := c.trans.snapshots.Load(); n == 0 {
		t.Fatal("member 2 caught up without a snapshot")
	}
	for i := range 50 {
		e, ok := c.fsm.get("k" + strconv.Itoa(i))
		if !ok || len(e.Value) != 1000 || e.Value[0] != byte(i) {
			t.Fatalf("k%d after the snapshot: %v", i, ok)
		}
	}
	if _, ok := c.fsm.lock("held"); !ok {
		t.Fatal("the lock was not in the snapshot")
	}
	got := c.fsm.machine.(*listMachine).cmds
	if len(got) != 50 || string(got[49]) != "cmd49" {
		t.Fatalf("the machine after the snapshot holds %d commands", len(got))
	}
	if n := len(c.fsm.order); n < 100 {
		t.Fatalf("%d remembered writes after the snapshot, want all 100+", n)
	}
}

// bigMachine answers every command with a megabyte.
type bigMachine struct{ listMachine }

func (b *bigMachine) Apply(cmd []byte) ([]byte, error) { return make([]byte, 1<<20), nil }

// TestDedupBounded: the writes remembered for their retries are bounded in
// bytes as well as in number.
func TestDedupBounded(t *testing.T) {
	f := newFSM(&bigMachine{})
	for i := range 40 {
		b, _ := wire.Marshal(command{Op: opApply, ID: []byte("w" + strconv.Itoa(i)), Data: []byte("x")})
		f.Apply(&raft.Log{Index: uint64(i + 1), Data: b})
	}
	if f.seenBytes > dedupBytes+2<<20 || len(f.order) >= 40 || len(f.order) < 10 {
		t.Fatalf("remembered %d writes, %d bytes", len(f.order), f.seenBytes)
	}
	if _, ok := f.seen["w39"]; !ok {
		t.Fatal("the newest write was forgotten")
	}
}
