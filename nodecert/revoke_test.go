package nodecert_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

func TestRevocation(t *testing.T) {
	user, other := identity.Generate(), identity.Generate()
	node, _ := id(identity.Generate())
	r, err := nodecert.Revoke(user, node, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := nodecert.DecodeRevocation(b)
	if err != nil || got.Node != node || got.At != 1700000000 {
		t.Fatalf("decode: %+v %v", got, err)
	}
	forged := r
	forged.User, _ = id(other)
	moved := r
	moved.Node, _ = id(identity.Generate())
	redated := r
	redated.At++
	for name, bad := range map[string]nodecert.Revocation{"another user": forged, "another node": moved, "another date": redated, "empty": {}} {
		if err := bad.Check(); !errors.Is(err, nodecert.ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
		b, _ := bad.Encode()
		if _, err := nodecert.DecodeRevocation(b); err == nil {
			t.Errorf("%s decoded", name)
		}
	}
	if _, err := nodecert.DecodeRevocation(make([]byte, nodecert.MaxRevocation+1)); err == nil {
		t.Error("an oversized revocation decoded")
	}
	if !errors.Is(nodecert.ErrRevoked, errcode.ErrRefused) {
		t.Error("ErrRevoked is not a refusal")
	}
}

// FuzzDecodeRevocation: no bytes make the decoder panic, and none but a
// good signature's pass.
func FuzzDecodeRevocation(f *testing.F) {
	node, _ := id(identity.Generate())
	r, _ := nodecert.Revoke(identity.Generate(), node, time.Now())
	b, _ := r.Encode()
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := nodecert.DecodeRevocation(b)
		if err == nil && r.Check() != nil {
			t.Fatal("DecodeRevocation passed a revocation that does not check")
		}
	})
}
