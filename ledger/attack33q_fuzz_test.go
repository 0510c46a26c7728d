package ledger

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/wire"
)

// FuzzReadEntry feeds the ledger's state machine opRead entries (and any
// bytes as an entry) after a real genesis, as a member applies what the
// log holds: no panic, an outcome that decodes, and any answer recorded
// is the answer to the question the entry carried, of this ledger. Then
// the recorder is asked, as serveConfirm asks it, about any kind and
// hash: no panic, and no answer to another question.
func FuzzReadEntry(f *testing.F) {
	ms := members(f, 3)
	gen, gb := genesisOf(f, "ledger-1")
	found := entry(f, rosterBody{Ledger: "ledger-1", Members: ids(ms), Genesis: gb}, ms[0], ms[1], ms[2])
	genesis, err := wire.Marshal(&genesisCmd{command: command{Op: opGenesis, Time: 1, Genesis: gen}, Roster: &found})
	if err != nil {
		f.Fatal(err)
	}
	q, _ := wire.Marshal(&accountReq{User: ms[0].id, Nonce: []byte("0123456789abcdef")})
	f.Add(kindAccount, q, false)
	f.Add(kindInfo, []byte{0xa0}, false)
	f.Add("submit", []byte{}, false)
	raw, _ := wire.Marshal(map[int]any{1: opRead, 65: map[int]any{1: "account", 2: 7}})
	f.Add("", raw, true)
	f.Fuzz(func(t *testing.T, kind string, req []byte, asEntry bool) {
		b := newFSM(nil)
		if _, err := b.Apply(genesis); err != nil {
			t.Fatal(err)
		}
		cmd := req
		if !asEntry {
			var err error
			if cmd, err = wire.Marshal(&rosterCmd{Op: opRead, Read: &readCmd{Kind: kind, Req: req}}); err != nil {
				return
			}
		}
		out, err := b.Apply(cmd)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		var o outcome
		if err := wire.Unmarshal(out, &o); err != nil || o.Code == "invariant" {
			t.Fatalf("outcome %+v, %v", o, err)
		}
		for _, k := range []string{kind, kindAccount, kindInfo, kindSubmit} {
			ab, ok := b.rec.lookup(recordKey(k, reqHash(req)))
			if !ok {
				continue
			}
			var a answer
			if err := wire.Unmarshal(ab, &a); err != nil {
				t.Fatalf("a recorded answer does not decode: %v", err)
			}
			if a.Ledger != "ledger-1" || a.Kind != k || !bytes.Equal(a.Req, reqHash(req)) {
				t.Fatalf("recorded under %q the answer %+v", k, a)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if ab, err := b.rec.wait(ctx, recordKey(kind, req)); err == nil {
			var a answer
			if wire.Unmarshal(ab, &a) != nil || a.Kind != kind || !bytes.Equal(a.Req, req) {
				t.Fatalf("asked to confirm %q %x, the recorder gave %+v", kind, req, a)
			}
		}
	})
}
