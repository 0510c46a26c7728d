package group

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// rawStream opens a raft stream from h to p and says hello for group.
func rawStream(t *testing.T, ctx context.Context, h host.Host, p peer.ID, group string) (*wire.Stream, helloReply) {
	t.Helper()
	s, err := h.NewStream(ctx, p, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	ws := wire.NewStream(s, wire.WithMaxFrame(maxFrame), wire.WithMaxSend(maxFrame))
	if err := ws.Send(ctx, hello{Group: group}); err != nil {
		t.Fatal(err)
	}
	var r helloReply
	if err := ws.Recv(ctx, &r); err != nil {
		t.Fatal(err)
	}
	return ws, r
}

// TestHostilePeers: a stranger's raft stream and forwarded calls are
// refused; a member's malformed messages (a junk configuration entry, which
// raft itself would panic on; entries out of order; an unknown kind; a
// snapshot that lies about its size) get an error and leave the group
// working.
func TestHostilePeers(t *testing.T) {
	hs := hosttest.Hosts(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var gs []*Group
	ids := []peer.ID{hs[0].ID(), hs[1].ID()}
	for _, h := range hs[:2] {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(ctx, Config{Host: h, Remote: e, HeartbeatTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); e.Close() })
		g, err := m.Open(ctx, "h", Options{Members: ids})
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	if _, err := gs[0].Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}

	stranger := hs[2]
	if _, r := rawStream(t, ctx, stranger, hs[0].ID(), "h"); r.Err == "" {
		t.Fatal("a stranger's raft stream was accepted")
	}
	if _, r := rawStream(t, ctx, stranger, hs[0].ID(), "nosuch"); r.Err == "" {
		t.Fatal("a stream for a group that is not here was accepted")
	}
	se, err := remote.New(ctx, remote.Config{Host: stranger})
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	rep, err := callFn.At(se, hs[0].ID()).Call(ctx, callRequest{Group: "h", Kind: callWrite, Cmd: command{Op: opPut, Key: "a", Value: []byte("evil")}})
	if err != nil || !rep.NotMember {
		t.Fatalf("a stranger's forwarded write: %+v, %v", rep, err)
	}

	badConfig := request{Kind: rpcAppend, Version: int(raft.ProtocolVersionMax), Term: 99, PrevIndex: 1,
		Entries: []wireLog{{Index: 2, Term: 99, Type: uint8(raft.LogConfiguration), Data: []byte{0xff, 0x00, 0x13}}}}
	outOfOrder := request{Kind: rpcAppend, Version: int(raft.ProtocolVersionMax), Term: 99, PrevIndex: 5,
		Entries: []wireLog{{Index: 9, Term: 99}}}
	for name, req := range map[string]request{
		"junk configuration":   badConfig,
		"entries out of order": outOfOrder,
		"unknown kind":         {Kind: 77},
		"bad version":          {Kind: rpcVote, Version: 1000},
		"snapshot size":        {Kind: rpcSnapshot, Size: -1},
	} {
		ws, r := rawStream(t, ctx, hs[1], hs[0].ID(), "h")
		if r.Err != "" {
			t.Fatalf("%s: a member's stream refused: %s", name, r.Err)
		}
		if err := ws.Send(ctx, &req); err != nil {
			t.Fatal(err)
		}
		var resp response
		if err := ws.Recv(ctx, &resp); err != nil || resp.Err == "" {
			t.Fatalf("%s: answered %+v, %v; want an error", name, resp, err)
		}
	}
	// Garbage that is not even a frame.
	s, err := hs[1].NewStream(ctx, hs[0].ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(bytes.Repeat([]byte{0xff}, 64))
	io.Copy(io.Discard, s)
	s.Reset()

	if _, err := gs[1].Put(ctx, "b", []byte("2")); err != nil {
		t.Fatalf("the group after hostile messages: %v", err)
	}
	if v, err := gs[0].Get(ctx, "a"); err != nil || string(v) != "1" {
		t.Fatalf("a = %q, %v", v, err)
	}
}

func FuzzRequest(f *testing.F) {
	add := func(r request) {
		b, err := wire.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	add(request{Kind: rpcAppend, Term: 3, PrevIndex: 1, Entries: []wireLog{{Index: 2, Term: 3, Data: []byte("x")}}})
	add(request{Kind: rpcAppend, Term: 3, Entries: []wireLog{{Index: 1, Term: 3, Type: uint8(raft.LogConfiguration),
		Data: raft.EncodeConfiguration(raft.Configuration{Servers: []raft.Server{{ID: "12D3KooWELPFDxGsJYR9x6ZTDbj6gX1MeaUyxVNpChSYqTgpfMTT", Address: "x"}}})}}})
	add(request{Kind: rpcSnapshot, Size: 10, Config: []byte{0x80}})
	add(request{Kind: rpcVote, Term: 1})
	from, _ := peer.Decode("12D3KooWELPFDxGsJYR9x6ZTDbj6gX1MeaUyxVNpChSYqTgpfMTT")
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		if err := wire.Unmarshal(b, &r); err != nil {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("decode error that is not ErrMalformed: %v", err)
			}
			return
		}
		cmd, err := r.command([]byte(from.String()))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("refusal that is not ErrMalformed: %v", err)
			}
			return
		}
		if a, ok := cmd.(*raft.AppendEntriesRequest); ok {
			for _, l := range a.Entries {
				if l.Type == raft.LogConfiguration {
					raft.DecodeConfiguration(l.Data) // accepted, so must not panic
				}
			}
		}
	})
}

// FuzzState feeds the state machine arbitrary log entries and snapshots.
func FuzzState(f *testing.F) {
	put, _ := wire.Marshal(command{Op: opPut, Key: "k", Value: []byte("v"), ID: []byte("id")})
	lock, _ := wire.Marshal(command{Op: opLock, Key: "l", Holder: "h", TTL: 5, Time: 1})
	f.Add(put, []byte{})
	f.Add(lock, []byte{0x01, 0xa0})
	fs := newFSM(nil)
	fs.Apply(&raft.Log{Index: 1, Data: put})
	snap, _ := fs.Snapshot()
	var buf bytes.Buffer
	snap.Persist(&memSink{Buffer: &buf})
	f.Add(lock, buf.Bytes())
	f.Fuzz(func(t *testing.T, entry, state []byte) {
		fs := newFSM(nil)
		fs.Apply(&raft.Log{Index: 1, Data: entry})
		_ = fs.Restore(io.NopCloser(bytes.NewReader(state)))
		fs.Apply(&raft.Log{Index: 2, Data: entry})
	})
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	*bytes.Buffer
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

// TestSnapshotRoundTrip: a state saved and restored is the same state.
func TestSnapshotRoundTrip(t *testing.T) {
	a := newFSM(nil)
	for i, c := range []command{
		{Op: opPut, Key: "x", Value: []byte("1"), ID: []byte("w1")},
		{Op: opPut, Key: "y", Value: []byte{}},
		{Op: opLock, Key: "l", Holder: "me", TTL: 100, Time: 10, ID: []byte("w2")},
	} {
		b, _ := wire.Marshal(c)
		a.Apply(&raft.Log{Index: uint64(i + 1), Data: b})
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.Persist(&memSink{Buffer: &buf}); err != nil {
		t.Fatal(err)
	}
	b := newFSM(nil)
	if err := b.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if e, ok := b.get("x"); !ok || string(e.Value) != "1" || e.Version != 1 {
		t.Fatalf("x after restore: %+v %v", e, ok)
	}
	if _, ok := b.get("y"); !ok {
		t.Fatal("empty value lost")
	}
	if l, ok := b.lock("l"); !ok || l.Holder != "me" || l.Token != 3 {
		t.Fatalf("lock after restore: %+v", l)
	}
	// A retried write is still recognised after the restore.
	again, _ := wire.Marshal(command{Op: opPut, Key: "x", Value: []byte("2"), ID: []byte("w1")})
	b.Apply(&raft.Log{Index: 4, Data: again})
	if e, _ := b.get("x"); string(e.Value) != "1" {
		t.Fatalf("a retry applied twice after restore: x = %q", e.Value)
	}
}
