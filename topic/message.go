package topic

import (
	"crypto"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// messageDomain is the signature domain of a published message.
const messageDomain = "nube topic message v1"

// MaxEnvelope caps a signed message as it travels: the body, its
// signature, the publisher's grant chain and sealing overhead.
const MaxEnvelope = MaxMessage + 64<<10

// record is what a publisher signs. Data is sealed under the topic key of
// Epoch on a sealed topic. Chain is the publisher's grant chain (the
// space's grant links, owner first); empty for the owner.
type record struct {
	Topic     string   `cbor:"1,keyasint"`
	Publisher peer.ID  `cbor:"2,keyasint"`
	ID        string   `cbor:"3,keyasint,omitempty"`
	Time      int64    `cbor:"4,keyasint"` // unix nanoseconds, by the publisher's clock
	Data      []byte   `cbor:"5,keyasint,omitempty"`
	Epoch     uint64   `cbor:"6,keyasint,omitempty"`
	Chain     [][]byte `cbor:"7,keyasint,omitempty"`
}

// Signer is the publisher named inside the record.
func (r *record) Signer() (peer.ID, error) {
	if r.Publisher == "" {
		return "", fmt.Errorf("%w: no publisher", ErrBadMessage)
	}
	return r.Publisher, nil
}

// MaxIDLen caps a publish ID.
const MaxIDLen = 256

// sealMessage signs r with the publisher's user key.
func sealMessage(key crypto.Signer, r *record) ([]byte, error) {
	env, err := identity.Seal(key, messageDomain, r)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(env)
}

// openMessage decodes raw, checks its size, its shape and its publisher's
// signature, and returns the record. It does not check the publisher's
// right to publish: that is authorise's.
func openMessage(raw []byte) (*record, error) {
	if len(raw) > MaxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(raw), MaxEnvelope)
	}
	var env identity.Envelope
	if err := wire.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	var r record
	if _, err := env.Open(messageDomain, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch {
	case len(r.Data) > MaxMessage+1024:
		return nil, fmt.Errorf("%w: body of %d bytes", ErrTooLarge, len(r.Data))
	case len(r.ID) > MaxIDLen:
		return nil, fmt.Errorf("%w: ID of %d bytes, over %d", ErrBadMessage, len(r.ID), MaxIDLen)
	case r.Topic == "":
		return nil, fmt.Errorf("%w: no topic", ErrBadMessage)
	}
	return &r, nil
}

// when is the record's publish time.
func (r *record) when() time.Time { return time.Unix(0, r.Time) }
