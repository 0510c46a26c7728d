package space

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/nodecert"
)

// TestAttack39StrangerMakesANodePrepareAHome is the attack: the prepare
// step of a handover (nube.space.home.prepare) checks only that the head
// it is sent is a real head of the node's user's space and that some
// caller asked; it never checks that the caller is the space's home (or
// any node of the user). Heads are public (the DHT keeps them), so a
// stranger of another user sends one to any node of the user that can
// take a home, and that node fetches the whole space from its home:
// each call a download of the space, on a node and at a home that never
// chose to, repeatable at will. Fixed when the prepare is refused to a
// caller that is not the head's home.
func TestAttack39StrangerMakesANodePrepareAHome(t *testing.T) {
	ctx := testCtx(t)
	user := identity.Generate()
	i := 0
	ns := bareNodes(t, 3, func(c *Config) {
		switch i {
		case 0: // the home: holds the user key
			c.UserKey = user
		case 1: // another node of the user, without the user key
			c.UserKey = user
			priv, err := c.Host.Peerstore().PrivKey(c.Host.ID()).Raw()
			if err != nil {
				t.Fatal(err)
			}
			c.NodeKey = ed25519.PrivateKey(priv)
			cert, err := nodecert.New(user, c.Host.ID())
			if err != nil {
				t.Fatal(err)
			}
			c.Cert = &cert
		}
		i++
	})
	home, other, stranger := ns[0], ns[1], ns[2]
	if stranger.user == home.user {
		t.Fatal("the stranger is of the owner's user")
	}
	sp, err := home.m.Create(ctx, "big", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a value the other node was never asked to fetch by its user")
	if err := sp.PutBytes(ctx, "v", secret); err != nil {
		t.Fatal(err)
	}
	// The head, as anyone gets it from the home (or the DHT).
	hr, err := headFn.At(stranger.m.cfg.Remote, home.h.ID()).Call(ctx, headReq{Space: sp.ID()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = prepareHomeFn.At(stranger.m.cfg.Remote, other.h.ID()).Call(ctx, prepareHomeReq(hr))
	if err == nil {
		t.Fatalf("a stranger (user %s) made node %s of user %s prepare to take the home of %s: it fetched the whole space on the stranger's word",
			stranger.user, other.h.ID(), home.user, sp.ID())
	}
	if !errors.Is(err, ErrNotAuthorised) {
		t.Logf("refused, though not as ErrNotAuthorised: %v", err)
	}
}

// TestAttack39PendingHandoverReachesARemovedNode is the attack: a
// handover whose answer was lost leaves the old home frozen, offering
// the handover (the space's keys wrapped to the new home, its grants,
// its delegation) again each repair round until the new home answers
// (retryHandover). If the user meanwhile removes that node (a stolen
// laptop that went dark mid-handover), the offer still goes out when it
// shows up again: retryHandover never asks whether the node may still
// be the user's (Config.Holder, which handOver itself asks), so the
// removed node gets the keys and the home. Fixed when a pending
// handover to a node the user removed is withdrawn (the old home is home
// again) and never sent.
func TestAttack39PendingHandoverReachesARemovedNode(t *testing.T) {
	ctx := testCtx(t)
	user := identity.Generate()
	var removed atomic.Pointer[peer.ID]
	i := 0
	ns := bareNodes(t, 2, func(c *Config) {
		c.UserKey = user
		switch i {
		case 0: // the home, with the user key; it knows whom the user removed
			c.Holder = func(node peer.ID) error {
				if r := removed.Load(); r != nil && *r == node {
					return fmt.Errorf("%s was removed by its user", node)
				}
				return nil
			}
		case 1: // another node of the user, without the user key
			priv, err := c.Host.Peerstore().PrivKey(c.Host.ID()).Raw()
			if err != nil {
				t.Fatal(err)
			}
			c.NodeKey = ed25519.PrivateKey(priv)
			cert, err := nodecert.New(user, c.Host.ID())
			if err != nil {
				t.Fatal(err)
			}
			c.Cert = &cert
		}
		i++
	})
	a, b := ns[0], ns[1]
	sp, err := a.m.Create(ctx, "frozen", Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "k", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	o := a.m.ownedSpace(sp.ID())
	// The state handOver leaves when the take's answer was lost and B did
	// not answer: the same request it built, pending, and A frozen.
	cert := *b.m.cfg.Cert
	o.mu.Lock()
	key, chain, err := o.headSigner()
	if err != nil {
		t.Fatal(err)
	}
	link, err := sign(key, homeDomain, homeLink{Space: o.id, Node: b.h.ID(), Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	box, err := wrapKeysInfo(homeInfo(o.id), b.h.ID(), o.keys)
	if err != nil {
		t.Fatal(err)
	}
	h := o.next()
	h.Home = b.h.ID()
	last, err := o.signLocked(h, o.keys)
	if err != nil {
		t.Fatal(err)
	}
	req := takeHomeReq{Chain: append(slices.Clone(chain), link), Keys: box}
	if req.Head, err = marshal(last); err != nil {
		t.Fatal(err)
	}
	o.gone, o.pending = b.h.ID(), &req
	o.mu.Unlock()

	// The user removes B; then a repair round offers the handover again.
	bid := b.h.ID()
	removed.Store(&bid)
	if a.m.refused(bid) == nil {
		t.Fatal("the home does not know B was removed")
	}
	o.retryHandover(ctx)
	if b.m.ownedSpace(sp.ID()) != nil {
		t.Fatalf("node %s, removed by its user, took the home of %s (and its keys) from a pending handover", bid, sp.ID())
	}
}

// attack39DHTCap is the most a DHT head value should be: IPNS's own cap
// (10 KiB, boxo's ipns.MaxRecordSize) is what DHT peers budget a record
// for; a head's readers' boxes need not ride in it.
const attack39DHTCap = 64 << 10

// TestAttack39StrangerStoresMegabyteHeadsInTheDHT is the attack: the
// DHT's validator for HeadNamespace takes any head up to MaxHeadSize
// (1 MiB) signed by the key of the user the key names, whether or not the
// space exists anywhere. A stranger makes a user key and as many names as
// it likes, and has the ~20 DHT peers closest to each key keep 1 MiB of
// junk (wrapped-key boxes of readers that do not exist) for 36 hours, for
// free: a hundred times what an IPNS record may cost them. Fixed when a
// DHT head value is capped far below MaxHeadSize (a slim head: seq, root,
// home, holders, without the readers' boxes, or the head's CID).
func TestAttack39StrangerStoresMegabyteHeadsInTheDHT(t *testing.T) {
	key := identity.Generate()
	owner, err := identity.ID(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	h := &head{Owner: owner, Name: "junk-1", Seq: 1, Home: owner, Root: locator("nowhere").Bytes()}
	s := inflate(t, key, h, MaxHeadSize-64)
	b, err := marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := (HeadValidator{}).Validate(HeadKey(h.id()), b); err == nil && len(b) > attack39DHTCap {
		t.Fatalf("the DHT's validator takes a %d-byte head of a space %s that exists nowhere (cap wanted: %d)", len(b), h.id(), attack39DHTCap)
	}
}
