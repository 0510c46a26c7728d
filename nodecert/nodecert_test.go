package nodecert_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

func id(k ed25519.PrivateKey) (peer.ID, error) { return identity.ID(k.Public().(ed25519.PublicKey)) }

func TestCert(t *testing.T) {
	user, other := identity.Generate(), identity.Generate()
	node, err := id(identity.Generate())
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := id(identity.Generate())
	c, err := nodecert.New(user, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(node); err != nil {
		t.Fatalf("a good cert: %v", err)
	}
	if err := c.Check(elsewhere); !errors.Is(err, nodecert.ErrBadSignature) {
		t.Fatalf("a cert shown for another node: %v", err)
	}
	forged := c
	forged.User, _ = id(other)
	if err := forged.Check(node); !errors.Is(err, nodecert.ErrBadSignature) {
		t.Fatalf("a cert claiming another user: %v", err)
	}
	if err := (nodecert.Cert{}).Check(node); !errors.Is(err, nodecert.ErrBadSignature) {
		t.Fatalf("an empty cert: %v", err)
	}
	if err := identity.Verify("not-a-key", "d", nil, nil); !errors.Is(err, nodecert.ErrBadSignature) {
		t.Fatalf("a signer that names no key: %v", err)
	}
}
