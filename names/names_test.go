package names

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a value store in memory that keeps the best valid record
// per key, as a DHT node does.
type memStore struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
}

func (s *memStore) PutValue(_ context.Context, k string, v []byte, _ ...routing.Option) error {
	if err := (ipns.Validator{}).Validate(k, v); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	if better(k, v, s.m[k]) {
		s.m[k] = v
	}
	s.puts++
	return nil
}

func (s *memStore) GetValue(_ context.Context, k string, _ ...routing.Option) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[k]; ok {
		return v, nil
	}
	return nil, routing.ErrNotFound
}

func (s *memStore) SearchValue(ctx context.Context, k string, opts ...routing.Option) (<-chan []byte, error) {
	ch := make(chan []byte, 1)
	if v, err := s.GetValue(ctx, k); err == nil {
		ch <- v
	}
	close(ch)
	return ch, nil
}

func (s *memStore) set(k string, v []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[k] = v
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Routing == nil {
		cfg.Routing = &memStore{}
	}
	if cfg.UserKey == nil {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		cfg.UserKey = k
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

const someCID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"

func TestPublishResolve(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Config{Dir: t.TempDir()})
	p, err := m.Publish(ctx, "", someCID, PublishOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := m.Keys()
	if p.Name != keys[0].ID || keys[0].Name != Self {
		t.Fatalf("published under %s, the user key is %+v", p.Name, keys[0])
	}
	for _, name := range []string{p.Name, "/ipns/" + p.Name} {
		r, err := m.Resolve(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != "/ipfs/"+someCID {
			t.Fatalf("resolved %s to %s", name, r.Path)
		}
	}
	// The record is a V2 record of the user's name, with what was asked.
	raw, err := m.Get(ctx, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ipns.UnmarshalRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := ipns.NameFromString(p.Name)
	if err := ipns.ValidateWithName(rec, n); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rec.TTL(); ttl != time.Minute {
		t.Fatalf("TTL %v", ttl)
	}
	// Publishing again raises the sequence; a path under the name resolves.
	p2, err := m.Publish(ctx, Self, "/ipfs/"+someCID+"/a", PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Sequence != p.Sequence+1 {
		t.Fatalf("sequence %d after %d", p2.Sequence, p.Sequence)
	}
	r, err := m.Resolve(ctx, "/ipns/"+p.Name+"/b")
	if err != nil || r.Path != "/ipfs/"+someCID+"/a/b" {
		t.Fatalf("resolve a path under the name: %v %v", r, err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := newManager(t, Config{Dir: dir})
	k, err := m.Gen("site")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Gen("site"); !errors.Is(err, ErrExists) {
		t.Fatalf("second gen: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "a\x00b"} {
		if _, err := m.Gen(bad); !errors.Is(err, ErrBadName) {
			t.Fatalf("gen %q: %v", bad, err)
		}
	}
	p, err := m.Publish(ctx, "site", someCID, PublishOptions{})
	if err != nil || p.Name != k.ID {
		t.Fatalf("publish under site: %v %v", p, err)
	}
	// Another manager on the same dir sees the key.
	m.Close()
	m2 := newManager(t, Config{Dir: dir})
	keys, err := m2.Keys()
	if err != nil || len(keys) != 2 || keys[1] != k {
		t.Fatalf("keys %v %v", keys, err)
	}
	if err := m2.Remove("site"); err != nil {
		t.Fatal(err)
	}
	if err := m2.Remove("site"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if err := m2.Remove(Self); !errors.Is(err, ErrBadName) {
		t.Fatalf("remove self: %v", err)
	}
	if _, err := m2.Publish(ctx, "site", someCID, PublishOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("publish under a removed key: %v", err)
	}
}

var errRefused = errors.New("no user key here")

// noSign is a user key that refuses to sign, as on a node that joined its
// user without the key.
type noSign struct{ k ed25519.PrivateKey }

func (n noSign) Public() crypto.PublicKey { return n.k.Public() }
func (noSign) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errRefused
}

func TestPublishWithoutUserKey(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	m := newManager(t, Config{UserKey: noSign{k}})
	if _, err := m.Publish(context.Background(), "", someCID, PublishOptions{}); !errors.Is(err, errRefused) {
		t.Fatalf("publish without the user key: %v", err)
	}
	if _, err := m.Gen("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Publish(context.Background(), "other", someCID, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPutGetChecks(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Config{})
	other := newManager(t, Config{})
	p, err := other.Publish(ctx, "", someCID, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := other.Get(ctx, p.Name)
	if _, err := m.Get(ctx, p.Name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get before put: %v", err)
	}
	if err := m.Put(ctx, p.Name, raw); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, "/ipns/"+p.Name); err != nil || string(got) != string(raw) {
		t.Fatalf("get after put: %v", err)
	}
	// A record under another name, a corrupted one, one too large: refused.
	self, _ := m.Keys()
	if err := m.Put(ctx, self[0].ID, raw); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("put under another name: %v", err)
	}
	bad := append([]byte(nil), raw...)
	bad[len(bad)-3] ^= 0xff
	if err := m.Put(ctx, p.Name, bad); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("put a corrupted record: %v", err)
	}
	if err := m.Put(ctx, p.Name, make([]byte, ipns.MaxRecordSize+1)); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("put a large record: %v", err)
	}
	if err := m.Put(ctx, "not-a-name", raw); !errors.Is(err, ErrBadName) {
		t.Fatalf("put under a bad name: %v", err)
	}
}

// TestExpiredIgnored: a record past its validity that a router still
// hands out is not used.
func TestExpiredIgnored(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	m := newManager(t, Config{Routing: store})
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	sk, _ := ic.UnmarshalEd25519PrivateKey(k)
	id, _ := peer.IDFromPrivateKey(sk)
	v, _ := path.NewPath("/ipfs/" + someCID)
	rec, err := ipns.NewRecord(sk, v, 1, time.Now().Add(-time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := ipns.MarshalRecord(rec)
	name := ipns.NameFromPeer(id)
	store.set(string(name.RoutingKey()), raw)
	if _, err := m.Resolve(ctx, name.String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve an expired record: %v", err)
	}
	if err := m.Put(ctx, name.String(), raw); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("put an expired record: %v", err)
	}
}

func TestDNSLink(t *testing.T) {
	ctx := context.Background()
	asked := 0
	m := newManager(t, Config{
		DNSLinks: map[string]string{"local.example": "/ipfs/" + someCID},
		LookupTXT: func(_ context.Context, name string) ([]string, error) {
			asked++
			if strings.TrimSuffix(name, ".") == "_dnslink.dns.example" {
				return []string{"dnslink=/ipfs/" + someCID + "/x"}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		},
	})
	r, err := m.Resolve(ctx, "local.example")
	if err != nil || r.Path != "/ipfs/"+someCID {
		t.Fatalf("local map: %v %v", r, err)
	}
	r, err = m.Resolve(ctx, "/ipns/dns.example/y")
	if err != nil || r.Path != "/ipfs/"+someCID+"/x/y" {
		t.Fatalf("TXT: %v %v", r, err)
	}
	if _, err := m.Resolve(ctx, "nothing.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no DNSLink: %v", err)
	}
	if asked == 0 {
		t.Fatal("TXT lookup never asked")
	}
	// A DNSLink to an IPNS name is followed.
	p, err := m.Publish(ctx, "", someCID, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, Config{Routing: m.cfg.Routing, DNSLinks: map[string]string{"n.example": "/ipns/" + p.Name}})
	if r, err := m2.Resolve(ctx, "n.example"); err != nil || r.Path != "/ipfs/"+someCID {
		t.Fatalf("DNSLink to IPNS: %v %v", r, err)
	}
}

func TestRepublish(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	dir := t.TempDir()
	_, user, _ := ed25519.GenerateKey(rand.Reader)
	m := newManager(t, Config{Routing: store, Dir: dir, UserKey: user})
	p, err := m.Publish(ctx, "", someCID, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Republish(ctx); n != 1 {
		t.Fatalf("republished %d", n)
	}
	raw, _ := m.Get(ctx, p.Name)
	rec, _ := ipns.UnmarshalRecord(raw)
	if seq, _ := rec.Sequence(); seq != p.Sequence+1 {
		t.Fatalf("sequence after republish %d, want %d", seq, p.Sequence+1)
	}
	// A manager on the same dir carries on from the book, and the
	// republisher runs by itself.
	m.Close()
	m2 := newManager(t, Config{Routing: store, Dir: dir, UserKey: user, RepublishInterval: 10 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, _ := m2.Get(ctx, p.Name)
		rec, _ := ipns.UnmarshalRecord(raw)
		if seq, _ := rec.Sequence(); seq >= p.Sequence+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the republisher never republished")
		}
		<-tick.C
	}
}

func FuzzCheckRecord(f *testing.F) {
	m, err := New(context.Background(), Config{Routing: &memStore{}, UserKey: func() ed25519.PrivateKey {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	}()})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	p, err := m.Publish(context.Background(), "", someCID, PublishOptions{})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := m.Get(context.Background(), p.Name)
	key, _, _ := routingKey(p.Name)
	f.Add([]byte(key), raw)
	f.Add([]byte(key), []byte{})
	f.Fuzz(func(t *testing.T, key, raw []byte) {
		rec, err := checkRecord(string(key), raw)
		if err == nil {
			if _, err := rec.Value(); err != nil {
				t.Fatalf("a record that passed has no value: %v", err)
			}
		}
		better(string(key), raw, raw)
	})
}

// stuckStore answers no search until its context ends, as a public DHT
// that is slow to answer.
type stuckStore struct{ memStore }

func (s *stuckStore) SearchValue(ctx context.Context, k string, opts ...routing.Option) (<-chan []byte, error) {
	ch := make(chan []byte)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

// TestBothDHTs: a record is stored in both routers (the public one in the
// background); a record only the public router has is found; a newer one
// there wins over nube's; a public router that never answers does not
// hold up a name nube's DHT has, past PublicGrace.
func TestBothDHTs(t *testing.T) {
	ctx := context.Background()
	own, public := &memStore{}, &memStore{}
	_, user, _ := ed25519.GenerateKey(rand.Reader)
	m := newManager(t, Config{Routing: own, Public: public, UserKey: user})
	p, err := m.Publish(ctx, "", someCID, PublishOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := routingKey(p.Name)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := public.GetValue(ctx, key); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record never reached the public router")
		}
		<-tick.C
	}

	// Only the public router has another key's record, and a newer one of
	// this name: both are found.
	other := newManager(t, Config{Routing: public})
	op, err := other.Publish(ctx, "", "/ipfs/"+someCID+"/other", PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := m.Resolve(ctx, op.Name); err != nil || r.Path != "/ipfs/"+someCID+"/other" {
		t.Fatalf("a name only the public DHT has: %+v %v", r, err)
	}
	sk, _ := m.keys.signer(Self)
	v, _ := path.NewPath("/ipfs/" + someCID + "/newer")
	rec, _ := ipns.NewRecord(sk, v, p.Sequence+5, time.Now().Add(time.Hour), time.Minute)
	raw, _ := ipns.MarshalRecord(rec)
	public.set(key, raw)
	if r, err := m.Resolve(ctx, p.Name); err != nil || r.Path != "/ipfs/"+someCID+"/newer" {
		t.Fatalf("the newer record in the public DHT: %+v %v", r, err)
	}

	// A public router that never answers: nube's record, after the grace.
	stuck := &stuckStore{}
	m2 := newManager(t, Config{Routing: own, Public: stuck, PublicGrace: time.Millisecond})
	if r, err := m2.Resolve(ctx, p.Name); err != nil || r.Path != "/ipfs/"+someCID {
		t.Fatalf("with a public DHT that never answers: %+v %v", r, err)
	}
}

// TestSequenceFromNetwork: a key's first publish on this node follows the
// sequence nube's DHT holds for it (the key published elsewhere before).
func TestSequenceFromNetwork(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	_, user, _ := ed25519.GenerateKey(rand.Reader)
	a := newManager(t, Config{Routing: store, UserKey: user})
	b := newManager(t, Config{Routing: store, UserKey: user})
	p1, err := a.Publish(ctx, "", someCID, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, "", someCID, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	p3, err := b.Publish(ctx, "", someCID+"/b", PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p3.Sequence != p1.Sequence+2 {
		t.Fatalf("the other node's first publish has sequence %d, want %d", p3.Sequence, p1.Sequence+2)
	}
}
