package nodecert_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

// TestAttack40RevocationOfNoNode: a revocation must name a node that is a
// peer ID. DecodeRevocation checks only that Node is not empty, and the
// wire decoder lets a peer.ID through as any CBOR text string (or as any
// multihash, such as a SHA-1 one, whose text form peer.Decode refuses).
// The node keeps the revocations it learns in users/nodes.json, keyed by
// the node's text form, and reads them back with peer.Decode at its next
// start: one such revocation of its user's, once learned, makes the node
// refuse to start ("users/nodes.json: failed to parse peer ID"). A
// library caller of User().Remove(ctx, id) with such an id does it to its
// own node; the HTTP API alone checks the ID (peer.Decode).
//
// What should happen: Revoke and Check (so DecodeRevocation, so
// nodeBook.learn) refuse a Node that does not round-trip through its text
// form, e.g. in Check:
//
//	if d, err := peer.Decode(r.Node.String()); err != nil || d != r.Node { return ErrBadSignature… }
func TestAttack40RevocationOfNoNode(t *testing.T) {
	user := identity.Generate()
	uid, _ := id(user)
	at := time.Unix(1700000000, 0)

	sha1 := peer.ID(append([]byte{0x11, 0x14}, bytes.Repeat([]byte{7}, 20)...))
	viaEncode, err := nodecert.Revoke(user, sha1, at)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := viaEncode.Encode()

	// The same signature, with the node as a CBOR text string.
	dots := peer.ID("../../etc/passwd")
	r, err := nodecert.Revoke(user, dots, at)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := cbor.Marshal(map[int]any{1: []byte(uid), 2: string(dots), 3: r.At, 4: r.Sig})
	if err != nil {
		t.Fatal(err)
	}

	for name, b := range map[string][]byte{"a SHA-1 multihash": b1, "a text string": b2} {
		got, err := nodecert.DecodeRevocation(b)
		if err != nil {
			continue // refused: good
		}
		// What users/nodes.json does with it: a map keyed by the node.
		js, _ := json.Marshal(map[peer.ID]nodecert.Revocation{got.Node: got})
		var back map[peer.ID]nodecert.Revocation
		t.Errorf("a revocation of %s (node %q) decoded; read back from nodes.json: %v", name, got.Node, json.Unmarshal(js, &back))
	}
}
