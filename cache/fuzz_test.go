package cache

import (
	"testing"

	"github.com/nubecloud/nube/internal/wire"
)

// The cache's messages are decoded by the remote layer (its frames are
// capped); these check that no input panics the decoding or the checks
// that follow it, and that what passes the checks is within the caps.

func FuzzGetRequest(f *testing.F) {
	b, _ := wire.Marshal(getReq{Cache: "a/b", Key: "k", Min: 3, Proof: &proof{Chain: [][]byte{{1}}}})
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r getReq
		if wire.Unmarshal(b, &r) != nil {
			return
		}
		if r.check() == nil && (len(r.Cache) > MaxName || len(r.Key) > MaxKey || r.Cache == "") {
			t.Fatalf("a request over the caps passed: %d, %d", len(r.Cache), len(r.Key))
		}
	})
}

func FuzzHello(f *testing.F) {
	b, _ := wire.Marshal(helloMsg{Caches: []string{"a/b"}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h helloMsg
		_ = wire.Unmarshal(b, &h)
		for _, n := range h.Caches {
			_ = checkName(n)
		}
	})
}

func FuzzInvalidate(f *testing.F) {
	b, _ := wire.Marshal(invalReq{Cache: "a/b", Key: "k", Version: 1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r invalReq
		if wire.Unmarshal(b, &r) != nil {
			return
		}
		_, _ = checkName(r.Cache), checkKey(r.Key)
	})
}

func FuzzGetReply(f *testing.F) {
	b, _ := wire.Marshal(getReply{Value: []byte("v"), Version: 2})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r getReply
		_ = wire.Unmarshal(b, &r)
	})
}
