package topic

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/identity"
)

// seedMessage is a well-formed signed message.
func seedMessage(f *testing.F) []byte {
	k := identity.Generate()
	u, err := identity.ID(k.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := sealMessage(k, &record{Topic: u.String() + "/t", Publisher: u, Time: time.Now().UnixNano(), Data: []byte("x"), Chain: [][]byte{{1, 2}}})
	if err != nil {
		f.Fatal(err)
	}
	return raw
}

func FuzzDecodePayload(f *testing.F) {
	raw := seedMessage(f)
	p, _ := encodePayload(7, raw)
	f.Add(p)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePayload(b)
		if err != nil {
			return
		}
		if len(p.Env) == 0 || len(b) > maxPayload {
			t.Fatalf("accepted %d bytes with an envelope of %d", len(b), len(p.Env))
		}
		b2, err := encodePayload(p.Offset, p.Env)
		if err != nil {
			t.Fatal(err)
		}
		if p2, err := decodePayload(b2); err != nil || p2.Offset != p.Offset {
			t.Fatalf("a payload does not survive a round trip: %v", err)
		}
	})
}

func FuzzOpenMessage(f *testing.F) {
	f.Add(seedMessage(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := openMessage(b)
		if err != nil {
			return
		}
		if r.Topic == "" || r.Publisher == "" || len(r.ID) > MaxIDLen {
			t.Fatalf("accepted a message of shape %+v", r)
		}
	})
}

func FuzzPeekMessage(f *testing.F) {
	f.Add(seedMessage(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, r, err := peekMessage(b)
		if err != nil {
			return
		}
		// A message peek accepts and whose signature holds is one
		// openMessage accepts.
		if env.Verify(messageDomain, r.Publisher) == nil {
			if _, err := openMessage(b); err != nil {
				t.Fatalf("peek and verify accept what open refuses: %v", err)
			}
		}
	})
}

func FuzzOpenConfig(f *testing.F) {
	k := identity.Generate()
	u, err := identity.ID(k.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	id := u.String() + "/t"
	c, err := signConfig(k, config{Sealed: true, Retain: Retention{Count: 10, Age: time.Hour}, Topic: id, Owner: u})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.raw)
	f.Add([]byte{0xa1, 0x02, 0xa1, 0x01, 0x20})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := openConfig(id, b)
		if err != nil {
			return
		}
		if c.Retain.Count < 0 || c.Retain.Bytes < 0 || c.Retain.Age < 0 {
			t.Fatalf("accepted a negative retention: %+v", c.Retain)
		}
		if c.Topic != id || c.Owner != u || len(b) > maxConfig {
			t.Fatalf("accepted a config of %s by %s for %s", c.Topic, c.Owner, id)
		}
	})
}
