package group

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/remote"
)

// The benchmarks set our libp2p transport beside raft's in-memory one, with
// everything else the same: three members, the same raft settings, the same
// state machine and the same Pebble log store on disk. bench/group.sh
// prints them side by side.

// libp2pTrio is a three-member group on libp2p, through the Manager. It
// returns the leader and a follower.
func libp2pTrio(b *testing.B) (leader *Group, follower *Group) {
	hs := hosttest.Hosts(b, 3)
	ctx := context.Background()
	var gs []*Group
	for _, h := range hs {
		e, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			b.Fatal(err)
		}
		m, err := New(ctx, Config{Host: h, Remote: e, Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(); e.Close() })
		g, err := m.Open(ctx, "bench", Options{Members: []peer.ID{hs[0].ID(), hs[1].ID(), hs[2].ID()}})
		if err != nil {
			b.Fatal(err)
		}
		gs = append(gs, g)
	}
	rs := []*raft.Raft{gs[0].raft, gs[1].raft, gs[2].raft}
	i := awaitLeader(b, rs)
	return gs[i], gs[(i+1)%3]
}

// awaitLeader waits for one of rs to lead and to have applied everything
// before its term, and returns its index.
func awaitLeader(b *testing.B, rs []*raft.Raft) int {
	ch := make(chan raft.Observation, 64)
	o := raft.NewObserver(ch, false, nil)
	rs[0].RegisterObserver(o)
	defer rs[0].DeregisterObserver(o)
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		for i, r := range rs {
			if r.State() == raft.Leader {
				if err := r.Barrier(0).Error(); err != nil {
					b.Fatal(err)
				}
				return i
			}
		}
		select {
		case <-ch:
		case <-timeout.C:
			b.Fatal("no leader")
		}
	}
}

// inmemTrio is three rafts on raft's in-memory transport, with our state
// machine and Pebble log stores.
func inmemTrio(b *testing.B) *raft.Raft {
	var trans []*raft.InmemTransport
	conf := raft.Configuration{}
	for range 3 {
		// Addresses are peer IDs, as in a real group, so that the log
		// store's checks hold.
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			b.Fatal(err)
		}
		id, _ := peer.IDFromPublicKey(pub)
		addr, t := raft.NewInmemTransport(raft.ServerAddress(id.String()))
		trans = append(trans, t)
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(addr), Address: addr})
	}
	for _, a := range trans {
		for _, c := range trans {
			a.Connect(c.LocalAddr(), c)
		}
	}
	var rs []*raft.Raft
	for i, t := range trans {
		db, err := openDB(b.TempDir(), slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		st := newStore(db, "bench")
		c := raft.DefaultConfig()
		c.LocalID = conf.Servers[i].ID
		c.MaxAppendEntries = maxAppendEntries
		c.NoLegacyTelemetry = true
		c.Logger = hclogger(slog.New(slog.DiscardHandler))
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(c, st, st, snaps, t, conf); err != nil {
			b.Fatal(err)
		}
		logs, _ := raft.NewLogCache(logCache, st)
		r, err := raft.NewRaft(c, newFSM(nil), logs, st, snaps, t)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Shutdown().Error(); db.Close() })
		rs = append(rs, r)
	}
	return rs[awaitLeader(b, rs)]
}

// writers is how many goroutines write at once in the throughput runs.
const writers = 64

func BenchmarkWrite(b *testing.B) {
	value := make([]byte, 128)
	b.Run("libp2p", func(b *testing.B) {
		leader, _ := libp2pTrio(b)
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(writers)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := leader.Put(ctx, "k"+strconv.FormatInt(n.Add(1)%1000, 10), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("inmem", func(b *testing.B) {
		r := inmemTrio(b)
		var n atomic.Int64
		b.SetParallelism(writers)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				data, _ := marshalCommand(command{Op: opPut, ID: newID(), Time: time.Now().UnixNano(),
					Key: "k" + strconv.FormatInt(n.Add(1)%1000, 10), Value: value})
				if err := r.Apply(data, 0).Error(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	})
}

// BenchmarkWriteLatency is one writer at a time: the time of one commit.
func BenchmarkWriteLatency(b *testing.B) {
	value := make([]byte, 128)
	b.Run("libp2p", func(b *testing.B) {
		leader, _ := libp2pTrio(b)
		for i := 0; b.Loop(); i++ {
			if _, err := leader.Put(context.Background(), "k", value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("inmem", func(b *testing.B) {
		r := inmemTrio(b)
		for b.Loop() {
			data, _ := marshalCommand(command{Op: opPut, ID: newID(), Key: "k", Value: value})
			if err := r.Apply(data, 0).Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRead measures a linearizable Get on the leader and through a
// follower, beside what it should cost: a round trip from the follower to
// the leader (a forwarded call that needs no heartbeat) plus the leader's
// heartbeat round (VerifyLeader).
func BenchmarkRead(b *testing.B) {
	leader, follower := libp2pTrio(b)
	ctx := context.Background()
	if _, err := leader.Put(ctx, "k", []byte("v")); err != nil {
		b.Fatal(err)
	}
	b.Run("get-on-leader", func(b *testing.B) {
		for b.Loop() {
			if _, err := leader.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-on-follower", func(b *testing.B) {
		for b.Loop() {
			if _, err := follower.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("heartbeat-round", func(b *testing.B) {
		for b.Loop() {
			if err := leader.raft.VerifyLeader().Error(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("round-trip-to-leader", func(b *testing.B) {
		for b.Loop() {
			// A join call is answered by any member from its
			// configuration: one forwarded call, no raft round.
			if _, err := callFn.At(follower.m.cfg.Remote, leader.self).Call(ctx, callRequest{Group: "bench", Kind: callJoin}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
