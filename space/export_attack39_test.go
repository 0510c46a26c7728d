package space

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Attack39Head returns the encoded head s's node resolves now (fresh),
// and the length of the home delegation it is signed under.
func Attack39Head(ctx context.Context, s *Space) ([]byte, int, error) {
	v, err := s.resolve(ctx, true)
	if err != nil {
		return nil, 0, err
	}
	b, err := marshal(v.signed)
	return b, len(v.head.Chain), err
}

// Attack39Resign decodes the head b, adds plus to its sequence number,
// names home as its home, and signs it again with key under the same
// delegation: what a node that once held the home can do with its key.
func Attack39Resign(b []byte, key ed25519.PrivateKey, plus uint64, home peer.ID) ([]byte, error) {
	h, _, err := decodeHead(b, "")
	if err != nil {
		return nil, err
	}
	h.Seq += plus
	h.Home = home
	h.Time = time.Now().UnixNano()
	s, err := sign(key, headDomain, h)
	if err != nil {
		return nil, err
	}
	return marshal(s)
}

// Attack39Learn has s's node take the head b as a pushed or found head.
func Attack39Learn(s *Space, b []byte) { s.learn(b, keyring{}) }
