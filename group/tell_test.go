package group

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/remote"
)

// TestFollowerLearnsCommit: a follower applies a write its leader
// committed without waiting for the next write, or for raft's commit
// timeout (set to an hour here): the leader tells it at once.
func TestFollowerLearnsCommit(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []peer.ID{hs[0].ID(), hs[1].ID()}
	var gs []*Group
	for _, h := range hs {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(ctx, Config{Host: h, Remote: e, HeartbeatTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		m.tune = func(c *raft.Config) { c.CommitTimeout = time.Hour }
		t.Cleanup(func() { m.Close(); e.Close() })
		g, err := m.Open(ctx, "tell", Options{Members: ids})
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	if _, err := gs[0].Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	lead := gs[0]
	if lead.Leader() != lead.self {
		lead = gs[1]
	}
	follower := gs[0]
	if follower == lead {
		follower = gs[1]
	}
	for {
		next := follower.fsm.next()
		if e, ok := follower.fsm.get("k"); ok && string(e.Value) == "v" {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatal("the follower never applied the committed write")
		}
	}
}

// TestHeartbeatCommit: a heartbeat tells a follower of a commit only as
// far as its log is known to match the leader's, in the leader's term:
// never of entries it may hold from an older leader, which a commit would
// make it apply.
func TestHeartbeatCommit(t *testing.T) {
	for _, tc := range []struct {
		name               string
		m                  matched
		term, commit, want uint64
	}{
		{"matched past the commit", matched{Term: 3, Index: 10}, 3, 7, 7},
		{"matched short of the commit", matched{Term: 3, Index: 5}, 3, 7, 5},
		{"matched in an older term", matched{Term: 2, Index: 10}, 3, 7, 0},
		{"never matched", matched{}, 3, 7, 0},
		{"nothing committed", matched{Term: 3, Index: 10}, 3, 0, 0},
	} {
		if got := heartbeatCommit(tc.m, tc.term, tc.commit); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestAdmitRefusesMember: a peer the group's program does not admit is
// refused raft streams and forwarded calls, even as a voter of the raft
// configuration (one that a member added behind the others' backs).
func TestAdmitRefusesMember(t *testing.T) {
	hs := hosttest.Hosts(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ids := []peer.ID{hs[0].ID(), hs[1].ID()}
	var refuse atomic.Bool
	e, err := remote.New(ctx, remote.Config{Host: hs[0]})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ctx, Config{Host: hs[0], Remote: e, HeartbeatTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); e.Close() })
	g, err := m.Open(ctx, "admit", Options{Members: ids, Admit: func(p peer.ID) bool { return !(refuse.Load() && p == hs[1].ID()) }})
	if err != nil {
		t.Fatal(err)
	}
	if !g.isMember(hs[1].ID()) {
		t.Fatal("the second host is not in the configuration")
	}
	if _, r := rawStream(t, ctx, hs[1], hs[0].ID(), "admit"); r.Err != "" {
		t.Fatalf("an admitted member's raft stream was refused: %s", r.Err)
	}
	refuse.Store(true)
	if _, r := rawStream(t, ctx, hs[1], hs[0].ID(), "admit"); r.Err == "" {
		t.Fatal("a member the program does not admit opened a raft stream")
	}
	se, err := remote.New(ctx, remote.Config{Host: hs[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	rep, err := callFn.At(se, hs[0].ID()).Call(ctx, callRequest{Group: "admit", Kind: callWrite, Cmd: command{Op: opPut, Key: "a", Value: []byte("x")}})
	if err != nil || !rep.NotMember {
		t.Fatalf("a forwarded write from a member the program does not admit: %+v, %v", rep, err)
	}
}
