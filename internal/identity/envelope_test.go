package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

type note struct {
	By   peer.ID `cbor:"1,keyasint"`
	Text string  `cbor:"2,keyasint"`
}

func (n *note) Signer() (peer.ID, error) { return n.By, nil }

// opaque is a signer whose key this process cannot read, as a hardware
// key's: only Public and Sign.
type opaque struct{ s crypto.Signer }

func (o opaque) Public() crypto.PublicKey { return o.s.Public() }
func (o opaque) Sign(r io.Reader, m []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.s.Sign(r, m, opts)
}

func TestEnvelope(t *testing.T) {
	key := opaque{Generate()}
	me, err := SignerID(key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := SignerID(Generate())
	e, err := Seal(key, "test v1\n", &note{By: me, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	var n note
	if by, err := e.Open("test v1\n", &n); err != nil || by != me || n.Text != "hi" {
		t.Fatalf("open a good envelope: %v, %s, %+v", err, by, n)
	}
	if _, err := e.Open("test v2\n", &n); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("open under another domain: %v", err)
	}
	claimed, _ := Seal(key, "test v1\n", &note{By: other, Text: "hi"})
	if _, err := claimed.Open("test v1\n", &n); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("open an envelope that names another signer: %v", err)
	}
	tampered := e
	tampered.Body = append([]byte(nil), e.Body...)
	tampered.Body[len(tampered.Body)-1] ^= 1
	if _, err := tampered.Open("test v1\n", &n); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("open a tampered body: %v", err)
	}
	if _, err := (Envelope{Body: []byte{0xff}}).Open("test v1\n", &n); err == nil || errors.Is(err, ErrBadSignature) {
		t.Fatalf("open a body that is no record: %v", err)
	}
}

func TestSignerNotEd25519(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignerID(ec); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("an ECDSA signer: %v", err)
	}
	if _, err := SignerID(nil); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("no signer: %v", err)
	}
	if _, err := Sign(ec, "test v1\n", nil); !errors.Is(err, ErrNotEd25519) {
		t.Fatalf("a signature by an ECDSA signer: %v", err)
	}
}
