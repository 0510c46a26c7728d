package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrBadSignature reports a signature that does not verify, or a key that
// cannot have made one.
var ErrBadSignature = errors.New("signature does not verify")

// PublicKey returns the ed25519 key a user or node ID stands for: such IDs
// carry their key inline.
func PublicKey(id peer.ID) (ed25519.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %s names no key: %v", ErrBadSignature, id, err)
	}
	raw, err := pk.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s is not an ed25519 key", ErrBadSignature, id)
	}
	return ed25519.PublicKey(raw), nil
}

// ErrNotEd25519 reports a signer whose public key is not an ed25519 key:
// every user and node ID names an ed25519 key, so no one could check what
// it signs.
var ErrNotEd25519 = errors.New("not an ed25519 key")

// SignerID checks that s is a signer behind an ed25519 key and returns the
// ID of that key. A nil signer is an error.
func SignerID(s crypto.Signer) (peer.ID, error) {
	if s == nil {
		return "", fmt.Errorf("%w: no signer", ErrNotEd25519)
	}
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: the signer's public key is a %T", ErrNotEd25519, s.Public())
	}
	return ID(pub)
}

// Sign signs body under domain, a string that keeps a signature on one kind
// of record from ever passing for one on another. It signs through s, so
// the key may be held where this process cannot read it (a hardware key,
// an agent): s must be an ed25519 signer, which signs the message itself
// (crypto.Hash(0)), not a digest.
func Sign(s crypto.Signer, domain string, body []byte) ([]byte, error) {
	sig, err := s.Sign(rand.Reader, append([]byte(domain), body...), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("sign: %w: a signature of %d bytes", ErrNotEd25519, len(sig))
	}
	return sig, nil
}

// Verify checks that by signed body under domain.
func Verify(by peer.ID, domain string, body, sig []byte) error {
	pub, err := PublicKey(by)
	if err != nil {
		return err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, append([]byte(domain), body...), sig) {
		return fmt.Errorf("%w: not signed by %s", ErrBadSignature, by)
	}
	return nil
}
