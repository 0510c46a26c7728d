package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
)

// TestVoterBehindRosterBack: a member adds a node to the ledger's raft
// group directly (group.AddMember), skipping the roster and the other
// members' consent. The node is a voter of raft's configuration, but the
// members refuse it: it cannot join the group, and reads no entry.
func TestVoterBehindRosterBack(t *testing.T) {
	c := ledgerCluster(t, 4)
	ctx := nubetest.Context(t, 2*time.Minute)
	g, err := c.Node(0).Groups().Open(ctx, ledger.GroupName, group.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sneak := c.Node(3)
	if err := g.AddMember(ctx, sneak.ID()); err != nil {
		t.Fatal(err)
	}
	jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = sneak.Groups().Open(jctx, ledger.GroupName, group.Options{Join: c.Node(0).ID()})
	if !errors.Is(err, group.ErrNotMember) {
		t.Fatalf("a voter the roster does not name joined the ledger's group: %v", err)
	}
}
