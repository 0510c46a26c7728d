package space

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
)

// fakeReader is a reader entry of a head for a user nobody holds the key
// of, as many grants would add.
func fakeReader(t testing.TB, box int) sealedKeys {
	pub := make([]byte, ed25519.PublicKeySize)
	rand.Read(pub)
	u, err := identity.ID(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	return sealedKeys{User: u, Box: randomBytes(box)}
}

// inflate adds reader entries to h until its signed encoding is exactly
// size bytes (or the first size past it the entries can make).
func inflate(t testing.TB, key crypto.Signer, h *head, size int) signed {
	t.Helper()
	enc := func() (signed, int) {
		s, err := sign(key, headDomain, h)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := marshal(s)
		return s, len(b)
	}
	s, n := enc()
	for n < size-1000 {
		// An entry of a 120-byte box takes under 170 bytes: add what
		// surely fits, then measure again.
		for range max(1, (size-1000-n)/170) {
			h.Keys = append(h.Keys, fakeReader(t, 120))
		}
		s, n = enc()
	}
	// Pad the last entry's box to land on size: a box's length header
	// grows only past 255 and 65535 bytes, neither of which this crosses.
	if n < size {
		h.Keys = append(h.Keys, fakeReader(t, 300))
		_, n = enc()
		last := &h.Keys[len(h.Keys)-1]
		last.Box = randomBytes(len(last.Box) - (n - size))
		s, n = enc()
	}
	if n != size {
		t.Fatalf("inflated head is %d bytes, want %d", n, size)
	}
	return s
}

// TestHeadOverTheLimitIsRefused fills a space's head with readers to a
// few bytes under MaxHeadSize; the next write would carry it over, so the
// home refuses it with ErrHeadTooLarge, and the space stays at its
// previous head: in memory, on disk and in the store's pin.
func TestHeadOverTheLimitIsRefused(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	ns := bareNodes(t, 1, func(c *Config) { c.Dir = dir })
	a := ns[0]
	sp, err := a.m.Create(ctx, "full", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	o := a.m.ownedSpace(sp.ID())
	// A head just under the limit, as many readers would make it. The
	// write below adds a change of more than 100 bytes (a 64-byte tag and
	// the sealed name); the new root's CID and the clock take as many
	// bytes as before.
	o.mu.Lock()
	h := o.next()
	h.Keys = append(h.Keys, o.head.Keys...)
	inflate(t, a.m.cfg.UserKey, h, MaxHeadSize-50)
	_, err = o.commitLocked(ctx, h, nil)
	o.mu.Unlock()
	if err != nil {
		t.Fatalf("a head of MaxHeadSize-50 bytes was refused: %v", err)
	}
	before, beforeSigned := o.current()
	onDisk, _ := os.ReadFile(a.m.path(ownedDir, fileName(sp.ID())))
	root, _ := before.root()

	err = sp.PutBytes(ctx, "over", []byte("would carry the head over the limit"))
	if !errors.Is(err, ErrHeadTooLarge) {
		t.Fatalf("a write past the head's limit: %v, want ErrHeadTooLarge", err)
	}
	after, afterSigned := o.current()
	if after.Seq != before.Seq || string(afterSigned.Body) != string(beforeSigned.Body) {
		t.Fatalf("the space moved to seq %d (was %d) on a refused write", after.Seq, before.Seq)
	}
	if now, _ := os.ReadFile(a.m.path(ownedDir, fileName(sp.ID()))); string(now) != string(onDisk) {
		t.Fatal("the refused head was stored")
	}
	if !pinnedRoot(t, a, sp.ID(), root.String()) {
		t.Fatal("the space's pin left its root on a refused write")
	}
	if _, err := sp.GetBytes(ctx, "over"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused key reads: %v", err)
	}
	if got, err := sp.GetBytes(ctx, "before"); err != nil || string(got) != "kept" {
		t.Fatalf("an earlier key after a refused write: %q, %v", got, err)
	}
}

func pinnedRoot(t *testing.T, n *node, id, root string) bool {
	pins, err := n.content.Pins(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.Name == holdPinPrefix+id {
			return p.CID.String() == root
		}
	}
	return false
}

// freshUser is a user nobody runs a node for, as a delegate can make any
// number of.
func freshUser(t testing.TB) (ed25519.PrivateKey, peer.ID) {
	key := identity.Generate()
	u, err := identity.ID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return key, u
}

// fileFrom has from's node file g with home, over the wire, as any node
// may.
func fileFrom(ctx context.Context, from, home *node, g *Grant) error {
	raw, err := marshal(g.links)
	if err != nil {
		return err
	}
	_, err = grantFn.At(from.m.cfg.Remote, home.h.ID()).Call(ctx, raw)
	return err
}

// TestGrantCaps: a delegate files grants until MaxGrantsPerIssuer are
// filed under it, its own and a Sybil's it delegated to alike; the next
// are refused with ErrTooManyGrants and the earlier ones stay. The owner
// still grants, up to MaxGrants in all. Revoking the delegate frees what
// was filed under it.
func TestGrantCaps(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 2, nil)
	a, d := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "caps", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	o := a.m.ownedSpace(sp.ID())
	// Time enough passes between filings for the rate limit never to
	// refuse one: this test is of the caps.
	o.rate.now = (&clock{t: time.Unix(1e9, 0), step: GrantEvery}).now
	filed := func() int {
		o.mu.Lock()
		defer o.mu.Unlock()
		return len(o.grants)
	}
	gD, err := sp.Grant(ctx, d.user, Read|Write|Delegate, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ds, _ := d.m.Open(a.user, "caps")
	var under []*Grant // filed under D
	for range MaxGrantsPerIssuer - 1 {
		_, u := freshUser(t)
		g, err := ds.Grant(ctx, u, Read, time.Time{})
		if err != nil {
			t.Fatalf("grant %d under the delegate: %v", len(under)+1, err)
		}
		under = append(under, g)
	}
	// The last one D may file goes to a Sybil, with the right to delegate.
	sKey, sUser := freshUser(t)
	gS, err := ds.Grant(ctx, sUser, Read|Delegate, time.Time{})
	if err != nil {
		t.Fatalf("grant %d under the delegate: %v", len(under)+1, err)
	}
	under = append(under, gS)
	before, _ := o.current()

	// The Sybil's grant counts against D as well as itself.
	_, u := freshUser(t)
	gX, err := extend(gS, sKey, grantLink{Space: sp.ID(), Issuer: sUser, To: u, Rights: Read, Nonce: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fileFrom(ctx, d, a, gX); !errors.Is(err, ErrTooManyGrants) {
		t.Fatalf("a Sybil's grant past its delegate's cap: %v, want ErrTooManyGrants", err)
	}
	if _, err := ds.Grant(ctx, u, Read, time.Time{}); !errors.Is(err, ErrTooManyGrants) {
		t.Fatalf("grant %d under one delegate: %v, want ErrTooManyGrants", MaxGrantsPerIssuer+1, err)
	}
	after, _ := o.current()
	if after.Seq != before.Seq || after.keysFor(u) != nil {
		t.Fatalf("a refused grant changed the head (seq %d to %d)", before.Seq, after.Seq)
	}
	// What was filed before stays: each grantee has its grant and keys.
	if n := filed(); n != 1+MaxGrantsPerIssuer {
		t.Fatalf("%d grants filed, want %d", n, 1+MaxGrantsPerIssuer)
	}
	for _, g := range under {
		if got := o.grantsFor(g.To()); len(got) != 1 || got[0].ID() != g.ID() {
			t.Fatalf("grant %s: filed %v", g.ID(), got)
		}
		if after.keysFor(g.To()) == nil {
			t.Fatalf("grantee %s lost its keys", g.To())
		}
	}
	// Filing a grant again changes nothing and is not refused.
	if err := fileFrom(ctx, d, a, under[0]); err != nil {
		t.Fatalf("a grant filed again: %v", err)
	}
	if again, _ := o.current(); again.Seq != after.Seq {
		t.Fatal("a grant filed again made a new head")
	}

	// The owner grants on, to MaxGrants in all, and no further.
	for n := filed(); n < MaxGrants; n++ {
		_, u := freshUser(t)
		if _, err := sp.Grant(ctx, u, Read, time.Time{}); err != nil {
			t.Fatalf("the owner's grant with %d filed: %v", n, err)
		}
	}
	_, u = freshUser(t)
	if _, err := sp.Grant(ctx, u, Read, time.Time{}); !errors.Is(err, ErrTooManyGrants) {
		t.Fatalf("grant %d on a space: %v, want ErrTooManyGrants", MaxGrants+1, err)
	}
	if h, _ := o.current(); len(h.Keys) != MaxGrants+1 {
		t.Fatalf("%d readers in the head, want the owner and %d grantees", len(h.Keys), MaxGrants)
	}

	// Revoking D takes what was filed under it: D is refused, and the
	// owner has room again.
	if err := sp.Revoke(ctx, gD.ID()); err != nil {
		t.Fatal(err)
	}
	if n := filed(); n != MaxGrants-1-MaxGrantsPerIssuer {
		t.Fatalf("%d grants filed after revoking the delegate, want %d", n, MaxGrants-1-MaxGrantsPerIssuer)
	}
	if err := fileFrom(ctx, d, a, under[0]); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a revoked delegate's grant: %v, want ErrNotAuthorised", err)
	}
	if _, err := sp.Grant(ctx, u, Read, time.Time{}); err != nil {
		t.Fatalf("the owner's grant once the delegate is revoked: %v", err)
	}
}

// TestGrantCapsFitTheHead measures the largest head the caps allow: the
// longest name, 64 holders named in the policy and holding, the largest
// change, and MaxGrants readers besides the owner, their keys really
// wrapped. It must stay under a twentieth of MaxHeadSize, and leave room
// for a hundred key rotations, each of which adds a data key to every
// reader's keys and a revoked ID.
func TestGrantCapsFitTheHead(t *testing.T) {
	ownerKey, owner := freshUser(t)
	name := strings.Repeat("n", MaxNameLen)
	id := owner.String() + "/" + name
	var holders []peer.ID
	for range 64 {
		_, p := freshUser(t)
		holders = append(holders, p)
	}
	h := &head{Owner: owner, Name: name, Seq: 1 << 40, Root: locator("root").Bytes(), Home: owner,
		Policy: Policy{On: holders, Replicas: 64}, Holders: holders, Epoch: 1 << 20, Count: 1 << 40, Bytes: 1 << 50, Time: time.Now().UnixNano()}
	keys := newKeyring()
	dk, _ := keys.data(0)
	tag := keys.tag("k")
	h.Changes = []headChange{{Op: OpPut, Tag: tag, Name: sealSmall(dk, metaAD(id, tag), []byte(strings.Repeat("k", MaxKeyLen)))}}
	readers := []peer.ID{owner}
	for range MaxGrants {
		_, u := freshUser(t)
		readers = append(readers, u)
	}
	size := func(k keyring) (int, int) {
		h.Keys = nil
		for _, u := range readers {
			box, err := wrapKeys(id, u, k)
			if err != nil {
				t.Fatal(err)
			}
			h.Keys = append(h.Keys, sealedKeys{User: u, Box: box})
		}
		s, err := sign(ownerKey, headDomain, h)
		if err != nil {
			t.Fatal(err)
		}
		one, _ := marshal(h.Keys[0])
		return encodedSize(s), len(one)
	}
	full, entry := size(keys)
	keys.rotate()
	rotated, _ := size(keys)
	revokedID := 2 + 32 // a text string's two header bytes and 32 hex digits
	perRotation := rotated - full + revokedID
	rotations := (MaxHeadSize - full) / perRotation
	t.Logf("a full head: %d bytes (%d readers of %d bytes each); a rotation adds %d; room for %d rotations; without caps, %d readers reach MaxHeadSize",
		full, len(readers), entry, perRotation, rotations, MaxHeadSize/entry)
	if full > MaxHeadSize/20 {
		t.Errorf("at MaxGrants readers a head is %d bytes, over a twentieth of MaxHeadSize (%d)", full, MaxHeadSize/20)
	}
	if rotations < 100 {
		t.Errorf("at MaxGrants readers a head has room for %d key rotations, want 100", rotations)
	}
	if MaxGrantsPerIssuer*8 > MaxGrants {
		t.Errorf("one delegate may take %d of %d grants, over an eighth", MaxGrantsPerIssuer, MaxGrants)
	}
}

// clock is a test's clock for the grant limiter: it moves only when told,
// or by step on each reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestGrantRate: a delegate files GrantBurst grants at once, one of them
// to a Sybil it lets delegate; the next is refused with ErrGrantRate, and
// so is the Sybil's, filed under it. Another delegate files meanwhile.
// Once GrantEvery has passed, the first files one more, and only one.
func TestGrantRate(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, d1, d2 := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "rate", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1e9, 0)}
	a.m.ownedSpace(sp.ID()).rate.now = clk.now
	for _, d := range []*node{d1, d2} {
		if _, err := sp.Grant(ctx, d.user, Read|Delegate, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	s1, _ := d1.m.Open(a.user, "rate")
	s2, _ := d2.m.Open(a.user, "rate")
	sKey, sUser := freshUser(t)
	gS, err := s1.Grant(ctx, sUser, Read|Delegate, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < GrantBurst; i++ {
		_, u := freshUser(t)
		if _, err := s1.Grant(ctx, u, Read, time.Time{}); err != nil {
			t.Fatalf("grant %d of a burst of %d: %v", i+1, GrantBurst, err)
		}
	}
	_, u := freshUser(t)
	if _, err := s1.Grant(ctx, u, Read, time.Time{}); !errors.Is(err, ErrGrantRate) {
		t.Fatalf("grant %d of a burst: %v, want ErrGrantRate", GrantBurst+1, err)
	}
	gX, err := extend(gS, sKey, grantLink{Space: sp.ID(), Issuer: sUser, To: u, Rights: Read, Nonce: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := fileFrom(ctx, d1, a, gX); !errors.Is(err, ErrGrantRate) {
		t.Fatalf("a Sybil's grant under a delegate out of its burst: %v, want ErrGrantRate", err)
	}
	if _, err := s2.Grant(ctx, u, Read, time.Time{}); err != nil {
		t.Fatalf("another delegate's grant while the first is held back: %v", err)
	}
	clk.advance(GrantEvery)
	_, u = freshUser(t)
	if _, err := s1.Grant(ctx, u, Read, time.Time{}); err != nil {
		t.Fatalf("a grant once GrantEvery passed: %v", err)
	}
	_, u = freshUser(t)
	if _, err := s1.Grant(ctx, u, Read, time.Time{}); !errors.Is(err, ErrGrantRate) {
		t.Fatalf("a second grant within GrantEvery: %v, want ErrGrantRate", err)
	}
}

// TestGrantFieldsAreCapped: a grant whose link carries a huge nonce, or
// fields nobody reads, is refused as it decodes, however well it is
// signed, and so never filed.
func TestGrantFieldsAreCapped(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 2, nil)
	a, d := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "fields", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	gD, err := sp.Grant(ctx, d.user, Read|Delegate, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, u := freshUser(t)
	// A link with a field this version does not know, as a newer one
	// might add: the decoder ignores it, the signature covers it.
	type paddedLink struct {
		grantLink
		Pad []byte `cbor:"99,keyasint"`
	}
	for _, tc := range []struct {
		name string
		link any
	}{
		{"a 4 KiB nonce", grantLink{Space: sp.ID(), Issuer: d.user, To: u, Rights: Read, Nonce: make([]byte, 4<<10)}},
		{"a 33-byte nonce", grantLink{Space: sp.ID(), Issuer: d.user, To: u, Rights: Read, Nonce: make([]byte, maxNonce+1)}},
		{"4 KiB of unknown fields", paddedLink{grantLink{Space: sp.ID(), Issuer: d.user, To: u, Rights: Read, Nonce: []byte{1}}, make([]byte, 4<<10)}},
	} {
		s, err := sign(d.m.cfg.UserKey, grantDomain, tc.link)
		if err != nil {
			t.Fatal(err)
		}
		links := append(slices.Clone(gD.links), s)
		if _, err := grantOf(links); !errors.Is(err, ErrBadGrant) {
			t.Errorf("%s: decoded with %v, want ErrBadGrant", tc.name, err)
		}
		raw, _ := marshal(links)
		if _, err := grantFn.At(d.m.cfg.Remote, a.h.ID()).Call(ctx, raw); !errors.Is(err, ErrBadGrant) {
			t.Errorf("%s: filed with %v, want ErrBadGrant", tc.name, err)
		}
	}
	if got := a.m.ownedSpace(sp.ID()).grantsFor(u); len(got) != 0 {
		t.Fatalf("%d grants with oversized fields were filed", len(got))
	}
	// The largest fields a real grant has pass: a full nonce and an end.
	if _, err := extend(gD, d.m.cfg.UserKey, grantLink{Space: sp.ID(), Issuer: d.user, To: u, Rights: Read, Until: 1 << 40, Nonce: make([]byte, maxNonce)}); err != nil {
		t.Fatalf("a grant with a %d-byte nonce: %v", maxNonce, err)
	}
}
