package identity

import (
	"crypto/ed25519"
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

// Sign signs body under domain, a string that keeps a signature on one kind
// of record from ever passing for one on another.
func Sign(key ed25519.PrivateKey, domain string, body []byte) []byte {
	return ed25519.Sign(key, append([]byte(domain), body...))
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

const certDomain = "nube node cert v1\n"

// Cert is a user's word that a node is theirs: the user key's signature
// over the node's ID. A node shows it to peers that serve only its user.
type Cert struct {
	User peer.ID `cbor:"1,keyasint" json:"user"`
	Sig  []byte  `cbor:"2,keyasint" json:"sig"`
}

// NewCert makes the cert of node under the user key.
func NewCert(user ed25519.PrivateKey, node peer.ID) (Cert, error) {
	id, err := ID(user.Public().(ed25519.PublicKey))
	if err != nil {
		return Cert{}, err
	}
	return Cert{User: id, Sig: Sign(user, certDomain, []byte(node))}, nil
}

// Check verifies that c makes node one of c.User's nodes.
func (c Cert) Check(node peer.ID) error {
	if c.User == "" {
		return fmt.Errorf("%w: node cert names no user", ErrBadSignature)
	}
	if err := Verify(c.User, certDomain, []byte(node), c.Sig); err != nil {
		return fmt.Errorf("node cert of %s: %w", node, err)
	}
	return nil
}
