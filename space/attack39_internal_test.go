package space

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

// TestAttack39StrangerMakesANodePrepareAHome is the attack: the prepare
// step of a handover (nube.space.home.prepare) checks only that the head
// it is sent is a real head of the node's user's space and that some
// caller asked; it never checks that the caller is the space's home (or
// any node of the user). Heads are public (the DHT keeps them), so a
// stranger of another user sends one to any node of the user that can
// take a home, and that node fetches the whole space from its home:
// each call a download of the space, on a node and at a home that never
// chose to, repeatable at will. Fixed when the prepare is refused to a
// caller that is not the head's home.
func TestAttack39StrangerMakesANodePrepareAHome(t *testing.T) {
	ctx := testCtx(t)
	user := identity.Generate()
	i := 0
	ns := bareNodes(t, 3, func(c *Config) {
		switch i {
		case 0: // the home: holds the user key
			c.UserKey = user
		case 1: // another node of the user, without the user key
			c.UserKey = user
			priv, err := c.Host.Peerstore().PrivKey(c.Host.ID()).Raw()
			if err != nil {
				t.Fatal(err)
			}
			c.NodeKey = ed25519.PrivateKey(priv)
			cert, err := nodecert.New(user, c.Host.ID())
			if err != nil {
				t.Fatal(err)
			}
			c.Cert = &cert
		}
		i++
	})
	home, other, stranger := ns[0], ns[1], ns[2]
	if stranger.user == home.user {
		t.Fatal("the stranger is of the owner's user")
	}
	sp, err := home.m.Create(ctx, "big", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a value the other node was never asked to fetch by its user")
	if err := sp.PutBytes(ctx, "v", secret); err != nil {
		t.Fatal(err)
	}
	// The head, as anyone gets it from the home (or the DHT).
	hr, err := headFn.At(stranger.m.cfg.Remote, home.h.ID()).Call(ctx, headReq{Space: sp.ID()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = prepareHomeFn.At(stranger.m.cfg.Remote, other.h.ID()).Call(ctx, prepareHomeReq{Head: hr.Head})
	if err == nil {
		t.Fatalf("a stranger (user %s) made node %s of user %s prepare to take the home of %s: it fetched the whole space on the stranger's word",
			stranger.user, other.h.ID(), home.user, sp.ID())
	}
	if !errors.Is(err, ErrNotAuthorised) {
		t.Logf("refused, though not as ErrNotAuthorised: %v", err)
	}
}
