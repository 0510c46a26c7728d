package nube

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

// TestAttack40SpreadPastCap: a node's revocations are kept for good and
// never pruned, and spreadRevocations hands every one it knows to each of
// the user's nodes in ONE nube.user.revoked call, while serveRevoked
// refuses a call of more than maxRevocations (1024). So once a user has
// removed 1025 nodes over the years (short-lived CI machines, say), no
// removal reaches any other node of the user again: each push is refused
// whole, with ErrTooLarge logged at Info, and the removed node keeps being
// served by every node but the one that removed it.
//
// What should happen: the receiver learns every revocation sent, e.g.
// spreadRevocations (and serveJoin's reply) sends them in chunks of at
// most maxRevocations, or only the new one (plus the rest in chunks).
func TestAttack40SpreadPastCap(t *testing.T) {
	key := identity.Generate()
	user, err := identity.ID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	removing, _ := openNodeBook("") // the key-holding node that removes
	var raws [][]byte
	var last peer.ID
	for range maxRevocations + 1 {
		last, _ = identity.ID(identity.Generate().Public().(ed25519.PublicKey))
		r, err := nodecert.Revoke(key, last, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Encode()
		raws = append(raws, b)
	}
	if _, err := removing.learn(user, raws); err != nil {
		t.Fatal(err)
	}

	// Another node of the same user, taking what spreadRevocations sends.
	other := &Node{userID: user, log: slog.New(slog.DiscardHandler)}
	other.nodes, _ = openNodeBook("")
	for _, part := range chunks(removing.encoded(), maxRevocations) { // as spreadRevocations sends them
		if _, err = other.serveRevoked(context.Background(), revokedReq{Revocations: part}); err != nil {
			break
		}
	}
	if err != nil || !other.revoked(last) {
		t.Fatalf("the user's other node did not learn the latest removal (revoked %v): %v", other.revoked(last), err)
	}
}
