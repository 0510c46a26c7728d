package topic_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// TestAttacks runs the owner's node's validator (the one gossipsub calls
// on every message) on what an attacker would send: each is refused for
// the right reason, and the honest message beside it passes.
func TestAttacks(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, time.Minute)
	owner := c.Node(0)
	alpha, err := owner.Topics().Create(ctx, "alpha", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	beta, err := owner.Topics().Create(ctx, "beta", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, user := newUser(t)
	gA, err := alpha.Grant(ctx, user, topic.Publish, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	gB, err := beta.Grant(ctx, user, topic.Publish, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	chainA, chainB := grantChain(t, gA), grantChain(t, gB)
	evilKey, evil := newUser(t)
	_, otherNode := newUser(t) // a node that holds nothing
	stranger := otherNode

	honest := topic.Forge{Key: key, Topic: alpha.ID(), Publisher: user, Data: []byte("hi"), Chain: chainA}
	check := func(f topic.Forge, from peer.ID) error {
		if f.At.IsZero() {
			f.At = time.Now()
		}
		b, err := f.Payload()
		if err != nil {
			t.Fatal(err)
		}
		return topic.Check(ctx, alpha, from, b)
	}
	if err := check(honest, stranger); err != nil {
		t.Fatalf("the honest message: %v", err)
	}

	const accept, ignore, reject = "accept", "ignore", "reject"
	cases := []struct {
		name   string
		f      func(f *topic.Forge) peer.ID
		want   error
		judged string // what gossipsub is told
	}{
		{"impostor: signed by one user, naming another", func(f *topic.Forge) peer.ID { f.Key = evilKey; return stranger }, topic.ErrBadMessage, reject},
		{"impostor of the owner", func(f *topic.Forge) peer.ID {
			f.Key, f.Publisher, f.Chain = evilKey, owner.UserID(), nil
			return stranger
		}, topic.ErrBadMessage, reject},
		{"no grant", func(f *topic.Forge) peer.ID { f.Key, f.Publisher, f.Chain = evilKey, evil, nil; return stranger }, topic.ErrNotAuthorised, reject},
		{"another's chain", func(f *topic.Forge) peer.ID { f.Key, f.Publisher = evilKey, evil; return stranger }, topic.ErrNotAuthorised, reject},
		{"a replay from another topic", func(f *topic.Forge) peer.ID { f.Topic, f.Chain = beta.ID(), chainB; return stranger }, topic.ErrBadMessage, reject},
		{"a chain for another space", func(f *topic.Forge) peer.ID { f.Chain = chainB; return stranger }, topic.ErrNotAuthorised, reject},
		{"a clock 10 minutes ahead", func(f *topic.Forge) peer.ID { f.At = time.Now().Add(10 * time.Minute); return stranger }, topic.ErrBadMessage, reject},
		{"a replay 10 minutes old", func(f *topic.Forge) peer.ID { f.At = time.Now().Add(-10 * time.Minute); return stranger }, topic.ErrBadMessage, reject},
		{"a clock 45 seconds ahead", func(f *topic.Forge) peer.ID { f.At = time.Now().Add(45 * time.Second); return stranger }, topic.ErrBadMessage, ignore},
		{"a forgery 45 seconds ahead", func(f *topic.Forge) peer.ID {
			f.At, f.Key = time.Now().Add(45*time.Second), evilKey
			return stranger
		}, topic.ErrBadMessage, reject},
		{"a clock 5 seconds ahead", func(f *topic.Forge) peer.ID { f.At = time.Now().Add(5 * time.Second); return stranger }, nil, accept},
		{"an oversized body", func(f *topic.Forge) peer.ID { f.Data = make([]byte, topic.MaxMessage+2048); return stranger }, topic.ErrTooLarge, reject},
		{"a topic named ..", func(f *topic.Forge) peer.ID { f.Topic = owner.UserID().String() + "/.."; return stranger }, topic.ErrBadMessage, reject},
		{"an offset from a node that holds nothing", func(f *topic.Forge) peer.ID { f.Offset = 7; return otherNode }, topic.ErrNotAuthorised, ignore},
		{"a forgery with an offset from a node that holds nothing", func(f *topic.Forge) peer.ID {
			f.Offset, f.Key = 7, evilKey
			return otherNode
		}, topic.ErrBadMessage, reject},
		{"an offset from the topic's home", func(f *topic.Forge) peer.ID { f.Offset = 7; return owner.ID() }, nil, accept},
	}
	for _, tc := range cases {
		f := honest
		from := tc.f(&f)
		if f.At.IsZero() {
			f.At = time.Now()
		}
		b, err := f.Payload()
		if err != nil {
			t.Fatal(err)
		}
		err = topic.Check(ctx, alpha, from, b)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if j := topic.Judge(ctx, alpha, from, b); j != tc.judged {
			t.Errorf("%s: gossipsub is told %s, want %s (%v)", tc.name, j, tc.judged, err)
		}
	}

	// A payload over the cap and garbage are refused before decoding.
	big := make([]byte, topic.MaxEnvelope+1024)
	if err := topic.Check(ctx, alpha, stranger, big); !errors.Is(err, topic.ErrTooLarge) {
		t.Errorf("an oversized payload: %v", err)
	}
	junk := make([]byte, 512)
	rand.Read(junk)
	if err := topic.Check(ctx, alpha, stranger, junk); !errors.Is(err, topic.ErrBadMessage) {
		t.Errorf("junk: %v", err)
	}

	// A name like ".." is no topic.
	if _, err := owner.Topics().Create(ctx, "..", topic.Options{}); !errors.Is(err, topic.ErrBadName) {
		t.Errorf("create ..: %v", err)
	}
	if _, err := owner.Topics().Open(ctx, owner.UserID(), "../x"); !errors.Is(err, topic.ErrBadName) {
		t.Errorf("open ../x: %v", err)
	}

	// Revoked: refused at once on the home.
	if err := alpha.Revoke(ctx, gA.ID()); err != nil {
		t.Fatal(err)
	}
	if err := check(honest, stranger); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("after the revocation: %v", err)
	}
	// A relay may have passed it on before it learned of the revocation:
	// dropped unpenalised; but a forgery under the revoked chain is
	// penalised.
	rb, _ := topic.Forge{Key: key, Topic: alpha.ID(), Publisher: user, At: time.Now(), Chain: chainA}.Payload()
	if j := topic.Judge(ctx, alpha, stranger, rb); j != "ignore" {
		t.Errorf("a message under a chain revoked since: %s", j)
	}
	fb, _ := topic.Forge{Key: evilKey, Topic: alpha.ID(), Publisher: user, At: time.Now(), Chain: chainA}.Payload()
	if j := topic.Judge(ctx, alpha, stranger, fb); j != "reject" {
		t.Errorf("a forgery under a revoked chain: %s", j)
	}

	// Expired: a grant that ends in a second is refused once it has.
	g2, err := alpha.Grant(ctx, user, topic.Publish, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f := honest
	f.Chain = grantChain(t, g2)
	if err := check(f, stranger); err != nil {
		t.Fatalf("before the grant ends: %v", err)
	}
	var expired error
	nubetest.Eventually(t, ctx, func() bool { expired = check(f, stranger); return expired != nil },
		func() string { return "the grant never expired" })
	if !errors.Is(expired, topic.ErrNotAuthorised) {
		t.Fatalf("after the grant ended: %v", expired)
	}
}

// TestDelegatedPublisher: a grantee with the delegate right passes the
// publish right on from its own node; the delegate publishes and the
// owner's subscriber gets it.
func TestDelegatedPublisher(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	owner, mid, leaf := c.Node(0), c.Node(1), c.Node(2)
	tp, err := owner.Topics().Create(ctx, "chain", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, mid.UserID(), topic.Publish|topic.Delegate, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, ctx, mid, owner.UserID(), "chain").Grant(ctx, leaf.UserID(), topic.Publish, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, ctx, tp)
	ltp := open(t, ctx, leaf, owner.UserID(), "chain")
	waitGossip(t, ctx, ltp, owner.ID())
	if _, err := ltp.Publish(ctx, []byte("delegated"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "delegated" || m.Publisher != leaf.UserID() {
		t.Fatalf("got %q from %s", m.Data, m.Publisher)
	}
}

// TestFlood: a peer without a grant sends 10,000 messages a second at a
// node for a few seconds. Subscribers see none of them; the node's heap
// stays bounded. The CPU time and the heap growth are reported (the
// whole test process's CPU, the attacker's sending included).
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("the flood runs for seconds; skipped in short mode")
	}
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 2*time.Minute)
	owner, other := c.Node(0), c.Node(1)
	tp, err := owner.Topics().Create(ctx, "flooded", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, other.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ownerSub := subscribe(t, ctx, tp)
	otherSub := subscribe(t, ctx, open(t, ctx, other, owner.UserID(), "flooded"))
	bad, s := rawPeer(t, ctx, owner, topic.GossipTopic(tp.ID()))
	nubetest.Eventually(t, ctx, func() bool { return slices.Contains(topic.GossipPeers(tp), bad.ID()) },
		func() string { return "the node never saw the flooder on the topic" })

	const rate, seconds = 10_000, 3
	key, user := newUser(t)
	payloads := make([][]byte, rate*seconds)
	for i := range payloads {
		b, err := topic.Forge{Key: key, Topic: tp.ID(), Publisher: user, At: time.Now(), Data: fmt.Appendf(nil, "flood %d", i)}.Payload()
		if err != nil {
			t.Fatal(err)
		}
		payloads[i] = b
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	start := time.Now()
	// The flooder writes pubsub RPCs itself on a stream of the gossipsub
	// protocol, 100 messages each 10 ms, each message signed (as
	// gossipsub's strict signing wants) beforehand, so that the CPU the
	// test measures is the node's, not the flooder's.
	rpcs := rawRPCs(t, bad, topic.GossipTopic(tp.ID()), payloads, rate/100)
	peak := before.HeapAlloc
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	written := 0
	lowest := 0.0 // the flooder's lowest score seen during the flood
	for written < len(rpcs) {
		<-tick.C
		due := min(len(rpcs), int(time.Since(start)/(10*time.Millisecond))+1)
		for ; written < due; written++ {
			if _, err := s.Write(rpcs[written]); err != nil {
				t.Fatalf("the flooder's stream, after %d batches: %v", written, err)
			}
		}
		if written%50 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			if sc, ok := topic.Score(tp, bad.ID()); ok {
				lowest = min(lowest, sc)
			}
		}
	}
	sent := len(payloads)
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	peak = max(peak, after.HeapAlloc)
	growth := int64(peak) - int64(before.HeapAlloc)
	score, _ := topic.Score(tp, bad.ID())
	lowest = min(lowest, score)
	t.Logf("flood: %d messages in %v (%.0f/s); process CPU %v (%.2f cores); heap %d MiB before, peak growth %d MiB; the flooder's score %.0f at its lowest, %.0f at the end; the node dropped %d in its validator",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), cpu.Round(time.Millisecond), cpu.Seconds()/elapsed.Seconds(),
		before.HeapAlloc>>20, growth>>20, lowest, score, topic.RatesOf(tp).Dropped)
	if growth > 512<<20 {
		t.Fatalf("the heap grew by %d MiB under the flood", growth>>20)
	}
	// The scores are inspected once a second, in goroutines of their
	// own: wait for one taken after the flood began.
	nubetest.Eventually(t, ctx, func() bool {
		sc, ok := topic.Score(tp, bad.ID())
		return lowest < topic.GraylistThreshold || ok && sc < topic.GraylistThreshold
	}, func() string {
		sc, ok := topic.Score(tp, bad.ID())
		return fmt.Sprintf("the flooder's score was never under the graylist threshold: %v at its lowest, now %v (scored: %v)", lowest, sc, ok)
	})
	// Subscribers saw none: the owner's message is the first they see.
	if _, err := tp.Publish(ctx, []byte("after"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, sub := range []*topic.Subscription{ownerSub, otherSub} {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, []byte("after")) {
			t.Fatalf("subscriber %d got %q from %s", i, m.Data, m.Publisher)
		}
	}
}

// rawPeer is a peer that speaks gossipsub by hand: it takes node's
// stream to it and drops what comes on it, and opens its own, on which it
// has said it subscribes to gossipTopic, for the caller to write RPCs on.
func rawPeer(t *testing.T, ctx context.Context, node *nube.Node, gossipTopic string) (host.Host, network.Stream) {
	t.Helper()
	h := hosttest.Hosts(t, 1)[0]
	h.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) { io.Copy(io.Discard, s); s.Reset() })
	if err := h.Connect(ctx, peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, node.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	hello, _ := proto.Marshal(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: &gossipTopic}}})
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(hello))), hello...)); err != nil {
		t.Fatal(err)
	}
	return h, s
}

// rawRPCs makes gossipsub RPCs of per messages each, every message
// signed by h's key as strict signing wants, framed as on the wire.
func rawRPCs(t *testing.T, h host.Host, gossipTopic string, payloads [][]byte, per int) [][]byte {
	t.Helper()
	key := h.Peerstore().PrivKey(h.ID())
	var out [][]byte
	for i := 0; i < len(payloads); i += per {
		var rpc pb.RPC
		for j := i; j < min(i+per, len(payloads)); j++ {
			seq := make([]byte, 8)
			binary.BigEndian.PutUint64(seq, uint64(j)+1)
			m := &pb.Message{From: []byte(h.ID()), Data: payloads[j], Seqno: seq, Topic: &gossipTopic}
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if m.Signature, err = key.Sign(append([]byte(pubsub.SignPrefix), b...)); err != nil {
				t.Fatal(err)
			}
			rpc.Publish = append(rpc.Publish, m)
		}
		b, err := proto.Marshal(&rpc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	}
	return out
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
