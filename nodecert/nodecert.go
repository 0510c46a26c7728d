// Package nodecert gives a user's cert of a node: the user key's word that
// a node is the user's. A node shows it to peers that serve only its user
// (service runs, ledger receipts and releases), and the ledger keeps it
// beside every member. Anyone can make a cert of any node under their own
// key, so a cert says only who claims the node; what only the node can
// say, the node signs with its own key.
package nodecert

import (
	"crypto"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

// ErrBadSignature is what Check's errors wrap: a cert that does not verify
// for the node it is shown for.
var ErrBadSignature = identity.ErrBadSignature

const certDomain = "nube node cert v1\n"

// Cert is a user's word that a node is theirs: the user key's signature
// over the node's ID. A node shows it to peers that serve only its user.
type Cert struct {
	User peer.ID `cbor:"1,keyasint" json:"user"`
	Sig  []byte  `cbor:"2,keyasint" json:"sig"`
}

// New makes the cert of node under the user key.
func New(user crypto.Signer, node peer.ID) (Cert, error) {
	id, err := identity.SignerID(user)
	if err != nil {
		return Cert{}, err
	}
	sig, err := identity.Sign(user, certDomain, []byte(node))
	if err != nil {
		return Cert{}, err
	}
	return Cert{User: id, Sig: sig}, nil
}

// Check verifies that c makes node one of c.User's nodes.
func (c Cert) Check(node peer.ID) error {
	if c.User == "" {
		return fmt.Errorf("%w: node cert names no user", identity.ErrBadSignature)
	}
	if err := identity.Verify(c.User, certDomain, []byte(node), c.Sig); err != nil {
		return fmt.Errorf("node cert of %s: %w", node, err)
	}
	return nil
}
