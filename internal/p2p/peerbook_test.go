package p2p

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newPeerID(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrs(t testing.TB, n int) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for i := range n {
		out = append(out, ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 1000+i)))
	}
	return out
}

func TestPeerBookSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	b, err := openPeerBook(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	self, p1, p2 := newPeerID(t), newPeerID(t), newPeerID(t)
	b.saw(p1, addrs(t, 2))
	b.saw(p2, addrs(t, maxBookAddrs+5))
	b.saw(self, addrs(t, 1))
	b.saw(newPeerID(t), nil) // no address: nothing to remember
	if err := b.save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("peer book file: %v, mode %v; want mode 0600", err, fi.Mode())
	}

	again, err := openPeerBook(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	got := again.list(self)
	if len(got) != 2 {
		t.Fatalf("after reload the book lists %d peers, want 2 (self and address-less peers left out): %v", len(got), got)
	}
	// Most recently seen first.
	if got[0].ID != p2 || got[1].ID != p1 {
		t.Errorf("order %v, %v; want p2 then p1", got[0].ID, got[1].ID)
	}
	if len(got[0].Addrs) != maxBookAddrs || len(got[1].Addrs) != 2 {
		t.Errorf("addresses kept: %d and %d, want %d and 2", len(got[0].Addrs), len(got[1].Addrs), maxBookAddrs)
	}
}

func TestPeerBookKeepsMostRecent(t *testing.T) {
	b, _ := openPeerBook("", quiet)
	var ids []peer.ID
	for range maxBookPeers + 10 {
		p := newPeerID(t)
		ids = append(ids, p)
		b.saw(p, addrs(t, 1))
		// saw stamps time.Now; make the order strict whatever the clock's
		// resolution.
		e := b.m[p]
		e.LastSeen = time.Unix(int64(len(ids)), 0)
		b.m[p] = e
	}
	b.trim()
	if len(b.m) != maxBookPeers {
		t.Fatalf("book holds %d peers, want %d", len(b.m), maxBookPeers)
	}
	for _, p := range ids[:10] {
		if _, ok := b.m[p]; ok {
			t.Fatalf("an oldest peer was kept and a newer one dropped")
		}
	}
}

func TestPeerBookDamagedFileIgnored(t *testing.T) {
	for name, content := range map[string]string{
		"not json":   "{{{",
		"wrong type": `{"version":1,"peers":{"x":{"addrs":"nope"}}}`,
		"too large":  `{"version":1,"peers":{}}` + strings.Repeat(" ", maxBookFile),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "peers.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			b, err := openPeerBook(path, quiet)
			if err != nil {
				t.Fatalf("a damaged peer book must not stop the node: %v", err)
			}
			if n := len(b.list("")); n != 0 {
				t.Fatalf("damaged book yielded %d peers", n)
			}
		})
	}
}

func TestPeerBookSkipsBadEntries(t *testing.T) {
	p := newPeerID(t)
	data := fmt.Sprintf(`{"version":1,"peers":{
		"not-a-peer-id": {"addrs":["/ip4/127.0.0.1/tcp/1"]},
		%q: {"addrs":["/ip4/999.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"]}}}`, p)
	b, _ := openPeerBook("", quiet)
	if err := b.load([]byte(data)); err != nil {
		t.Fatal(err)
	}
	got := b.list("")
	if len(got) != 1 || got[0].ID != p || len(got[0].Addrs) != 1 || got[0].Addrs[0].String() != "/ip4/127.0.0.1/tcp/2" {
		t.Fatalf("list = %v; want only %s at /ip4/127.0.0.1/tcp/2", got, p)
	}
}

// FuzzPeerBook feeds arbitrary bytes to the peer book decoder: it must never
// panic, and whatever it accepts stays within the book's limits.
func FuzzPeerBook(f *testing.F) {
	f.Add([]byte(`{"version":1,"peers":{}}`))
	f.Add([]byte(`{"version":1,"peers":{"12D3KooWGRUVh5rjBdhTmhTqbgMzB8bp5M9gWzA8pP1CUYgNQ7Hi":{"addrs":["/ip4/1.2.3.4/tcp/1"],"last_seen":"2026-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"peers":{"":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, _ := openPeerBook("", quiet)
		if err := b.load(data); err != nil {
			return
		}
		if len(b.m) > maxBookPeers {
			t.Fatalf("%d peers kept, limit %d", len(b.m), maxBookPeers)
		}
		for _, ai := range b.list("") {
			if len(ai.Addrs) > maxBookAddrs {
				t.Fatalf("%d addresses kept for a peer, limit %d", len(ai.Addrs), maxBookAddrs)
			}
		}
	})
}
