package nube_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// onlySigner is a key that can do nothing but sign, as a hardware key.
type onlySigner struct{ s crypto.Signer }

func (o onlySigner) Public() crypto.PublicKey { return o.s.Public() }
func (o onlySigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, d, opts)
}

// TestLayersTakeSigners: every layer that signs for the user takes its
// key as a crypto.Signer, refuses one that is not ed25519 in Validate
// with identity.ErrNotEd25519, and takes an ed25519 signer that can do
// nothing else (a hardware key), except spaces, which also decrypt with
// the key and say so.
func TestLayersTakeSigners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := hosttest.Hosts(t, 1)[0]
	st, err := content.OpenStore("")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs, err := content.New(ctx, content.Config{Host: h, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ep, err := remote.New(ctx, remote.Config{Host: h})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	gm, err := group.New(ctx, group.Config{Host: h, Remote: ep})
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Close()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hardware := onlySigner{identity.Generate()}
	validate := map[string]func(crypto.Signer) error{
		"service": func(k crypto.Signer) error {
			return service.Config{Host: h, Content: cs, Remote: ep, UserKey: k}.Validate()
		},
		"space": func(k crypto.Signer) error {
			return space.Config{Host: h, Content: cs, Remote: ep, UserKey: k}.Validate()
		},
		"ledger": func(k crypto.Signer) error {
			return ledger.Config{Host: h, Remote: ep, Groups: gm, UserKey: k}.Validate()
		},
	}
	for name, v := range validate {
		if err := v(ec); !errors.Is(err, identity.ErrNotEd25519) {
			t.Errorf("%s took an ECDSA key: %v", name, err)
		}
		if err := v(identity.Generate()); err != nil {
			t.Errorf("%s refused an ed25519 key: %v", name, err)
		}
		err := v(hardware)
		if name == "space" {
			if err == nil {
				t.Errorf("space took a key it cannot decrypt with")
			}
		} else if err != nil {
			t.Errorf("%s refused an ed25519 signer that only signs: %v", name, err)
		}
	}
}
