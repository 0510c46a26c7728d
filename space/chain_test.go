package space

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

func testUser(t testing.TB) (ed25519.PrivateKey, peer.ID) {
	k := identity.Generate()
	id, err := identity.ID(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// TestCheckChain: a chain holds for its grantee on its space with its
// rights, until revoked; an empty one for the owner alone.
func TestCheckChain(t *testing.T) {
	owner, ownerID := testUser(t)
	_, to := testUser(t)
	id := ownerID.String() + "/s"
	g, err := extend(nil, owner, grantLink{Space: id, Issuer: ownerID, To: to, Rights: Write | Read, Until: time.Now().Add(time.Hour).Unix(), Nonce: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	l0, _ := marshal(g.links[0])
	chain := [][]byte{l0}
	now := time.Now()
	if until, err := CheckChain(id, chain, to, Write, now, nil); err != nil || until.Unix() != g.body[0].Until {
		t.Fatalf("the grantee: %v, until %v", err, until)
	}
	for name, err := range map[string]error{
		"another user":  second(CheckChain(id, chain, ownerID, Write, now, nil)),
		"another space": second(CheckChain(ownerID.String()+"/t", chain, to, Write, now, nil)),
		"more rights":   second(CheckChain(id, chain, to, Delegate, now, nil)),
		"revoked":       second(CheckChain(id, chain, to, Write, now, []string{g.ID()})),
		"expired":       second(CheckChain(id, chain, to, Write, now.Add(2*time.Hour), nil)),
		"no chain":      second(CheckChain(id, nil, to, Write, now, nil)),
	} {
		if !errors.Is(err, ErrNotAuthorised) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := CheckChain(id, nil, ownerID, Write, now, nil); err != nil {
		t.Errorf("the owner: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func FuzzCheckChain(f *testing.F) {
	owner, ownerID := testUser(f)
	_, to := testUser(f)
	id := ownerID.String() + "/s"
	g, err := extend(nil, owner, grantLink{Space: id, Issuer: ownerID, To: to, Rights: Write | Read, Nonce: []byte{1}})
	if err != nil {
		f.Fatal(err)
	}
	l0, _ := marshal(g.links[0])
	f.Add(l0, []byte{}, uint8(2))
	f.Add(l0, l0, uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, want uint8) {
		chain := [][]byte{a}
		if len(b) > 0 {
			chain = append(chain, b)
		}
		_, err := CheckChain(id, chain, to, Rights(want), time.Now(), nil)
		if err == nil && Rights(want)&^(Read|Write|Delegate) != 0 {
			t.Fatalf("granted rights %d", want)
		}
		if _, err := CheckChain(id, chain, peer.ID("x"), Read, time.Now(), nil); err == nil {
			t.Fatal("a chain held for a user that is no key")
		}
	})
}
