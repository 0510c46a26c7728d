package service

import (
	"crypto"
	"crypto/ed25519"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
)

// Memos returns the memo record the node behind s keeps for the run of d
// on in (with no seed); nil if none.
func Memos(s manager, d *Descriptor, in []byte) []byte {
	return mgr(s).memos.get(memoKey(d.id, in, nil))
}

// PlantMemo makes the node behind s keep raw as its record of the run of
// d on in: a liar serving a record under a key it is not of.
func PlantMemo(s manager, d *Descriptor, in, raw []byte) {
	mgr(s).memos.put(memoKey(d.id, in, nil), raw)
}

// ForgeMemo signs with signer a record of the run of d on in that names
// runner as its signer and out as its output.
func ForgeMemo(signer crypto.Signer, runner ed25519.PublicKey, d *Descriptor, in []byte, out cid.Cid, hash []byte) []byte {
	b := memoBody{Key: memoKey(d.id, in, nil), Output: out.Bytes(), Hash: hash, Runner: runner}
	e, err := identity.Seal(signer, memoDomain, &b)
	if err != nil {
		panic(err)
	}
	raw, _ := wire.Marshal(e)
	return raw
}
