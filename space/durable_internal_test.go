package space

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/nubecloud/nube/internal/identity"
)

// signedHead is a head of OWNER/name at seq, signed by key, encoded.
func signedHead(t testing.TB, key ed25519.PrivateKey, name string, seq uint64) []byte {
	t.Helper()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	s, err := sign(key, headDomain, &head{Owner: owner, Name: name, Seq: seq, Home: owner, Root: locator("x").Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := marshal(s)
	return b
}

func TestHeadValidator(t *testing.T) {
	key, other := identity.Generate(), identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	id := owner.String() + "/docs"
	k := HeadKey(id)
	v1, v2, v3 := signedHead(t, key, "docs", 1), signedHead(t, key, "docs", 2), signedHead(t, key, "docs", 3)
	forged := signedHead(t, other, "docs", 9)
	var hv HeadValidator
	for _, c := range []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"good", k, v2, nil},
		{"another space's key", HeadKey(owner.String() + "/photos"), v2, ErrBadHead},
		{"another namespace", "/ipns/" + id, v2, ErrBadHead},
		{"a key that is no space ID", "/" + HeadNamespace + "/nobody", v2, ErrBadName},
		{"signed by another user", HeadKey(func() string { o, _ := identity.ID(other.Public().(ed25519.PublicKey)); return o.String() }() + "/docs"), forged, nil},
		{"a stranger's head under the owner's key", k, forged, ErrBadHead},
		{"empty", k, nil, ErrBadHead},
		{"too large", k, make([]byte, MaxHeadSize+1), ErrBadHead},
	} {
		err := hv.Validate(c.key, c.value)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	i, err := hv.Select(k, [][]byte{v2, forged, v3, v1, v3})
	if err != nil || i != 2 {
		t.Fatalf("select: %d, %v; want 2 (the first of the newest)", i, err)
	}
	if _, err := hv.Select(k, [][]byte{forged, nil}); err == nil {
		t.Fatal("select chose among values none of which is valid")
	}
}

// FuzzHeadRecord: the DHT hands a validator any key and value from the
// network; it never panics, and what it accepts is a head of the space
// the key names.
func FuzzHeadRecord(f *testing.F) {
	key := identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	f.Add(HeadKey(owner.String()+"/docs"), signedHead(f, key, "docs", 1))
	f.Add("/"+HeadNamespace+"/x/y", []byte{0xa0})
	f.Fuzz(func(t *testing.T, k string, v []byte) {
		h, err := headOfKey(k, v)
		if err == nil && HeadKey(h.id()) != k {
			t.Fatalf("a head of %s accepted under %q", h.id(), k)
		}
		if i, err := (HeadValidator{}).Select(k, [][]byte{v, v}); err == nil && i != 0 {
			t.Fatalf("select of equals chose %d", i)
		}
	})
}
