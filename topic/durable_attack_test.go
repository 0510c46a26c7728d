package topic_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// TestDurableStranger: a holder serves reads, consumer fetches, acks and
// info only to a caller whose user may subscribe. A stranger (no grant)
// asking a holder directly is refused, and so is one that shows a cert
// naming the owner it cannot sign, or a grantee's chain that is not its
// own; the grantee, asking the same way, is served.
func TestDurableStranger(t *testing.T) {
	c := nubetest.Cluster(t, 6, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	owner := c.Node(0)
	holders := []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}
	tp, err := owner.Topics().Create(ctx, "private", topic.Options{Retain: topic.Retention{Count: 100}, Placement: space.Policy{On: holders}})
	if err != nil {
		t.Fatal(err)
	}
	reader, stranger := c.Node(4), c.Node(5)
	if reader.UserID() == owner.UserID() || stranger.UserID() == owner.UserID() || stranger.UserID() == reader.UserID() {
		t.Fatal("the test wants three users")
	}
	if _, err := tp.Grant(ctx, reader.UserID(), topic.Subscribe, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "b", "c"} {
		if _, err := tp.Publish(ctx, []byte(m), topic.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rt, st := openOn(t, ctx, c, 4, tp), openOn(t, ctx, c, 5, tp)

	// Through the API the stranger gets no subscription.
	if s, err := st.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0)}); !errors.Is(err, topic.ErrNotAuthorised) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("a stranger's subscribe: %v", err)
	}
	chain, err := topic.ReadChain(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	own := topic.Cert(st)
	forged := &nodecert.Cert{User: owner.UserID(), Sig: own.Sig}
	for _, h := range holders {
		for what, try := range map[string]struct {
			cert  *nodecert.Cert
			chain [][]byte
		}{
			"its own cert, no grant":   {own, nil},
			"a cert naming the owner":  {forged, nil},
			"no cert":                  {nil, nil},
			"the grantee's chain":      {own, chain},
			"a cert naming the reader": {&nodecert.Cert{User: reader.UserID(), Sig: own.Sig}, chain},
		} {
			for call, err := range topic.Direct(ctx, st, h, try.cert, try.chain) {
				if !errors.Is(err, topic.ErrNotAuthorised) {
					t.Errorf("holder %s served a stranger with %s a %s: %v", h, what, call, err)
				}
			}
		}
	}
	// The grantee, the same way, is served.
	for call, err := range topic.Direct(ctx, rt, holders[0], topic.Cert(rt), chain) {
		if err != nil {
			t.Errorf("the grantee's %s: %v", call, err)
		}
	}
	s, err := rt.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := next(t, ctx, s); m.Offset != 1 || string(m.Data) != "a" {
		t.Fatalf("the grantee's first message: %d %q", m.Offset, m.Data)
	}
}

// TestDurableForgedConfig: holders that cannot read the topic's space
// (no grant) keep the retention of the owner's signed config, whatever a
// publisher brings: another topic's config of the same owner (smaller),
// one signed by another key, none.
func TestDurableForgedConfig(t *testing.T) {
	c := nubetest.Cluster(t, 5, nubetest.WithConfig(fast))
	ctx := nubetest.Context(t, 30*time.Second)
	owner := c.Node(0)
	holders := []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}
	kept, err := owner.Topics().Create(ctx, "kept", topic.Options{Retain: topic.Retention{Count: 100}, Placement: space.Policy{On: holders}})
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := owner.Topics().Create(ctx, "tiny", topic.Options{Retain: topic.Retention{Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Grant(ctx, c.Node(4).UserID(), topic.Publish, time.Time{}); err != nil {
		t.Fatal(err)
	}
	small, err := topic.ConfigOf(ctx, tiny)
	if err != nil {
		t.Fatal(err)
	}
	k := identity.Generate()
	kid, err := identity.SignerID(k)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := topic.SignConfig(k, kept.ID(), owner.UserID(), topic.Retention{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	ownedByOther, err := topic.SignConfig(k, kept.ID(), kid, topic.Retention{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	pub := openOn(t, ctx, c, 4, kept)
	// First, before any true config reached the holders.
	for what, cfg := range map[string][]byte{"another topic's": small, "signed by another key": byOther,
		"naming another owner": ownedByOther, "no": nil} {
		if err := topic.PublishRaw(ctx, pub, holders[0], []byte("x"), cfg); err == nil {
			t.Errorf("a publish with %s config was stored", what)
		}
	}
	// The owner's publish brings the true config (to the holder it goes
	// to), and so does an honest publisher's to holders[0]; then the
	// forged ones change nothing.
	if _, err := kept.Publish(ctx, []byte("first"), topic.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	good, err := topic.ConfigOf(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.PublishRaw(ctx, pub, holders[0], []byte("z"), good); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		for _, cfg := range [][]byte{small, byOther, ownedByOther} {
			if err := topic.PublishRaw(ctx, pub, holders[0], []byte("y"), cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	info, err := kept.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.First != 1 || info.Next != 12 {
		t.Fatalf("the log holds offsets %d to %d, want 1 to 11", info.First, info.Next-1)
	}
	if r, ok := topic.HolderRetention(openOn(t, ctx, c, 1, kept)); !ok || r.Count != 100 {
		t.Fatalf("holders[0] keeps %+v (log open: %v), want a count of 100", r, ok)
	}
	for i := 2; i <= 3; i++ {
		if r, _ := topic.HolderRetention(openOn(t, ctx, c, i, kept)); r.Durable() && r.Count != 100 {
			t.Errorf("holder %d keeps %+v", i, r)
		}
	}
}
