package nube_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestAttack40AnotherUsersRemoval: "nodes accept only revocations signed
// by their own user" does not hold on a node that joins another user while
// it runs with a user key of its own (User().Join answers Restart: it acts
// as the new user from its next start). join() files the new user's
// inviter and the new user's revocations into the SAME nodes book that
// the node's current user's nodes live in, and nodeBook.revoked looks a
// node up by ID whatever user signed the revocation. So user Y, by
// revoking a node of user X (anyone may sign a revocation of any node ID)
// and handing an invite to one of X's nodes, makes that node treat X's
// node as removed by X: it drops out of X's ledger trust, runs and space
// placement there, and `nube user nodes` shows it removed; Y's inviter is
// listed as one of X's nodes. After the restart the book goes on mixing:
// X's nodes are listed as Y's, and X's removals count for Y.
//
// What should happen: a node counts only its user's revocations
// (nodeBook.revoked checks r.User against the node's user), and a join
// into another user neither adds to nor reads from the current user's
// book (it keeps the new user's inviter and revocations for after the
// restart, e.g. in user.cert, and the book is reset when the user
// changes).
func TestAttack40AnotherUsersRemoval(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, time.Minute)
	a, b, y := c.Node(0), c.Node(1), c.Node(2) // a: user X; b joins X; y: user Y

	inv, err := a.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.User().Join(ctx, inv); err != nil {
		t.Fatal(err)
	}
	// User Y "removes" X's node b: a revocation Y's key signs.
	if _, err := y.User().Remove(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	// a's owner joins a to user Y (from its next start).
	inv, err = y.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.User().Join(ctx, inv); err != nil {
		t.Fatal(err)
	}

	for _, un := range a.User().Nodes() {
		if un.ID == b.ID() && un.Removed != nil {
			t.Errorf("a lists X's node b as removed by X: %+v", un)
		}
		if un.ID == y.ID() {
			t.Errorf("a lists Y's node as one of X's: %+v", un)
		}
	}
	// a still runs as X: X's space on X's node b is refused as removed.
	if _, err := a.Spaces().Create(ctx, "x-on-b", space.Policy{On: []peer.ID{b.ID()}}); errors.Is(err, nodecert.ErrRevoked) {
		t.Errorf("a space of user X on X's node b: %v", err)
	}
}
