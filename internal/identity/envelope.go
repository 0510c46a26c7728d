package identity

import (
	"crypto"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// Envelope is a signed record as it travels: the record's exact encoded
// bytes (deterministic CBOR) and a signature over a domain string followed
// by those bytes. The domain keeps a signature on one kind of record from
// ever passing for one on another; the signer is named inside the record
// (its payer, its owner, its publisher), so the envelope carries no key.
//
// It is the one signed shape of every layer: a space's heads, grant links
// and changes, a ledger transaction's body and its payer's signature, a
// service descriptor. Their encodings are this struct's (fields 1 and 2).
type Envelope struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

// Record is a record that names who must have signed it: Open checks the
// signature against that key. An error means the record names no usable
// key, and Open returns it.
type Record interface {
	Signer() (peer.ID, error)
}

// Seal encodes v and signs it under domain with s, an ed25519 signer.
func Seal(s crypto.Signer, domain string, v any) (Envelope, error) {
	b, err := wire.Marshal(v)
	if err != nil {
		return Envelope{}, err
	}
	sig, err := Sign(s, domain, b)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Body: b, Sig: sig}, nil
}

// Open decodes e's body into v and checks that the signer v names signed it
// under domain, and returns that signer. A body that does not decode is an
// error wrapping wire's; a signature that does not verify, one wrapping
// ErrBadSignature. The caller caps e's size before it decodes e, and
// checks v's other fields after.
func (e Envelope) Open(domain string, v Record) (peer.ID, error) {
	if err := wire.Unmarshal(e.Body, v); err != nil {
		return "", fmt.Errorf("signed body: %w", err)
	}
	by, err := v.Signer()
	if err != nil {
		return "", err
	}
	return by, e.Verify(domain, by)
}

// Verify checks that by signed e under domain, for a caller that decoded
// the body itself.
func (e Envelope) Verify(domain string, by peer.ID) error {
	return Verify(by, domain, e.Body, e.Sig)
}
