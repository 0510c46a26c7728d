package nube_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/nubetest"
)

// TestNamesAcrossNodes: a name one node publishes under its user key, and
// under a key of its own, resolves on another node of the same DHT; a raw
// record read on one node is stored on another by routing put.
func TestNamesAcrossNodes(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 2); err != nil {
		t.Fatal(err)
	}
	a, d := c.Node(0), c.Node(3)
	e, err := a.Add(ctx, strings.NewReader("hello, names"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Names().Publish(ctx, "", e.String(), names.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Names().Resolve(ctx, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != "/ipfs/"+e.String() {
		t.Fatalf("node 3 resolved %s to %s, want /ipfs/%s", p.Name, r.Path, e)
	}
	k, err := a.Names().Gen("site")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := a.Names().Publish(ctx, "site", "/ipns/"+p.Name, names.PublishOptions{})
	if err != nil || p2.Name != k.ID {
		t.Fatalf("publish under site: %+v %v", p2, err)
	}
	if r, err := d.Names().Resolve(ctx, k.ID); err != nil || r.Path != "/ipfs/"+e.String() {
		t.Fatalf("resolve a name pointing at a name: %+v %v", r, err)
	}
	raw, err := d.Names().Get(ctx, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node(2).Names().Put(ctx, p.Name, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Names().Resolve(ctx, "/ipns/k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w"); !errors.Is(err, names.ErrNotFound) {
		t.Fatalf("resolve a name nobody published: %v", err)
	}
}

// TestNamesJoinedNode: a node that joined its user without the user key
// cannot publish under it (nube.ErrNoUserKey), but can under a key of its
// own; its "self" is its user's name.
func TestNamesJoinedNode(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, time.Minute)
	a := c.Node(0)
	inv, err := a.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.JoinUser = inv.String()
	for _, ad := range a.Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, ad.String()+"/p2p/"+a.ID().String())
	}
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Names().Publish(ctx, "", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", names.PublishOptions{})
	if !errors.Is(err, nube.ErrNoUserKey) {
		t.Fatalf("publish under the user key on a joined node: %v", err)
	}
	ka, _ := a.Names().Keys()
	kb, _ := b.Names().Keys()
	if !slices.Equal(ka[:1], kb[:1]) {
		t.Fatalf("the joined node's self is %v, its user's %v", kb[0], ka[0])
	}
	if _, err := b.Names().Gen("mine"); err != nil {
		t.Fatal(err)
	}
}

// TestNamesLoneNode: a node with no DHT peers yet publishes (the record is
// kept on it) and resolves its own name.
func TestNamesLoneNode(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, time.Minute)
	n := c.Node(0)
	p, err := n.Names().Publish(ctx, "", "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", names.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := n.Names().Resolve(ctx, p.Name); err != nil || r.Path != "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" {
		t.Fatalf("resolve on the lone node: %+v %v", r, err)
	}
}
