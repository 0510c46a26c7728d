package identity

import (
	"crypto/ed25519"
	"errors"
	"testing"
)

func TestCert(t *testing.T) {
	user, other := Generate(), Generate()
	node, err := ID(Generate().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := ID(Generate().Public().(ed25519.PublicKey))
	c, err := NewCert(user, node)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(node); err != nil {
		t.Fatalf("a good cert: %v", err)
	}
	if err := c.Check(elsewhere); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a cert shown for another node: %v", err)
	}
	forged := c
	forged.User, _ = ID(other.Public().(ed25519.PublicKey))
	if err := forged.Check(node); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a cert claiming another user: %v", err)
	}
	if err := (Cert{}).Check(node); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("an empty cert: %v", err)
	}
	if err := Verify("not-a-key", "d", nil, nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a signer that names no key: %v", err)
	}
}
