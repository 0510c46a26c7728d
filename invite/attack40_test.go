package invite_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nubecloud/nube/invite"
)

// TestAttack40ParseNoPeerIDs: Parse says it checks an invite's shape, but
// peer.ID.Validate checks only that an ID is not empty, and the wire
// decoder takes a peer.ID as any CBOR text string. So an invite whose
// inviter and user are "x" and "../y" parses; the joining node then dials
// a peer that cannot exist, or (with --join-user) starts as a user whose
// ID has no key, failing late and far from the cause.
//
// What should happen: Parse refuses it (ErrBadInvite), e.g. in check:
//
//	if _, err := in.User.ExtractPublicKey(); err != nil {…}   // a user is an ed25519 key
//	if d, err := peer.Decode(in.Peer.String()); err != nil || d != in.Peer {…}
func TestAttack40ParseNoPeerIDs(t *testing.T) {
	b, err := cbor.Marshal(map[int]any{
		1: "x", 2: "../y", 3: []string{},
		4: make([]byte, invite.SecretSize), 5: time.Now().Add(time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := invite.Parse(invite.Prefix + base64.RawURLEncoding.EncodeToString(b))
	if !errors.Is(err, invite.ErrBadInvite) {
		t.Fatalf("an invite from peer %q of user %q parsed: %v", in.Peer, in.User, err)
	}
}
