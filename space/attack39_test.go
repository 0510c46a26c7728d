package space_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestAttack39RemovedNodeKeepsSigningHeads is the attack: a node that
// once held a space's home without the user key signs heads under a
// delegation (the user key's link naming it, with its cert). The user
// later removes the node (User().Remove: its cert revoked, a stolen
// laptop), after the home came back. The delegation is never checked
// against the revocations (checkChain looks only at signatures and the
// cert), so the removed node signs a head with a higher sequence number
// naming itself home, under its old link, and a reader of another user
// takes it as the space's newest: the removed node now owns the space
// for every reader that sees the head (DHT Select, pushes), and the real
// home's heads are refused as older. Fixed when a head signed under a
// link to a removed node is refused (the revocation carried in the
// owner's heads, or looked up, as checkChain runs).
func TestAttack39RemovedNodeKeepsSigningHeads(t *testing.T) {
	if testing.Short() {
		t.Skip("short: a cluster and two handovers")
	}
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 2*time.Minute)
	a, cn := c.Node(0), c.Node(1)
	b := joinedNode(t, c, a)
	sp, err := a.Spaces().Create(ctx, "rv", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Home(ctx, b.ID()); err != nil {
		t.Fatalf("hand the home to B: %v", err)
	}
	bs, err := b.Spaces().Open(ctx, "", "rv")
	if err != nil {
		t.Fatal(err)
	}
	// B writes once as home: a head B signs under its delegation.
	if err := bs.PutBytes(ctx, "k2", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	signedByB, chain, err := space.Attack39Head(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if chain == 0 {
		t.Fatal("B's head is not signed under a delegation")
	}
	if err := bs.Home(ctx, a.ID()); err != nil {
		t.Fatalf("hand the home back to A: %v", err)
	}
	if _, err := a.User().Remove(ctx, b.ID()); err != nil {
		t.Fatalf("remove B: %v", err)
	}
	// The owner writes after the removal: its newest head may say so.
	if err := sp.PutBytes(ctx, "k3", []byte("v3")); err != nil {
		t.Fatal(err)
	}
	cs, err := cn.Spaces().Open(ctx, a.UserID(), "rv")
	if err != nil {
		t.Fatal(err)
	}
	before, err := cs.State(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if before.Home != a.ID() {
		t.Fatalf("reader sees home %s, want A", before.Home)
	}
	// B, removed, signs with its own key under its old link.
	raw, err := b.Sys().Host().Peerstore().PrivKey(b.ID()).Raw()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := space.Attack39Resign(signedByB, ed25519.PrivateKey(raw), 1000, b.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := (space.HeadValidator{}).Validate(space.HeadKey(sp.ID()), forged); err == nil {
		t.Logf("the DHT's validator takes the removed node's head too")
	}
	space.Attack39Learn(cs, forged)
	after, err := cs.State(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if after.Home == b.ID() || after.Seq > before.Seq+500 {
		t.Fatalf("a reader took a head signed by removed node %s: seq %d (was %d), home %s; the real home's heads are now older",
			b.ID(), after.Seq, before.Seq, after.Home)
	}
}
