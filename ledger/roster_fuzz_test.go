package ledger

import (
	"testing"

	"github.com/nubecloud/nube/internal/wire"
)

// FuzzRoster feeds what another node sends about the ledger's identity to
// the code that judges it: a roster (from an info answer or ledger.json),
// a signed answer checked against a real roster, and a tick's time
// stamps. None may panic; a roster that verifies must have a member set,
// and an answer the fuzzer made up must never pass for a member's.
func FuzzRoster(f *testing.F) {
	ms := members(f, 3)
	_, gb := genesisOf(f, "ledger-1")
	found := entry(f, rosterBody{Ledger: "ledger-1", Members: ids(ms), Genesis: gb}, ms[0], ms[1], ms[2])
	real := chain{found}
	seed, _ := wire.Marshal(real)
	f.Add(seed)
	ans, _ := wire.Marshal(&signedAnswer{Answer: []byte{0xa0}, By: ms[0].id, Sig: make([]byte, 64)})
	f.Add(ans)
	ts, _ := wire.Marshal([]timeStamp{{By: ms[0].id, Time: 1, Sig: make([]byte, 64)}})
	f.Add(ts)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c chain
		if wire.Unmarshal(b, &c) == nil {
			if v, err := verifyChain(c); err == nil && len(v.members()) == 0 {
				t.Fatalf("a roster with no members verified")
			}
		}
		var sa signedAnswer
		if wire.Unmarshal(b, &sa) == nil {
			var out Account
			if _, err := real.check(sa, kindAccount, reqHash([]byte("q")), &out); err == nil {
				t.Fatalf("a made-up answer by %s passed for a member's", sa.By)
			}
		}
		var stamps []timeStamp
		if wire.Unmarshal(b, &stamps) == nil {
			if _, err := quorumTime("ledger-1", stamps, real.members()); err == nil {
				t.Fatalf("made-up stamps gave the ledger a time")
			}
		}
	})
}
