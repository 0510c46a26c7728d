package nodecert

import (
	"crypto"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

const revokeDomain = "nube node revocation v1\n"

// MaxRevocation caps the bytes of an encoded Revocation a node decodes:
// one is two IDs, a time and a signature, about 150 bytes.
const MaxRevocation = 1 << 10

// Revocation is a user's word that a node is no longer theirs: the user
// key's signature over the node's ID and the time it was removed. A cert
// of a node its user revoked counts for nothing, wherever it is shown, for
// good: a node once removed joins again only under a new node key.
type Revocation struct {
	User peer.ID `cbor:"1,keyasint" json:"user"`
	Node peer.ID `cbor:"2,keyasint" json:"node"`
	At   int64   `cbor:"3,keyasint" json:"at"` // Unix seconds
	Sig  []byte  `cbor:"4,keyasint" json:"sig"`
}

// Revoke makes the revocation of node under the user key, dated at.
func Revoke(user crypto.Signer, node peer.ID, at time.Time) (Revocation, error) {
	id, err := identity.SignerID(user)
	if err != nil {
		return Revocation{}, err
	}
	r := Revocation{User: id, Node: node, At: at.Unix()}
	if r.Sig, err = identity.Sign(user, revokeDomain, r.body()); err != nil {
		return Revocation{}, err
	}
	return r, nil
}

func (r Revocation) body() []byte {
	return fmt.Appendf(nil, "%s\n%s\n%d", r.User, r.Node, r.At)
}

// Check verifies that r is r.User's signature removing r.Node.
func (r Revocation) Check() error {
	if r.User == "" || r.Node == "" {
		return fmt.Errorf("%w: revocation names no user or no node", identity.ErrBadSignature)
	}
	if d, err := peer.Decode(r.Node.String()); err != nil || d != r.Node {
		return fmt.Errorf("%w: revocation of %q, which is no peer ID", identity.ErrBadSignature, r.Node)
	}
	if err := identity.Verify(r.User, revokeDomain, r.body(), r.Sig); err != nil {
		return fmt.Errorf("revocation of %s: %w", r.Node, err)
	}
	return nil
}

// Encode returns r's wire form.
func (r Revocation) Encode() ([]byte, error) { return wire.Marshal(r) }

// DecodeRevocation reads a revocation from its wire form and checks its
// signature: what it returns without error is the user's word.
func DecodeRevocation(b []byte) (Revocation, error) {
	var r Revocation
	if len(b) > MaxRevocation {
		return r, fmt.Errorf("%w: a revocation of %d bytes (the most is %d)", identity.ErrBadSignature, len(b), MaxRevocation)
	}
	if err := wire.Unmarshal(b, &r); err != nil {
		return Revocation{}, fmt.Errorf("%w: revocation: %v", identity.ErrBadSignature, err)
	}
	if err := r.Check(); err != nil {
		return Revocation{}, err
	}
	return r, nil
}

// ErrRevoked reports a node whose cert is good but whose user has removed
// it since: a refusal (errcode.Refused) wherever the node asks to be served
// as its user's.
var ErrRevoked = errcode.New(errcode.Refused, "node removed by its user")
