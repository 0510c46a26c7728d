package invite_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/invite"
)

func newID(t testing.TB) peer.ID {
	id, err := identity.ID(identity.Generate().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRoundTrip(t *testing.T) {
	b, _ := invite.Open("")
	self, user := newID(t), newID(t)
	now := time.Now()
	in, err := b.New(self, user, []string{"/ip4/127.0.0.1/tcp/4040", "/ip4/127.0.0.1/udp/4040/quic-v1"}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	text := in.String()
	if !strings.HasPrefix(text, invite.Prefix) || strings.ContainsAny(text, " \n=+/") {
		t.Fatalf("invite text %q: want %q and base64url, one word", text, invite.Prefix)
	}
	got, err := invite.Parse("  " + text + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != self || got.User != user || !bytes.Equal(got.Secret, in.Secret) || got.Expires != in.Expires || len(got.AddrInfo().Addrs) != 2 {
		t.Fatalf("parsed %+v, want %+v", got, in)
	}
	if len(in.Secret) < 16 {
		t.Fatalf("a secret of %d bytes: want at least 128 bits", len(in.Secret))
	}
	if got.Expired(now) || !got.Expired(now.Add(time.Minute+time.Second)) {
		t.Fatal("Expired does not follow the invite's time")
	}
	other, _ := b.New(self, user, nil, time.Minute, now)
	if bytes.Equal(other.Secret, in.Secret) {
		t.Fatal("two invites share a secret")
	}
}

func TestParseRefuses(t *testing.T) {
	b, _ := invite.Open("")
	good, _ := b.New(newID(t), newID(t), nil, time.Minute, time.Now())
	short := good
	short.Secret = short.Secret[:8]
	noUser := good
	noUser.User = ""
	badAddr := good
	badAddr.Addrs = []string{"not-a-multiaddr"}
	for name, s := range map[string]string{
		"empty":        "",
		"no prefix":    strings.TrimPrefix(good.String(), invite.Prefix),
		"other prefix": "nubeinvite2:" + strings.TrimPrefix(good.String(), invite.Prefix),
		"not base64":   invite.Prefix + "!!!",
		"not cbor":     invite.Prefix + "AAAA",
		"short secret": short.String(),
		"no user":      noUser.String(),
		"bad address":  badAddr.String(),
		"too long":     invite.Prefix + strings.Repeat("A", invite.MaxText),
	} {
		if _, err := invite.Parse(s); !errors.Is(err, invite.ErrBadInvite) || !errors.Is(err, errcode.ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadInvite", name, err)
		}
	}
}

// TestUse: an invite is good once, within its time, with its own secret,
// and a used one stays used across a reopening of the book.
func TestUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "invites.json")
	b, err := invite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	self, user := newID(t), newID(t)
	in, _ := b.New(self, user, nil, time.Minute, now)
	late, _ := b.New(self, user, nil, time.Minute, now)
	kept, _ := b.New(self, user, nil, time.Minute, now)
	if n := b.Pending(now); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}
	wrong := bytes.Clone(in.Secret)
	wrong[0] ^= 1
	if err := b.Use(wrong, now); !errors.Is(err, invite.ErrUnknown) || !errors.Is(err, errcode.ErrRefused) {
		t.Fatalf("a wrong secret: %v", err)
	}
	if err := b.Use(in.Secret, now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := b.Use(in.Secret, now); !errors.Is(err, invite.ErrUsed) {
		t.Fatalf("second use: %v", err)
	}
	if err := b.Use(late.Secret, now.Add(time.Minute)); !errors.Is(err, invite.ErrExpired) {
		t.Fatalf("use at its expiry: %v", err)
	}
	b2, err := invite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := b2.Use(in.Secret, now); !errors.Is(err, invite.ErrUsed) {
		t.Fatalf("use after a restart: %v", err)
	}
	if err := b2.Use(kept.Secret, now); err != nil {
		t.Fatalf("an invite made before a restart: %v", err)
	}
	if _, err := b2.New(self, user, nil, 0, now); !errors.Is(err, errcode.ErrBadRequest) {
		t.Fatalf("an invite of no time: %v", err)
	}
}

// FuzzParse: no text makes Parse panic, and what it accepts survives a
// round trip.
func FuzzParse(f *testing.F) {
	b, _ := invite.Open("")
	in, _ := b.New(newID(f), newID(f), []string{"/ip4/127.0.0.1/tcp/1"}, time.Minute, time.Now())
	f.Add(in.String())
	f.Add(invite.Prefix)
	f.Add(invite.Prefix + "oA")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := invite.Parse(s)
		if err != nil {
			return
		}
		again, err := invite.Parse(got.String())
		if err != nil || again.Peer != got.Peer || !bytes.Equal(again.Secret, got.Secret) {
			t.Fatalf("an accepted invite does not round-trip: %v", err)
		}
	})
}
