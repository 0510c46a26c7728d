package service

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// FuzzParseMemo feeds whatever a peer may answer to the memo record
// decoder: it must refuse, never panic, and what it takes must be signed
// by the runner it names, with a key and a hash of the right size.
func FuzzParseMemo(f *testing.F) {
	key := identity.Generate()
	h, _ := multihash.Sum([]byte("out"), multihash.SHA2_256, -1)
	b := memoBody{Key: bytes.Repeat([]byte{1}, 32), Output: cid.NewCidV1(cid.Raw, h).Bytes(), Hash: sum([]byte("out")), Runner: key.Public().(ed25519.PublicKey)}
	e, _ := identity.Seal(key, memoDomain, &b)
	good, _ := wire.Marshal(e)
	f.Add(good)
	f.Add([]byte{0xa0})
	f.Add(bytes.Repeat([]byte{0xff}, MaxMemoSize+1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		mm, err := ParseMemo(raw)
		if err != nil {
			return
		}
		if len(raw) > MaxMemoSize || len(mm.Key) != 32 || len(mm.Hash) != 32 || mm.Runner == "" {
			t.Fatalf("took %+v from %d bytes", mm, len(raw))
		}
	})
}
