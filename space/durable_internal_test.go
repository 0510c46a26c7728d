package space

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
)

// signedHead is a head of OWNER/name at seq, signed by key, encoded.
func signedHead(t testing.TB, key ed25519.PrivateKey, name string, seq uint64) []byte {
	t.Helper()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	s, err := sign(key, headDomain, &head{Owner: owner, Name: name, Seq: seq, Home: owner, Root: locator("x").Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := marshal(s)
	return b
}

func TestHeadValidator(t *testing.T) {
	key, other := identity.Generate(), identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	id := owner.String() + "/docs"
	k := HeadKey(id)
	v1, v2, v3 := signedHead(t, key, "docs", 1), signedHead(t, key, "docs", 2), signedHead(t, key, "docs", 3)
	forged := signedHead(t, other, "docs", 9)
	var hv HeadValidator
	for _, c := range []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"good", k, v2, nil},
		{"another space's key", HeadKey(owner.String() + "/photos"), v2, ErrBadHead},
		{"another namespace", "/ipns/" + id, v2, ErrBadHead},
		{"a key that is no space ID", "/" + HeadNamespace + "/nobody", v2, ErrBadName},
		{"signed by another user", HeadKey(func() string { o, _ := identity.ID(other.Public().(ed25519.PublicKey)); return o.String() }() + "/docs"), forged, nil},
		{"a stranger's head under the owner's key", k, forged, ErrBadHead},
		{"empty", k, nil, ErrBadHead},
		{"too large", k, make([]byte, MaxHeadSize+1), ErrBadHead},
	} {
		err := hv.Validate(c.key, c.value)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	i, err := hv.Select(k, [][]byte{v2, forged, v3, v1, v3})
	if err != nil || i != 2 {
		t.Fatalf("select: %d, %v; want 2 (the first of the newest)", i, err)
	}
	if _, err := hv.Select(k, [][]byte{forged, nil}); err == nil {
		t.Fatal("select chose among values none of which is valid")
	}
}

// FuzzHeadRecord: the DHT hands a validator any key and value from the
// network; it never panics, and what it accepts is a head of the space
// the key names.
func FuzzHeadRecord(f *testing.F) {
	key := identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	f.Add(HeadKey(owner.String()+"/docs"), signedHead(f, key, "docs", 1))
	f.Add("/"+HeadNamespace+"/x/y", []byte{0xa0})
	f.Fuzz(func(t *testing.T, k string, v []byte) {
		h, err := headOfKey(k, v)
		if err == nil && HeadKey(h.id()) != k {
			t.Fatalf("a head of %s accepted under %q", h.id(), k)
		}
		if i, err := (HeadValidator{}).Select(k, [][]byte{v, v}); err == nil && i != 0 {
			t.Fatalf("select of equals chose %d", i)
		}
	})
}

// chainHead signs a head of owner's "docs" under chain with key.
func chainHead(t testing.TB, owner peer.ID, key ed25519.PrivateKey, chain []signed, seq uint64) []byte {
	t.Helper()
	s, err := sign(key, headDomain, &head{Owner: owner, Name: "docs", Seq: seq, Home: owner, Root: locator("x").Bytes(), Chain: chain})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := marshal(s)
	return b
}

// TestHomeChain: a head signed by a node under a delegation verifies only
// if each link is signed by the one before (the owner first), for this
// space, naming a node the owner certified, and the head by the last.
func TestHomeChain(t *testing.T) {
	user, stranger := identity.Generate(), identity.Generate()
	owner, _ := identity.ID(user.Public().(ed25519.PublicKey))
	n1, n2 := identity.Generate(), identity.Generate()
	id1, _ := identity.ID(n1.Public().(ed25519.PublicKey))
	id2, _ := identity.ID(n2.Public().(ed25519.PublicKey))
	cert := func(by ed25519.PrivateKey, node peer.ID) nodecert.Cert {
		c, err := nodecert.New(by, node)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	link := func(by ed25519.PrivateKey, space string, node peer.ID, c nodecert.Cert) signed {
		s, err := sign(by, homeDomain, homeLink{Space: space, Node: node, Cert: c})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sp := owner.String() + "/docs"
	good1 := link(user, sp, id1, cert(user, id1))
	good2 := link(n1, sp, id2, cert(user, id2))
	for _, c := range []struct {
		name  string
		chain []signed
		key   ed25519.PrivateKey
		ok    bool
	}{
		{"the owner", nil, user, true},
		{"one node", []signed{good1}, n1, true},
		{"two nodes", []signed{good1, good2}, n2, true},
		{"a node signs without a chain", nil, n1, false},
		{"the owner signs under a chain", []signed{good1}, user, false},
		{"the first node signs past its delegate", []signed{good1, good2}, n1, false},
		{"a link skipped", []signed{good2}, n2, false},
		{"a node the owner did not certify", []signed{link(user, sp, id1, cert(stranger, id1))}, n1, false},
		{"a cert of another node", []signed{link(user, sp, id1, cert(user, id2))}, n1, false},
		{"a link of another space", []signed{link(user, owner.String()+"/other", id1, cert(user, id1))}, n1, false},
		{"a first link a stranger signed", []signed{link(stranger, sp, id1, cert(user, id1))}, n1, false},
		{"too long", slices.Repeat([]signed{good1}, MaxHomeChain+1), n1, false},
	} {
		_, _, err := decodeHead(chainHead(t, owner, c.key, c.chain, 1), sp)
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// FuzzHomeChain: a delegation is network input (in every head and
// handover); checking one never panics, and one it accepts ends at a
// node the owner certified.
func FuzzHomeChain(f *testing.F) {
	user := identity.Generate()
	owner, _ := identity.ID(user.Public().(ed25519.PublicKey))
	n1 := identity.Generate()
	id1, _ := identity.ID(n1.Public().(ed25519.PublicKey))
	c, _ := nodecert.New(user, id1)
	l, _ := sign(user, homeDomain, homeLink{Space: owner.String() + "/docs", Node: id1, Cert: c})
	seed, _ := marshal([]signed{l})
	f.Add(seed)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxHeadSize {
			return
		}
		var chain []signed
		if unmarshal(b, &chain) != nil {
			return
		}
		by, err := checkChain(owner, owner.String()+"/docs", chain)
		if err == nil && len(chain) > 0 {
			var last homeLink
			if unmarshal(chain[len(chain)-1].Body, &last) != nil || last.Node != by || last.Cert.Check(by) != nil {
				t.Fatalf("a chain accepted that ends at %s without a cert of it", by)
			}
		}
	})
}

// FuzzTakeHome: a handover comes from the network as a takeHomeReq
// (decoded by the remote layer within its input cap); what the new home
// checks of it before any I/O never panics, and a handover it accepts
// names it as the home under a delegation that ends at it.
func FuzzTakeHome(f *testing.F) {
	user, node := identity.Generate(), identity.Generate()
	owner, _ := identity.ID(user.Public().(ed25519.PublicKey))
	self, _ := identity.ID(node.Public().(ed25519.PublicKey))
	c, _ := nodecert.New(user, self)
	l, _ := sign(user, homeDomain, homeLink{Space: owner.String() + "/docs", Node: self, Cert: c})
	hs, _ := sign(user, headDomain, &head{Owner: owner, Name: "docs", Seq: 2, Home: self, Root: locator("x").Bytes()})
	hb, _ := marshal(hs)
	seed, _ := marshal(takeHomeReq{Head: hb, Chain: []signed{l}, Keys: []byte{1}, Nonces: [][]byte{make([]byte, 16)}})
	f.Add(seed)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4<<20 {
			return
		}
		var req takeHomeReq
		if unmarshal(b, &req) != nil {
			return
		}
		h, _, err := decodeHead(req.Head, "")
		if err != nil {
			return
		}
		if checkTake(self, h, req) == nil {
			if h.Home != self || len(req.Chain) == 0 {
				t.Fatalf("a handover accepted that names %s as home under %d links", h.Home, len(req.Chain))
			}
			if by, err := checkChain(h.Owner, h.id(), req.Chain); err != nil || by != self {
				t.Fatalf("a handover accepted whose delegation ends at %s (%v)", by, err)
			}
		}
	})
}

// TestTakeOutcome: how a home reads the answer of the node it handed
// over to when the take's own answer was lost.
func TestTakeOutcome(t *testing.T) {
	key := identity.Generate()
	owner, _ := identity.ID(key.Public().(ed25519.PublicKey))
	id := owner.String() + "/docs"
	at := func(seq uint64) []byte { return signedHead(t, key, "docs", seq) }
	for _, c := range []struct {
		name string
		head []byte
		err  error
		want taken
	}{
		{"it has the head that names it", at(5), nil, hasTaken},
		{"it has a later one", at(9), nil, hasTaken},
		{"it has an older one (a holder)", at(4), nil, notTaken},
		{"it keeps no such space", nil, fmt.Errorf("remote: %w", ErrNotFound), notTaken},
		{"it answers with junk", []byte{1, 2, 3}, nil, notTaken},
		{"it does not answer", nil, errors.New("dial backoff"), unknown},
		{"it refuses", nil, ErrNotAuthorised, unknown},
	} {
		if got := takeOutcome(c.head, c.err, id, 5); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// staleValues is a DHT that answers every key with one value.
type staleValues struct {
	mu sync.Mutex
	b  []byte
}

func (s *staleValues) PutValue(context.Context, string, []byte, ...routing.Option) error { return nil }

func (s *staleValues) GetValue(context.Context, string, ...routing.Option) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b == nil {
		return nil, routing.ErrNotFound
	}
	return s.b, nil
}

func (s *staleValues) SearchValue(ctx context.Context, k string, _ ...routing.Option) (<-chan []byte, error) {
	ch := make(chan []byte, 1)
	if b, err := s.GetValue(ctx, k); err == nil {
		ch <- b
	}
	close(ch)
	return ch, nil
}

// TestDHTHeadNeverRollsBack: a reader that saw a head never takes an
// older one from the DHT, with the home gone.
func TestDHTHeadNeverRollsBack(t *testing.T) {
	ctx := testCtx(t)
	dht := &staleValues{}
	ns := bareNodes(t, 2, func(c *Config) { c.Values = dht })
	a, b := ns[0], ns[1]
	if err := b.h.Connect(ctx, peer.AddrInfo{ID: a.h.ID(), Addrs: a.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	sp, err := a.m.Create(ctx, "s", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, b.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	_, old := a.m.ownedSpace(sp.ID()).current()
	oldB, _ := marshal(old)
	if err := sp.PutBytes(ctx, "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	bs, err := b.m.Open(a.user, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := bs.GetBytes(ctx, "k"); err != nil || string(got) != "new" {
		t.Fatalf("read before: %q, %v", got, err)
	}
	b.m.mu.Lock()
	seen := b.m.cache[sp.ID()]
	b.m.mu.Unlock()
	dht.mu.Lock()
	dht.b = oldB
	dht.mu.Unlock()
	a.m.Close() // the home is gone; its host stays, serving no space
	v, err := bs.resolve(ctx, true)
	if err == nil && v.head.Seq < seen.head.Seq {
		t.Fatalf("the reader took head %d from the DHT after seeing %d", v.head.Seq, seen.head.Seq)
	}
	if got, err := bs.GetBytes(ctx, "k"); err == nil && string(got) != "new" {
		t.Fatalf("the reader rolled back to %q", got)
	}
	// A reader that never saw the space takes the DHT's head: the same
	// store answers, so the test above could fail.
	fresh := bareNodes(t, 1, func(c *Config) { c.Values = dht })[0]
	fs, _ := fresh.m.Open(a.user, "s")
	if v, err := fs.resolve(ctx, true); err != nil || v.head.Seq != seqOf(old) {
		t.Fatalf("a new reader resolves from the DHT: %v, %v", v, err)
	}
}

// TestStrangerTooLargeKeepsTheDHT: a peer that is neither home nor holder
// of a space answers a reader's ask with ErrHeadTooLarge; the reader
// still takes the DHT's head, so a stranger cannot keep readers off it.
func TestStrangerTooLargeKeepsTheDHT(t *testing.T) {
	ctx := testCtx(t)
	dht := &staleValues{}
	ns := bareNodes(t, 2, func(c *Config) { c.Values = dht })
	a, r := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "s", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	_, cur := a.m.ownedSpace(sp.ID()).current()
	b, _ := marshal(cur)
	dht.mu.Lock()
	dht.b = b
	dht.mu.Unlock()
	a.m.Close() // the home is gone; its host stays, serving no space
	stranger := hosttest.Hosts(t, 1)[0]
	ep, err := remote.New(ctx, remote.Config{Host: stranger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	asked := make(chan struct{}, 1)
	remote.Handle(ep, headFn, func(context.Context, headReq) (headReply, error) {
		select {
		case asked <- struct{}{}:
		default:
		}
		return headReply{}, fmt.Errorf("%w: not really", ErrHeadTooLarge)
	})
	if err := r.h.Connect(ctx, peer.AddrInfo{ID: stranger.ID(), Addrs: stranger.Addrs()}); err != nil {
		t.Fatal(err)
	}
	rs, _ := r.m.Open(a.user, "s")
	v, err := rs.resolve(ctx, true)
	select {
	case <-asked:
	default:
		t.Fatal("the reader never asked the stranger, so the test proves nothing")
	}
	if err != nil || v.head.Seq != seqOf(cur) {
		t.Fatalf("a stranger's ErrHeadTooLarge kept the reader off the DHT's head: %v, %v", v, err)
	}
}

// TestRemovedDelegate: a head signed under a link to a node the user
// removed is refused, when the head itself says so and when a head the
// user key signed told the reader before; a seq such a head inflated
// falls back to the user's head's.
func TestRemovedDelegate(t *testing.T) {
	user := identity.Generate()
	owner, _ := identity.ID(user.Public().(ed25519.PublicKey))
	n1 := identity.Generate()
	id1, _ := identity.ID(n1.Public().(ed25519.PublicKey))
	sp := owner.String() + "/docs"
	c, err := nodecert.New(user, id1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sign(user, homeDomain, homeLink{Space: sp, Node: id1, Cert: c})
	if err != nil {
		t.Fatal(err)
	}
	headOf := func(key ed25519.PrivateKey, chain []signed, seq uint64, removed []peer.ID) []byte {
		s, err := sign(key, headDomain, &head{Owner: owner, Name: "docs", Seq: seq, Home: owner, Root: locator("x").Bytes(), Chain: chain, Removed: removed})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := marshal(s)
		return b
	}
	if _, _, err := decodeHead(headOf(n1, []signed{l}, 3, []peer.ID{id1}), sp); err == nil {
		t.Fatal("a head naming its own signer removed was taken")
	}
	rogue, _, err := decodeHead(headOf(n1, []signed{l}, 1000, nil), sp)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{removed: map[string][]peer.ID{}, cache: map[string]*view{}, seen: map[string]uint64{}}
	if !m.usable(sp, rogue) {
		t.Fatal("before any removal, the delegated head should be usable: the test proves nothing")
	}
	m.cache[sp], m.seen[sp] = &view{head: rogue}, rogue.Seq
	users, _, err := decodeHead(headOf(user, nil, 7, []peer.ID{id1}), sp)
	if err != nil {
		t.Fatal(err)
	}
	if !m.usable(sp, users) {
		t.Fatal("the user's own head is refused")
	}
	if m.usable(sp, rogue) {
		t.Fatal("a head through a removed node is usable once the user's head named the removal")
	}
	if m.cache[sp] != nil || m.seen[sp] != users.Seq {
		t.Fatalf("the removed node's seq sticks: cache %v, seen %d, want %d", m.cache[sp], m.seen[sp], users.Seq)
	}
}
