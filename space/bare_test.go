package space

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/remote"
)

// node is one test node on a bare host: its own user, store and space
// layer.
type node struct {
	h       host.Host
	content *content.Service
	m       *Manager
	user    peer.ID
}

func bareNodes(t *testing.T, n int, tune func(*Config)) []*node {
	t.Helper()
	ctx := context.Background()
	var out []*node
	for _, h := range hosttest.Hosts(t, n) {
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := content.New(ctx, content.Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Host: h, Content: cs, Remote: ep, UserKey: identity.Generate()}
		if tune != nil {
			tune(&cfg)
		}
		m, err := New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			m.Close()
			ep.Close()
			cs.Close()
			st.Close()
		})
		out = append(out, &node{h: h, content: cs, m: m, user: m.User()})
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// storeHolds reports whether any block in n's store contains needle.
func storeHolds(t *testing.T, ctx context.Context, n *node, needle []byte) bool {
	bs := n.content.Store().Blockstore()
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for c := range keys {
		b, err := bs.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b.RawData(), needle) {
			found = true
		}
	}
	return found
}

func pinned(t *testing.T, ctx context.Context, n *node, id string) bool {
	pins, err := n.content.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pins {
		if p.Name == holdPinPrefix+id {
			return true
		}
	}
	return false
}

func TestPlacedOnHolderSeesOnlyCiphertext(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "notes", Policy{On: []peer.ID{b.h.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the plaintext nobody but the owner may see")
	keyName := "diary/2026-12-02-secret-key-name"
	if err := sp.PutBytes(ctx, keyName, secret); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("a large value, in the clear only on its owner's side. "), 40000)
	if err := sp.PutBytes(ctx, "big", big); err != nil {
		t.Fatal(err)
	}
	if !pinned(t, ctx, b, sp.ID()) {
		t.Fatal("B does not hold the space it was placed on")
	}
	if pinned(t, ctx, c, sp.ID()) {
		t.Fatal("C holds a space placed on B only")
	}
	for _, needle := range [][]byte{secret, []byte(keyName), big[:64]} {
		if storeHolds(t, ctx, b, needle) {
			t.Fatalf("B's store holds plaintext %q", needle[:20])
		}
		if storeHolds(t, ctx, c, needle) {
			t.Fatalf("C's store holds plaintext %q", needle[:20])
		}
	}
	// Everything is sealed on the owner's node too.
	if storeHolds(t, ctx, a, secret) {
		t.Fatal("the owner's store holds the plaintext")
	}
	// A reader without a grant is told so.
	cs, _ := c.m.Open(a.user, "notes")
	if _, err := cs.GetBytes(ctx, keyName); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("get without a grant: %v, want ErrNotAuthorised", err)
	}
	if _, err := sp.Grant(ctx, c.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.GetBytes(ctx, keyName)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("C reads %q, %v", got, err)
	}
	got, err = cs.GetBytes(ctx, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("C reads %d bytes of big, %v", len(got), err)
	}
	items, err := cs.List(ctx, "diary/")
	if err != nil || len(items) != 1 || items[0].Key != keyName || items[0].Size != uint64(len(secret)) {
		t.Fatalf("list: %+v, %v", items, err)
	}
	if _, err := cs.GetBytes(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v", err)
	}
}

func TestTamperingHolderIsCaught(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 4, nil)
	a, b, c, d := ns[0], ns[1], ns[2], ns[3]
	sp, err := a.m.Create(ctx, "t", Policy{On: []peer.ID{b.h.ID(), c.h.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("value")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, d.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tampered := 0
	lie := func(bs []block) {
		for i := range bs {
			if len(bs[i].Data) > 0 {
				bs[i].Data = append([]byte{}, bs[i].Data...)
				bs[i].Data[len(bs[i].Data)-1] ^= 1
				tampered++
			}
		}
	}
	b.m.tamperRead, c.m.tamperRead = lie, lie
	ds, _ := d.m.Open(a.user, "t")
	got, err := ds.GetBytes(ctx, "k")
	if err != nil || string(got) != "value" {
		t.Fatalf("read past two lying holders: %q, %v", got, err)
	}
	if tampered == 0 {
		t.Fatal("no holder was asked")
	}
}

func TestGrantsDelegationExpiryRevocation(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "shared", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	bs, _ := b.m.Open(a.user, "shared")
	cs, _ := c.m.Open(a.user, "shared")
	// No grant: no write.
	if err := bs.PutBytes(ctx, "x", []byte("1")); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("write without a grant: %v", err)
	}
	gB, err := sp.Grant(ctx, b.user, Write|Delegate, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.PutBytes(ctx, "from-b", []byte("b wrote this")); err != nil {
		t.Fatal(err)
	}
	if got, err := sp.GetBytes(ctx, "from-b"); err != nil || string(got) != "b wrote this" {
		t.Fatalf("owner reads B's write: %q, %v", got, err)
	}
	// B delegates read to C, for no longer than its own grant.
	if _, err := bs.Grant(ctx, c.user, Read, time.Now().Add(2*time.Hour)); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("a delegation outlasting its parent: %v, want ErrBadGrant", err)
	}
	gC, err := bs.Grant(ctx, c.user, Read, time.Now().Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cs.GetBytes(ctx, "from-b"); err != nil || string(got) != "b wrote this" {
		t.Fatalf("C reads through B's delegation: %q, %v", got, err)
	}
	if err := cs.PutBytes(ctx, "from-c", []byte("no")); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("C writes with a read grant: %v", err)
	}
	// C has no delegate right; a delegation that widens is refused.
	if _, err := cs.Grant(ctx, b.user, Read, time.Time{}); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("C delegates without the right: %v", err)
	}
	if _, err := extend(gC, c.m.cfg.UserKey, grantLink{Space: sp.ID(), Issuer: c.user, To: b.user, Rights: Read | Write, Nonce: []byte{1}}); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("a delegation that widens: %v", err)
	}
	// An expired grant is refused.
	if _, err := sp.Grant(ctx, c.user, Read, time.Now().Add(-time.Minute)); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("an expired grant: %v", err)
	}
	// A grant for another space does not open this one.
	other, err := a.m.Create(ctx, "other", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	gOther, err := other.Grant(ctx, b.user, Write, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := gOther.check(sp.ID(), Write, time.Now(), nil); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a grant for another space: %v", err)
	}
	// Revoking B's grant ends B's writes and, with the key rotated, C's
	// reading of what comes after.
	if err := sp.Revoke(ctx, gB.ID()); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "after", []byte("written after the revocation")); err != nil {
		t.Fatal(err)
	}
	if err := bs.PutBytes(ctx, "from-b-2", []byte("x")); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("B writes after revocation: %v", err)
	}
	for _, s := range []*Space{bs, cs} {
		if _, err := s.GetBytes(ctx, "after"); !errors.Is(err, ErrNotAuthorised) {
			t.Fatalf("a revoked reader reads a later write: %v", err)
		}
	}
	if got, err := sp.GetBytes(ctx, "from-b"); err != nil || string(got) != "b wrote this" {
		t.Fatalf("the owner reads an old write after rotation: %q, %v", got, err)
	}
}

func TestRepairReplacesAGoneHolder(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 4, func(c *Config) {
		c.RepairGrace = 300 * time.Millisecond
		c.RepairInterval = 100 * time.Millisecond
	})
	a := ns[0]
	sp, err := a.m.Create(ctx, "r", Policy{Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("kept through a holder's death")); err != nil {
		t.Fatal(err)
	}
	info, err := sp.Info(ctx)
	if err != nil || len(info.Holders) != 2 {
		t.Fatalf("info: %+v, %v", info, err)
	}
	gone := info.Holders[0].Peer
	killed := time.Now()
	var spare *node
	for _, n := range ns[1:] {
		if n.h.ID() == gone {
			n.m.Close()
			n.h.Close()
		} else if n.h.ID() != info.Holders[1].Peer {
			spare = n
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, _ := a.m.ownedSpace(sp.ID()).current()
		if !h.holds(gone) && h.holds(spare.h.ID()) && pinned(t, ctx, spare, sp.ID()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy was not restored: holders %v", h.Holders)
		}
		waitHead(ctx, a.m.ownedSpace(sp.ID()))
	}
	t.Logf("the policy held again %v after a holder died (grace 300 ms, checked every 100 ms)", time.Since(killed).Round(time.Millisecond))
	r, _ := sp.resolve(ctx, false)
	if len(r.head.Holders) != 2 {
		t.Fatalf("holders after repair: %v", r.head.Holders)
	}
	if !storeHolds(t, ctx, spare, []byte(valueMagic)) {
		t.Fatal("the new holder has no sealed value in its store")
	}
}

// waitHead waits for the next head of o (or a second, whichever first).
func waitHead(ctx context.Context, o *owned) {
	ch, _ := o.watch(^uint64(0))
	defer o.unwatch(ch)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}

func TestHeadsOlderOrForgedAreIgnored(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 2, nil)
	a, b := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "h", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	_, old := a.m.ownedSpace(sp.ID()).current()
	if err := sp.PutBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	_, cur := a.m.ownedSpace(sp.ID()).current()
	curB, _ := marshal(cur)
	oldB, _ := marshal(old)
	// B holds nothing but is pushed heads: the newer is taken, the older
	// then ignored.
	bs, _ := b.m.Open(a.user, "h")
	bs.learn(curB, keyring{})
	bs.learn(oldB, keyring{})
	if v := b.m.cache[sp.ID()]; v == nil || v.head.Seq != seqOf(cur) {
		t.Fatalf("B went back to an older head")
	}
	// A head signed by someone else is refused.
	var h head
	if err := unmarshal(cur.Body, &h); err != nil {
		t.Fatal(err)
	}
	h.Seq += 10
	forged, _ := sign(b.m.cfg.UserKey, headDomain, &h)
	fb, _ := marshal(forged)
	if _, _, err := decodeHead(fb, sp.ID()); !errors.Is(err, ErrForged) {
		t.Fatalf("forged head: %v", err)
	}
	// And a head too large, before decoding.
	if _, _, err := decodeHead(make([]byte, MaxHeadSize+1), ""); !errors.Is(err, ErrBadHead) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized head: %v", err)
	}
	// Oversized keys and values name the limit.
	if err := sp.PutBytes(ctx, strings.Repeat("k", MaxKeyLen+1), nil); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "1024") {
		t.Fatalf("oversized key: %v", err)
	}
}

func TestValueOverTheLimit(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 1, func(c *Config) { c.MaxValue = 100 << 10 })
	sp, err := ns[0].m.Create(ctx, "v", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	err = sp.PutBytes(ctx, "k", make([]byte, 200<<10))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "102400") {
		t.Fatalf("oversized value: %v", err)
	}
	if err := sp.PutBytes(ctx, "k", make([]byte, 100<<10)); err != nil {
		t.Fatalf("a value at the limit: %v", err)
	}
}

func TestWatchReportsChangesInOrder(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 2, nil)
	a, b := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "w", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, b.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bs, _ := b.m.Open(a.user, "w")
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan Event, 8)
	go func() {
		defer close(events)
		for ev, err := range bs.Watch(wctx) {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	// Write once the watcher is subscribed at the home.
	o := a.m.ownedSpace(sp.ID())
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		o.wmu.Lock()
		n := len(o.watchers)
		o.wmu.Unlock()
		if n > 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the watcher never subscribed")
		}
	}
	want := []string{"put a", "put b", "delete a"}
	if err := sp.PutBytes(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < len(want) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("watch ended after %v", got)
			}
			got = append(got, ev.Kind+" "+ev.Key)
		case <-ctx.Done():
			t.Fatalf("watch saw %v", got)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("watch saw %v, want %v", got, want)
	}
}

// TestWatchStartsWhenCalled: a change made after Watch is called but before
// its sequence is ranged is reported (the API sends "watching" in between).
func TestWatchStartsWhenCalled(t *testing.T) {
	ctx := testCtx(t)
	a := bareNodes(t, 1, nil)[0]
	sp, err := a.m.Create(ctx, "w", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := sp.Watch(wctx)
	if err := sp.PutBytes(ctx, "early", []byte("1")); err != nil {
		t.Fatal(err)
	}
	for ev, err := range events {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != "put" || ev.Key != "early" {
			t.Fatalf("first event %+v, want the put of early", ev)
		}
		return
	}
	t.Fatal("the watch ended without an event")
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a := ns[0]
	sp, err := a.m.Create(ctx, "busy", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	writers := []*Space{sp}
	for _, n := range ns[1:] {
		if _, err := sp.Grant(ctx, n.user, Write, time.Time{}); err != nil {
			t.Fatal(err)
		}
		s, _ := n.m.Open(a.user, "busy")
		writers = append(writers, s)
	}
	const each = 15
	errs := make(chan error, len(writers))
	for i, w := range writers {
		go func() {
			for j := range each {
				if err := w.PutBytes(ctx, fmt.Sprintf("%d/%d", i, j), []byte{byte(j)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	items, err := sp.List(ctx, "")
	if err != nil || len(items) != each*len(writers) {
		t.Fatalf("%d keys after concurrent writes, want %d (%v)", len(items), each*len(writers), err)
	}
	info, _ := sp.Info(ctx)
	if info.Keys != uint64(each*len(writers)) {
		t.Fatalf("the head counts %d keys", info.Keys)
	}
}

// TestGranteeWritesALargeValue has a grantee write a value too large to
// travel inline: the home fetches it from the writer's store.
func TestGranteeWritesALargeValue(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "big", Policy{On: []peer.ID{c.h.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, b.user, Write, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bs, _ := b.m.Open(a.user, "big")
	val := randomBytes(3<<20 + 123)
	if err := bs.PutBytes(ctx, "blob", val); err != nil {
		t.Fatal(err)
	}
	got, err := sp.GetBytes(ctx, "blob")
	if err != nil || !bytes.Equal(got, val) {
		t.Fatalf("owner reads %d bytes, %v", len(got), err)
	}
	// The writer kept nothing pinned once the home had it.
	pins, _ := b.content.Pins(ctx)
	if len(pins) != 0 {
		t.Fatalf("the writer still pins %v", pins)
	}
	if !pinned(t, ctx, c, sp.ID()) {
		t.Fatal("the holder does not hold the space")
	}
}

// rawChange builds, as a writer on n would, the encoded change that puts
// key=value into s.
func rawChange(t *testing.T, ctx context.Context, n *node, s *Space, key string, value []byte, g *Grant) []byte {
	t.Helper()
	v, err := s.readable(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	tag := v.keys.tag(key)
	dk, _ := v.keys.data(v.head.Epoch)
	mem := newMemDAG(nil)
	vn, err := content.ImportFile(mem, newSealer(dk, bytes.NewReader(value), 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	en, err := makeEntry(v.keys, v.head.Epoch, s.ID(), tag, meta{Key: key, Size: uint64(len(value)), Value: vn.Cid().Bytes(), Writer: n.user.String()}, false)
	if err != nil {
		t.Fatal(err)
	}
	body := changeBody{Space: s.ID(), Writer: n.user, Op: OpPut, Tag: tag, Entry: en.Cid().Bytes(), Nonce: randomBytes(16), Time: time.Now().UnixNano()}
	sg, err := sign(n.m.cfg.UserKey, changeDomain, body)
	if err != nil {
		t.Fatal(err)
	}
	c := change{Signed: sg, Blocks: append([]block{{CID: en.Cid().Bytes(), Data: en.RawData()}}, mem.added()...)}
	if g != nil {
		c.Grant = g.links
	}
	raw, err := marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHomeRefusesReplaysForgeriesAndForeignGrants(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "guarded", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.m.Create(ctx, "other", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := sp.Grant(ctx, b.user, Write, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	gOther, err := other.Grant(ctx, c.user, Write, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, c.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bs, _ := b.m.Open(a.user, "guarded")
	cs, _ := c.m.Open(a.user, "guarded")
	write := func(raw []byte) error {
		_, err := writeFn.At(b.m.cfg.Remote, a.h.ID()).Call(ctx, raw)
		return err
	}
	raw := rawChange(t, ctx, b, bs, "k", []byte("once"), g)
	if err := write(raw); err != nil {
		t.Fatalf("a good change: %v", err)
	}
	before, _ := a.m.ownedSpace(sp.ID()).current()
	if err := write(raw); !errors.Is(err, ErrStale) {
		t.Fatalf("a replayed change: %v, want ErrStale", err)
	}
	// Signed by B but claiming C as its writer.
	forged := rawChange(t, ctx, b, bs, "k", []byte("forged"), g)
	var ch change
	unmarshal(forged, &ch)
	var body changeBody
	unmarshal(ch.Signed.Body, &body)
	body.Writer = c.user
	ch.Signed.Body, _ = marshal(body)
	forged, _ = marshal(ch)
	if err := write(forged); !errors.Is(err, ErrBadChange) {
		t.Fatalf("a change whose signature is not its writer's: %v", err)
	}
	// C's grant is for another space.
	if err := write(rawChange(t, ctx, c, cs, "k", []byte("foreign"), gOther)); !errors.Is(err, ErrNotAuthorised) {
		t.Fatalf("a change under a grant for another space: %v", err)
	}
	// A change with no grant at all.
	if err := write(rawChange(t, ctx, c, cs, "k", []byte("none"), nil)); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("a change without a grant: %v", err)
	}
	// A value whose blocks are not all there.
	holey := rawChange(t, ctx, b, bs, "k", randomBytes(600<<10), g)
	unmarshal(holey, &ch)
	blocksOf := ch.Blocks
	ch.Blocks = append(slices.Clone(blocksOf[:1]), blocksOf[2:]...) // the entry first, then the leaves, the root last: drop a leaf
	holey, _ = marshal(ch)
	if err := write(holey); !errors.Is(err, ErrBadChange) {
		t.Fatalf("a value with a block missing: %v, want ErrBadChange", err)
	}
	// A value that nobody has: the home gives up once nothing arrives
	// for a while, instead of waiting as long as the writer says.
	a.m.stall = 200 * time.Millisecond
	unmarshal(rawChange(t, ctx, b, bs, "k", randomBytes(600<<10), g), &ch)
	ch.Blocks = ch.Blocks[:1]
	holey, _ = marshal(ch)
	if err := write(holey); err == nil || !strings.Contains(err.Error(), "nothing arrived") {
		t.Fatalf("a value nobody has: %v", err)
	}
	after, _ := a.m.ownedSpace(sp.ID()).current()
	if after.Seq != before.Seq {
		t.Fatalf("refused changes moved the head from %d to %d", before.Seq, after.Seq)
	}
	if got, err := sp.GetBytes(ctx, "k"); err != nil || string(got) != "once" {
		t.Fatalf("the value after refused changes: %q, %v", got, err)
	}
	// Oversized input is refused before decoding, naming the limit.
	if _, _, err := decodeChange(make([]byte, MaxChangeSize+1)); !errors.Is(err, ErrBadChange) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("an oversized change: %v", err)
	}
}

func TestRemoveReleasesHolders(t *testing.T) {
	ctx := testCtx(t)
	ns := bareNodes(t, 3, nil)
	a, b, c := ns[0], ns[1], ns[2]
	sp, err := a.m.Create(ctx, "gone", Policy{On: []peer.ID{b.h.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Grant(ctx, c.user, Read, time.Time{}); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.m.Open(a.user, "gone")
	if _, err := cs.GetBytes(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := sp.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if pinned(t, ctx, b, sp.ID()) || pinned(t, ctx, a, sp.ID()) {
		t.Fatal("a deleted space is still pinned")
	}
	if _, err := cs.resolve(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.GetBytes(ctx, "k"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("a read of a deleted space: %v", err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("again")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a write to a deleted space: %v", err)
	}
}
