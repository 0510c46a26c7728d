package group_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

func fastGroups(_ int, c *nube.Config) { c.GroupHeartbeat = hb }

// formOnNodes opens the group name on the given nodes of c, all members.
func formOnNodes(t *testing.T, ctx context.Context, c *nubetest.C, name string, idx ...int) []*group.Group {
	t.Helper()
	var ids []peer.ID
	for _, i := range idx {
		ids = append(ids, c.Node(i).ID())
	}
	var gs []*group.Group
	for _, i := range idx {
		g, err := c.Node(i).Groups().Open(ctx, name, group.Options{Members: ids})
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	return gs
}

// TestPartition cuts a 5-member group in two (each side bans the other, so
// no connection can form either way): only the majority side accepts
// writes; a write through the minority fails; after the cut heals the
// minority catches up.
func TestPartition(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 5, nubetest.WithConfig(fastGroups))
	ctx := nubetest.Context(t, 2*time.Minute)
	gs := formOnNodes(t, ctx, c, "split", 0, 1, 2, 3, 4)
	leader := waitLeader(t, ctx, gs...)
	if _, err := gs[0].Put(ctx, "before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Put the leader in the minority, so the majority must elect anew.
	var minority, majority []int
	for i := range 5 {
		if c.Node(i).ID() == leader || (len(minority) < 2 && i == 4) {
			minority = append(minority, i)
		}
	}
	if len(minority) < 2 {
		minority = append(minority, 3)
	}
	for i := range 5 {
		if i != minority[0] && i != minority[1] {
			majority = append(majority, i)
		}
	}
	cut := func(ban bool) {
		for _, a := range minority {
			for _, b := range majority {
				if ban {
					c.Node(a).Sys().Ban(c.Node(b).ID(), time.Hour)
					c.Node(b).Sys().Ban(c.Node(a).ID(), time.Hour)
				} else {
					c.Node(a).Sys().Unban(c.Node(b).ID())
					c.Node(b).Sys().Unban(c.Node(a).ID())
				}
			}
		}
	}
	cut(true)
	t.Logf("minority %v (old leader %d), majority %v", minority, minority[0], majority)

	// The majority elects a leader among itself and takes writes.
	for i := range 10 {
		if _, err := gs[majority[i%3]].Put(ctx, "k"+strconv.Itoa(i), []byte("majority")); err != nil {
			t.Fatalf("write on the majority side: %v", err)
		}
	}
	if l := gs[majority[0]].Leader(); l == leader || l == "" {
		t.Fatalf("majority's leader is %v", l)
	}
	// The minority accepts none, through either of its members.
	for _, i := range minority {
		wctx, cancel := context.WithTimeout(ctx, 3*hb)
		_, err := gs[i].Put(wctx, "minority", []byte("no"))
		cancel()
		if err == nil {
			t.Fatalf("member %d in the minority accepted a write", i)
		}
		if !errors.Is(err, group.ErrNoLeader) {
			t.Logf("minority write failed with %v", err)
		}
	}
	cut(false)
	for _, a := range minority {
		for _, b := range majority {
			if err := c.Connect(ctx, a, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The minority catches up: its own state (not a forwarded read) has
	// every write of the majority, and the minority's write never landed.
	want, err := gs[majority[0]].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range minority {
		nubetest.Eventually(t, ctx, func() bool {
			st, _ := gs[i].Status(ctx)
			return st.Applied >= want.Commit
		}, func() string { return fmt.Sprintf("member %d never caught up to index %d", i, want.Commit) })
	}
	if _, err := gs[minority[0]].Get(ctx, "minority"); !errors.Is(err, group.ErrNotFound) {
		t.Fatalf("the minority's write: %v, want not found", err)
	}
	if v, err := gs[minority[1]].Get(ctx, "k9"); err != nil || string(v) != "majority" {
		t.Fatalf("k9 through the minority: %q, %v", v, err)
	}
}

// TestRestartAndMembers restarts a member on its data dir (it rejoins with
// its log), then replaces a member that is down for good with a new node
// that joins through any member.
func TestRestartAndMembers(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 4, nubetest.WithDataDirs(), nubetest.WithConfig(fastGroups))
	ctx := nubetest.Context(t, 2*time.Minute)
	gs := formOnNodes(t, ctx, c, "team", 0, 1, 2)
	leader := waitLeader(t, ctx, gs...)
	for i := range 5 {
		if _, err := gs[i%3].Put(ctx, "k"+strconv.Itoa(i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// Restart a follower: it reopens the group from disk, members ignored.
	f := 0
	for c.Node(f).ID() == leader {
		f++
	}
	n, err := c.Restart(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if names := n.Groups().List(); fmt.Sprint(names) != "[team]" {
		t.Fatalf("groups on disk after restart: %v", names)
	}
	for i := range 3 {
		if i != f {
			if err := c.Connect(ctx, f, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	g, err := n.Groups().Open(ctx, "team", group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gs[f] = g
	if _, err := g.Put(ctx, "after", []byte("restart")); err != nil {
		t.Fatal(err)
	}
	st, err := g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 3 {
		t.Fatalf("status after restart: %+v", st)
	}

	// Member 2 dies for good; the status reports it down.
	dead := 2
	if gs[dead].Leader() == c.Node(dead).ID() {
		dead = (f + 1) % 3
		if dead == f {
			dead = (f + 2) % 3
		}
	}
	deadID := c.Node(dead).ID()
	c.Kill(dead)
	live := (dead + 1) % 3
	nubetest.Eventually(t, ctx, func() bool {
		st, err := gs[live].Status(ctx)
		if err != nil {
			return false
		}
		for _, m := range st.Members {
			if m.ID == deadID {
				return m.State == "down"
			}
		}
		return false
	}, func() string { return "the dead member is not reported down" })

	// Replace it with node 3: add, then join through any member.
	if err := gs[live].RemoveMember(ctx, deadID); err != nil {
		t.Fatal(err)
	}
	newID := c.Node(3).ID()
	if _, err := c.Node(3).Groups().Open(ctx, "team", group.Options{Join: c.Node(live).ID()}); !errors.Is(err, group.ErrNotMember) {
		t.Fatalf("join before being added: %v, want ErrNotMember", err)
	}
	if err := gs[live].AddMember(ctx, newID); err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx, 3, live); err != nil {
		t.Fatal(err)
	}
	g3, err := c.Node(3).Groups().Open(ctx, "team", group.Options{Join: c.Node(live).ID()})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := g3.Get(ctx, "after"); err != nil || string(v) != "restart" {
		t.Fatalf("new member reads %q, %v", v, err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		st, _ := g3.Status(ctx)
		up := 0
		for _, m := range st.Members {
			if m.State == "up" || m.State == "leader" {
				up++
			}
		}
		return up == 3 && len(st.Members) == 3
	}, func() string { st, _ := g3.Status(ctx); return fmt.Sprintf("status after replacing: %+v", st) })
}
