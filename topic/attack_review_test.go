package topic_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// The attack review's tests on real nodes: node 0 owns the topic, node 1
// holds its log, node 2 is a stranger (a user with no grant on it).

// TestAttackAckPoisonsBatch: attack "one bad command sinks the batch".
// serveAck does not cap the consumer's or the worker's name, and
// serveFetch passes a negative AckWait on; such a command is out of
// decodeBatch's bounds, so every holder refuses the whole raft entry it
// is in, and every honest publish gathered into the same batch fails.
// A stranger (or, once the Subscribe check is in, any subscriber) that
// keeps sending them makes the topic unwritable. Fix: check the bounds
// decodeBatch checks (names ≤ maxConsumerName, AckWait ≥ 0) in serveAck
// and serveFetch before proposing; better, have the log refuse one
// command, not the batch.
func TestAttackAckPoisonsBatch(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 60*time.Second)
	tp := durableTopic(t, ctx, c, "poison", topic.Retention{Count: 1000}, 1)
	if _, err := tp.Publish(ctx, []byte("warm"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	holder := c.Node(1).ID()
	evil := openOn(t, ctx, c, 2, tp)
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	long := strings.Repeat("x", 200)
	for range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for actx.Err() == nil {
				topic.AttackAck(actx, evil, holder, long, "w", nil)
			}
		}()
		go func() {
			defer wg.Done()
			for actx.Err() == nil {
				topic.AttackFetch(actx, evil, holder, "c", "w", -1)
			}
		}()
	}
	var mu sync.Mutex
	failed := 0
	var last error
	var pw sync.WaitGroup
	for range 4 {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for range 25 {
				if _, err := tp.Publish(ctx, []byte("honest"), topic.PublishOptions{}); err != nil {
					mu.Lock()
					failed++
					last = err
					mu.Unlock()
				}
			}
		}()
	}
	pw.Wait()
	stop()
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of 100 honest publishes failed while a stranger sent acks with a long consumer name and fetches with a negative ack wait; last: %v", failed, last)
	}
}

// TestAttackReplayStoredTwice: attack "replay a signed message into the
// log". A holder stores any envelope whose publisher may publish, from
// any caller, and dedups a publish without an ID by the caller's nonce,
// which the caller chooses; nor does it look at the record's time. So
// anyone who has seen a message (any subscriber; any node on a public
// topic's gossip, where the holders broadcast the envelopes) can store
// it again and again, each time at a new offset, signed by its honest
// publisher ("pay 10" paid twice). With an ID it works once the dedup
// window (two minutes) has passed. Fix: dedup by the envelope itself
// (its hash, or the publisher and its signed time), not by a nonce the
// caller picks; and refuse records stamped further behind the log's
// clock than the dedup window.
func TestAttackReplayStoredTwice(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	tp := durableTopic(t, ctx, c, "pay", topic.Retention{Count: 1000}, 1)
	holder := c.Node(1).ID()
	ack, err := tp.Publish(ctx, []byte("pay 10"), topic.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// What a subscriber (here the owner) read of the log.
	_, raws, _, err := topic.AttackRead(ctx, tp, holder, ack.Offset)
	if err != nil || len(raws) == 0 {
		t.Fatalf("read: %v, %d", err, len(raws))
	}
	evil := openOn(t, ctx, c, 2, tp)
	off, dup, err := topic.AttackPublish(ctx, evil, holder, raws[0], "replayed")
	if err == nil && !(dup && off == ack.Offset) {
		t.Fatalf("a replay of the owner's message (offset %d) by a stranger was stored again at offset %d", ack.Offset, off)
	}
}

// TestAttackStrangerReadsLog: closed hole: a holder serves a
// read of the log to any caller, without checking the Subscribe right.
func TestAttackStrangerReadsLog(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	// No grants: durableTopic would grant every user of the cluster.
	tp, err := c.Node(0).Topics().Create(ctx, "private", topic.Options{Retain: topic.Retention{Count: 1000}, Placement: space.Policy{On: []peer.ID{c.Node(1).ID()}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Publish(ctx, []byte("secret"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	evil := openOn(t, ctx, c, 2, tp)
	offs, _, _, err := topic.AttackRead(ctx, evil, c.Node(1).ID(), 0)
	if err == nil && len(offs) > 0 {
		t.Fatalf("a user with no grant read offsets %v of the log", offs)
	}
}

// TestAttackStrangerSetsRetention: closed hole: a holder
// that cannot read the topic's config takes the retention of the first
// caller; a stranger who wakes the log first with Count 1 makes the
// holders drop all but the newest message.
func TestAttackStrangerSetsRetention(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	tp := durableTopic(t, ctx, c, "kept", topic.Retention{Count: 1000}, 1)
	holder := c.Node(1).ID()
	evil := openOn(t, ctx, c, 2, tp)
	if err := topic.AttackWake(ctx, evil, holder, topic.Retention{Count: 1}); err != nil {
		t.Logf("wake: %v", err)
	}
	for range 3 {
		if _, err := tp.Publish(ctx, []byte("keep me"), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	offs, _, _, err := topic.AttackRead(ctx, tp, holder, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 3 {
		t.Fatalf("the holder kept offsets %v of 3 (the topic's retention is 1000; a stranger's wake said 1)", offs)
	}
}

// TestAttackPublicDurableUnreadable: not an attack, a break found on the
// way. Topic.message (the durable reader's and the consumer's) unseals
// every stored body, sealed topic or not: on a public durable topic each
// message fails to open, is logged and skipped, and Next never returns
// one. (TestDurablePublishSubscribe fails for the same reason.) Fix:
// unseal only when the topic's config says Sealed (and then refuse an
// unsealed body).
func TestAttackPublicDurableUnreadable(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	tp, err := c.Node(0).Topics().Create(ctx, "public", topic.Options{Retain: topic.Retention{Count: 10}, Placement: space.Policy{Local: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Publish(ctx, []byte("hello"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := tp.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := s.Next(nctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the owner's subscription from offset 0 of a public durable topic got nothing in 10 s: every stored body is unsealed, and fails")
	}
	if err != nil || string(m.Data) != "hello" {
		t.Fatalf("read %q, %v", m.Data, err)
	}
}

// TestAttackRevokedPublisherFloodsUnpenalised: attack "a revoked
// publisher floods the relays for free". A message whose chain was
// revoked is judged stale (dropped, the sender not penalised) whenever
// the chain held at the time the message claims, ignoring revocations;
// that time is the publisher's own stamp, so a revoked publisher that
// goes on signing fresh messages is never penalised, however long after
// the revocation: each costs every relay a signature check, and its peer
// is never graylisted, where a user with no grant at all is after 4.
// (TestAttacks asserts "ignore" for such a message right after the
// revocation, which is right then; it must not stay so.) Fix: remember
// when this node learned of each revocation (or carry the revoking
// head's time) and treat as stale only messages stamped before that plus
// HeadTTL and the clock window; later ones are rejected.
func TestAttackRevokedPublisherFloodsUnpenalised(t *testing.T) {
	if testing.Short() {
		t.Skip("short: waits for the clock window to pass after a revocation")
	}
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, 3*time.Minute)
	alpha, err := c.Node(0).Topics().Create(ctx, "alpha", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, user := newUser(t)
	g, err := alpha.Grant(ctx, user, topic.Publish, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	chain := grantChain(t, g)
	_, relay := newUser(t)
	if err := alpha.Revoke(ctx, g.ID()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// Past the clock window (30 s ahead, 90 s behind) and HeadTTL, no
	// honest node signs under the old chain: a message stamped now is a
	// flood. Poll until it is judged "reject", for at most 100 s.
	deadline := revoked.Add(100 * time.Second)
	var judged string
	for time.Now().Before(deadline) {
		b, err := topic.Forge{Key: key, Topic: alpha.ID(), Publisher: user, At: time.Now(), Data: []byte("spam"), Chain: chain}.Payload()
		if err != nil {
			t.Fatal(err)
		}
		if judged = topic.Judge(ctx, alpha, relay, b); judged == "reject" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Fatalf("100 s after the revocation, a message the revoked publisher signed just now is still judged %q: it floods unpenalised", judged)
}

// TestAttackStrangerLeadsTheLog: attack "a stranger joins (leads) the
// raft group". A holder that does not yet keep a topic's log opens it on
// any caller's wake, and joins the group through the peer the caller
// names (wakeReq.Join), which it then lets speak raft to it; openLog
// checks that this node is a holder, not that the peer it joins through
// is one, and the log's group has no Admit. So a stranger forms a group
// of the log's name on its own node, adds the holder, wakes it with
// Join set to itself, and becomes the log's leader: it writes what it
// likes into the log (here a message of a user with no grant, which the
// holder applies without any check) and every honest publish goes
// through it. Fix: in openLog refuse a Join peer that is not one of the
// space's holders, and open the group with Admit = "a holder of the
// topic's space, as its newest head says" (as the ledger does).
func TestAttackStrangerLeadsTheLog(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 60*time.Second)
	tp := durableTopic(t, ctx, c, "hijack", topic.Retention{Count: 1000}, 1)
	holder := c.Node(1).ID()
	evil := openOn(t, ctx, c, 2, tp)

	// The stranger's group of the log's name, with itself as leader.
	g, err := c.Node(2).Groups().Open(ctx, topic.GroupName(tp.ID()), group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool { return g.Leader() == c.Node(2).ID() }, func() string { return "the stranger's group has no leader" })
	if err := g.AddMember(ctx, holder); err != nil {
		t.Fatal(err)
	}
	if err := topic.AttackWakeJoin(ctx, evil, holder, c.Node(2).ID()); err != nil {
		t.Logf("wake with join: %v (refused: the attack held)", err)
	}
	key, user := newUser(t) // a user with no grant
	raw, err := topic.Forge{Key: key, Topic: tp.ID(), Publisher: user, At: time.Now(), Data: []byte("forged")}.Envelope()
	if err != nil {
		t.Fatal(err)
	}
	b, err := topic.AttackBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = g.Apply(actx, b) // the stranger has no machine: its own answer is an error, the entry commits anyway
	cancel()
	t.Logf("the stranger's apply: %v", err)

	if _, err := tp.Publish(ctx, []byte("honest"), topic.PublishOptions{}); err != nil {
		t.Logf("the owner's publish: %v", err)
	}
	// The holder applies what it was sent in a moment: wait for the log
	// to hold something (the owner's message once this is fixed).
	var raws [][]byte
	nubetest.Eventually(t, ctx, func() bool {
		_, raws, _, err = topic.AttackRead(ctx, tp, holder, 0)
		return err == nil && len(raws) > 0
	}, func() string { return fmt.Sprintf("the holder's log stays empty (%v)", err) })
	for i, r := range raws {
		p, data, err := topic.EnvelopePublisher(r)
		if err != nil {
			t.Fatal(err)
		}
		if p != tp.Owner() {
			t.Fatalf("message %d of the owner's log, %q, is of %s, a user with no grant, written by a stranger that leads the log's group", i, data, p)
		}
	}
}

// TestAttackReplayOfAnOffsetMessage: attack "replay a holder's broadcast
// after the seen cache forgot it". A message with an offset skips the
// time window (only its sender is checked to be a holder), and gossipsub
// names a message by its payload's hash, remembered for seenTTL (130 s).
// Any node on the gossip that kept a holder's broadcast (its pubsub
// envelope signed by the holder, which it may resend as is) can send it
// again after seenTTL: every node accepts it again and its live
// subscribers get offset N a second time, long after and out of order
// (and a message of a publisher since revoked is only "stale"). Here:
// a payload with an offset, from the topic's home, stamped an hour ago,
// is accepted. Fix: apply checkTime to messages with an offset too (a
// holder broadcasts a message as soon as it is stored, within a
// publish's retries of its stamp), so a replay past seenTTL is outside
// the window.
func TestAttackReplayOfAnOffsetMessage(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, 30*time.Second)
	owner := c.Node(0)
	alpha, err := owner.Topics().Create(ctx, "alpha", topic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, user := newUser(t)
	g, err := alpha.Grant(ctx, user, topic.Publish, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := topic.Forge{Key: key, Topic: alpha.ID(), Publisher: user, At: time.Now().Add(-time.Hour), Data: []byte("pay 10"), Chain: grantChain(t, g), Offset: 7}.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if j := topic.Judge(ctx, alpha, owner.ID(), b); j == "accept" {
		t.Fatalf("a message with offset 7 stamped an hour ago, resent as the home's broadcast, is judged %q: a replay past the seen cache is delivered again", j)
	}
}

// TestAttackMaxMessageOnDurable: the cluster side of
// TestAttackBatchOverGroupCap. A body of MaxMessage, which Publish takes,
// makes an entry over what the group stores: it can never be stored, and
// (with other publishes gathered beside it) fails theirs too.
func TestAttackMaxMessageOnDurable(t *testing.T) {
	c := nubetest.Cluster(t, 1, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 60*time.Second)
	tp, err := c.Node(0).Topics().Create(ctx, "big", topic.Options{Retain: topic.Retention{Count: 10}, Placement: space.Policy{Local: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Publish(ctx, make([]byte, topic.MaxMessage), topic.PublishOptions{}); err != nil {
		t.Fatalf("a body of MaxMessage (%d bytes) on a durable topic: %v", topic.MaxMessage, err)
	}
}
