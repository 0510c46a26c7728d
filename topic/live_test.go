package topic_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// open opens the topic owner/name on n.
func open(t *testing.T, ctx context.Context, n *nube.Node, owner peer.ID, name string) *topic.Topic {
	t.Helper()
	tp, err := n.Topics().Open(ctx, owner, name)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// waitGossip waits until tp's node sees every node of want on tp's
// gossip.
func waitGossip(t *testing.T, ctx context.Context, tp *topic.Topic, want ...peer.ID) {
	t.Helper()
	if err := topic.Join(tp); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		got := topic.GossipPeers(tp)
		for _, p := range want {
			if !slices.Contains(got, p) {
				return false
			}
		}
		return true
	}, func() string {
		return fmt.Sprintf("the gossip of %s never reached %v (it has %v)", tp.ID(), want, topic.GossipPeers(tp))
	})
}

// collect reads messages from sub until it has n or ctx ends.
func collect(ctx context.Context, sub *topic.Subscription, n int) ([]topic.Message, error) {
	var out []topic.Message
	for len(out) < n {
		m, err := sub.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

func subscribe(t *testing.T, ctx context.Context, tp *topic.Topic) *topic.Subscription {
	t.Helper()
	sub, err := tp.Subscribe(ctx, topic.SubscribeOptions{})
	if err != nil {
		t.Fatalf("subscribe to %s: %v", tp.ID(), err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// TestFanOut publishes on one node to subscribers on three others: each
// gets every message, signed by the owner.
func TestFanOut(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, time.Minute)
	owner := c.Node(0)
	tp, err := owner.Topics().Create(ctx, "events", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var subs []*topic.Subscription
	for i := 1; i < 4; i++ {
		if _, err := tp.Grant(ctx, c.Node(i).UserID(), topic.Subscribe, time.Time{}); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, subscribe(t, ctx, open(t, ctx, c.Node(i), owner.UserID(), "events")))
	}
	waitGossip(t, ctx, tp, c.IDs()[1:]...)
	const n = 50
	for i := range n {
		if _, err := tp.Publish(ctx, fmt.Appendf(nil, "m%d", i), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, sub := range subs {
		got, err := collect(ctx, sub, n)
		if err != nil {
			t.Fatalf("subscriber %d: after %d messages: %v", i+1, len(got), err)
		}
		seen := map[string]bool{}
		for _, m := range got {
			if m.Publisher != owner.UserID() || m.Topic != tp.ID() {
				t.Fatalf("subscriber %d: message %q from %s on %s", i+1, m.Data, m.Publisher, m.Topic)
			}
			seen[string(m.Data)] = true
		}
		for j := range n {
			if !seen[fmt.Sprintf("m%d", j)] {
				t.Fatalf("subscriber %d missed m%d", i+1, j)
			}
		}
	}
	if r := topic.RatesOf(tp); r.Published != n {
		t.Fatalf("owner's rates: %+v, want %d published", r, n)
	}
	info, err := tp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != tp.ID() || len(info.Grants) != 3 || info.Rates.Published != n {
		t.Fatalf("info: %+v", info)
	}
	found := false
	for _, s := range owner.Topics().List() {
		found = found || (s.ID == tp.ID() && s.Role == "owner" && s.Rates.Published == n)
	}
	if !found {
		t.Fatalf("list: %+v", owner.Topics().List())
	}

	// Deleted: gone from the list, and nothing more is published.
	if err := tp.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range owner.Topics().List() {
		if s.ID == tp.ID() {
			t.Fatalf("listed after its deletion: %+v", s)
		}
	}
	if _, err := tp.Publish(ctx, []byte("late"), topic.PublishOptions{}); !errors.Is(err, topic.ErrNotFound) {
		t.Fatalf("a publish after the deletion: %v", err)
	}
}

// TestGrantedPublisher: the owner grants publish to another user, who
// publishes; a user without a grant cannot; once revoked, the publisher
// is refused, and nothing it publishes after reaches the owner's node.
func TestGrantedPublisher(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, time.Minute)
	owner, pubNode, subNode, stranger := c.Node(0), c.Node(1), c.Node(2), c.Node(3)
	tp, err := owner.Topics().Create(ctx, "orders", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := tp.Grant(ctx, pubNode.UserID(), topic.Publish, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, subNode.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ownerSub := subscribe(t, ctx, tp)
	sub := subscribe(t, ctx, open(t, ctx, subNode, owner.UserID(), "orders"))
	ptp := open(t, ctx, pubNode, owner.UserID(), "orders")
	waitGossip(t, ctx, ptp, owner.ID(), subNode.ID())
	if _, err := ptp.Publish(ctx, []byte("from a grantee"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*topic.Subscription{ownerSub, sub} {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != "from a grantee" || m.Publisher != pubNode.UserID() {
			t.Fatalf("got %q from %s", m.Data, m.Publisher)
		}
	}

	// A user with no grant cannot publish, nor subscribe.
	stp := open(t, ctx, stranger, owner.UserID(), "orders")
	if _, err := stp.Publish(ctx, []byte("intruder"), topic.PublishOptions{}); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("a publish without a grant: %v", err)
	}
	if _, err := stp.Subscribe(ctx, topic.SubscribeOptions{}); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("a subscribe without a grant: %v", err)
	}

	// Revoked: refused, and nothing published after reaches the home.
	if err := tp.Revoke(ctx, g.ID()); err != nil {
		t.Fatal(err)
	}
	var refused error
	nubetest.Eventually(t, ctx, func() bool {
		_, refused = ptp.Publish(ctx, []byte("after the revocation"), topic.PublishOptions{})
		return refused != nil
	}, func() string { return "the revoked publisher could still publish" })
	if !errors.Is(refused, topic.ErrNotAuthorised) {
		t.Fatalf("a revoked publisher's publish: %v", refused)
	}
	// The owner's own message is the next its subscriber sees.
	if _, err := tp.Publish(ctx, []byte("owner"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := ownerSub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "owner" {
		t.Fatalf("after the revocation the owner's node delivered %q from %s", m.Data, m.Publisher)
	}
}

// grantChain is a grant's chain as a publisher presents it.
func grantChain(t *testing.T, g *space.Grant) [][]byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(g.Token(), "nubegrant1:"))
	if err != nil {
		t.Fatal(err)
	}
	var links []identity.Envelope
	if err := wire.Unmarshal(b, &links); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range links {
		lb, err := wire.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lb)
	}
	return out
}

// newUser makes a user key that lives in the test alone.
func newUser(t *testing.T) (ed25519.PrivateKey, peer.ID) {
	t.Helper()
	k := identity.Generate()
	id, err := identity.ID(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// hostile is a bare libp2p host with a gossipsub of its own, joined to a
// topic's gossip, which sends whatever it likes, bypassing the API.
type hostile struct {
	h   host.Host
	ps  *pubsub.PubSub
	top *pubsub.Topic
	sub *pubsub.Subscription
}

func newHostile(t *testing.T, ctx context.Context, gossipTopic string, subscribed bool, nodes ...*nube.Node) *hostile {
	t.Helper()
	h := hosttest.Hosts(t, 1)[0]
	pctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(pctx, h, pubsub.WithMaxMessageSize(4<<20), pubsub.WithFloodPublish(true))
	if err != nil {
		t.Fatal(err)
	}
	top, err := ps.Join(gossipTopic)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := top.Subscribe(pubsub.WithBufferSize(1 << 16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	for _, n := range nodes {
		if err := h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool {
		got := top.ListPeers()
		for _, n := range nodes {
			if !subscribed {
				break
			}
			if !slices.Contains(got, n.ID()) {
				return false
			}
		}
		return true
	}, func() string { return "the hostile host never saw the nodes on the topic's gossip" })
	return &hostile{h: h, ps: ps, top: top, sub: sub}
}

// TestHostilePeer: a peer that injects messages into a topic's gossip
// directly, signed by a user with no grant or forged as the owner, has
// every one dropped at the first hop: no subscriber sees one, and the
// peer's score at that node falls below the graylist threshold.
func TestHostilePeer(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	owner, other := c.Node(0), c.Node(1)
	tp, err := owner.Topics().Create(ctx, "feed", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, other.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ownerSub := subscribe(t, ctx, tp)
	otherSub := subscribe(t, ctx, open(t, ctx, other, owner.UserID(), "feed"))
	bad := newHostile(t, ctx, topic.GossipTopic(tp.ID()), true, owner)
	key, user := newUser(t)
	const n = 20
	for i := range n {
		f := topic.Forge{Key: key, Topic: tp.ID(), Publisher: user, At: time.Now(), Data: fmt.Appendf(nil, "spam %d", i)}
		if i%2 == 1 {
			f.Publisher = owner.UserID() // an impostor: signed by key, claiming the owner
		}
		b, err := f.Payload()
		if err != nil {
			t.Fatal(err)
		}
		if err := bad.top.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	nubetest.Eventually(t, ctx, func() bool {
		s, ok := topic.Score(tp, bad.h.ID())
		return ok && s < topic.GraylistThreshold
	}, func() string {
		s, ok := topic.Score(tp, bad.h.ID())
		return fmt.Sprintf("the hostile peer's score is %v (scored: %v), want under %d", s, ok, topic.GraylistThreshold)
	})
	if r := topic.RatesOf(tp); r.Dropped == 0 {
		t.Fatalf("the owner's node dropped nothing: %+v", r)
	}
	if s, ok := topic.Score(tp, other.ID()); ok && s < 0 {
		t.Fatalf("an honest node's score fell to %v", s)
	}
	// The owner's message is the first each subscriber sees.
	if _, err := tp.Publish(ctx, []byte("real"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*topic.Subscription{ownerSub, otherSub} {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != "real" {
			t.Fatalf("subscriber %d got %q from %s", i, m.Data, m.Publisher)
		}
	}
}

// TestSealed: a sealed topic's bodies are ciphertext on the gossip (a
// node without a grant that joins it reads nothing); subscribers read
// them; a revoked subscriber cannot read what is published after.
func TestSealed(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, time.Minute)
	owner, a, b, stranger := c.Node(0), c.Node(1), c.Node(2), c.Node(3)
	tp, err := owner.Topics().Create(ctx, "secret", topic.Options{Sealed: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, a.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	gb, err := tp.Grant(ctx, b.UserID(), topic.Subscribe, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	subA := subscribe(t, ctx, open(t, ctx, a, owner.UserID(), "secret"))
	subB := subscribe(t, ctx, open(t, ctx, b, owner.UserID(), "secret"))
	stp := open(t, ctx, stranger, owner.UserID(), "secret")
	if _, err := stp.Subscribe(ctx, topic.SubscribeOptions{}); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("a subscribe without a grant: %v", err)
	}
	relay := newHostile(t, ctx, topic.GossipTopic(tp.ID()), false, owner)
	waitGossip(t, ctx, tp, a.ID(), b.ID(), relay.h.ID())

	secret := []byte("the launch code is 0000")
	if _, err := tp.Publish(ctx, secret, topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, s := range []*topic.Subscription{subA, subB} {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Data, secret) {
			t.Fatalf("subscriber %d read %q", i, m.Data)
		}
	}
	raw, err := relay.sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw.Data, secret) {
		t.Fatal("the plaintext travels on the gossip")
	}
	body, _, err := topic.Open(raw.Data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, secret) || len(body) < len(secret) {
		t.Fatalf("the relay's body: %q", body)
	}
	if _, err := topic.Unseal(ctx, stp, raw.Data); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("a node without a grant unsealed the body: %v", err)
	}

	if err := tp.Revoke(ctx, gb.ID()); err != nil {
		t.Fatal(err)
	}
	after := []byte("the new code is 1111")
	if _, err := tp.Publish(ctx, after, topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := subA.Next(ctx)
	if err != nil || !bytes.Equal(m.Data, after) {
		t.Fatalf("the remaining subscriber: %q, %v", m.Data, err)
	}
	m, err = subB.Next(ctx)
	if err == nil {
		t.Fatalf("the revoked subscriber read %q", m.Data)
	}
	if !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("the revoked subscriber's error: %v", err)
	}
}

// TestSlowSubscriber: a subscriber that does not read loses messages
// (ErrLagged, then the next ones), while another on the same node and
// the publisher go on at full speed and miss nothing.
func TestSlowSubscriber(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 2*time.Minute)
	owner, reader := c.Node(0), c.Node(1)
	tp, err := owner.Topics().Create(ctx, "ticks", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Grant(ctx, reader.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	rtp := open(t, ctx, reader, owner.UserID(), "ticks")
	slow := subscribe(t, ctx, rtp)
	fast := subscribe(t, ctx, rtp)
	waitGossip(t, ctx, tp, reader.ID())

	const n = 3000
	var mu sync.Mutex
	got := 0
	var fastErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			m, err := fast.Next(ctx)
			if err != nil {
				fastErr = err
				return
			}
			if string(m.Data) != fmt.Sprint(i) {
				fastErr = fmt.Errorf("message %d is %q", i, m.Data)
				return
			}
			mu.Lock()
			got++
			mu.Unlock()
		}
	}()
	for i := range n {
		// The publisher keeps at most 64 messages ahead of the fast
		// reader (the transport's queues are bounded too).
		nubetest.Eventually(t, ctx, func() bool { mu.Lock(); defer mu.Unlock(); return i-got < 64 || fastErr != nil },
			func() string { return fmt.Sprintf("the fast subscriber stalled at %d", got) })
		if _, err := tp.Publish(ctx, fmt.Append(nil, i), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if fastErr != nil {
		t.Fatalf("the fast subscriber: %v", fastErr)
	}
	// The slow one holds its buffer, then learns what it lost, then reads
	// on.
	read, lagged := 0, false
	for !lagged {
		m, err := slow.Next(ctx)
		switch {
		case errors.Is(err, topic.ErrLagged):
			lagged = true
		case err != nil:
			t.Fatalf("the slow subscriber after %d: %v", read, err)
		case string(m.Data) != fmt.Sprint(read):
			t.Fatalf("the slow subscriber's message %d is %q", read, m.Data)
		default:
			read++
		}
	}
	if read == 0 || read >= n {
		t.Fatalf("the slow subscriber read %d before its lag error", read)
	}
	// It reads on with what comes next.
	if _, err := tp.Publish(ctx, fmt.Append(nil, n), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := slow.Next(ctx)
	if err != nil {
		t.Fatalf("after its lag error: %v", err)
	}
	var k int
	if _, err := fmt.Sscan(string(m.Data), &k); err != nil || k <= read {
		t.Fatalf("after its lag error the slow subscriber read %q", m.Data)
	}
	t.Logf("the slow subscriber read %d, lost %d, then went on at %d", read, k-read, k)
}

// TestBroadcast: a message the topic's home broadcasts with an offset (as
// a durable topic's holder does after a commit) reaches live subscribers
// with it; a node that holds nothing cannot send one.
func TestBroadcast(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	owner, reader, other := c.Node(0), c.Node(1), c.Node(2)
	tp, err := owner.Topics().Create(ctx, "log", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*nube.Node{reader, other} {
		if _, err := tp.Grant(ctx, n.UserID(), topic.Publish|topic.Subscribe, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	sub := subscribe(t, ctx, open(t, ctx, reader, owner.UserID(), "log"))
	waitGossip(t, ctx, tp, reader.ID())
	otp := open(t, ctx, other, owner.UserID(), "log")
	waitGossip(t, ctx, otp, reader.ID())
	if err := topic.Broadcast(ctx, otp, 9, []byte("forged offset")); err == nil {
		t.Fatal("a node that holds nothing broadcast a message with an offset")
	}
	if err := topic.Broadcast(ctx, tp, 7, []byte("stored")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "stored" || m.Offset != 7 {
		t.Fatalf("got %q at offset %d", m.Data, m.Offset)
	}
}
