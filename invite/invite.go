// Package invite makes and checks the one-time invites by which a node
// joins its user's nodes without a copy of the user key.
//
// A node that holds the user key makes an Invite: its own peer ID and
// addresses, the user's ID, a random secret of SecretSize bytes and an
// expiry, printed as one line of text (String, "nubeinvite1:…"). The new
// node parses it (Parse), dials the inviter by its peer ID (libp2p
// authenticates the inviter and encrypts the channel) and sends the secret
// back over that channel; the inviter checks it against its Book of pending
// invites, marks it used, and answers with a cert naming the new node.
//
// The Book keeps only a hash of each secret, beside its expiry and whether
// it was used, in a file of the inviter's data dir: an invite is good for
// one join, within its time, across restarts. Whoever reads the invite text
// before it is used can join in the new node's place, so it is passed as a
// password is, and lives minutes (DefaultTTL).
package invite

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/wire"
)

// Prefix starts an invite's text form; the digit is its version.
const Prefix = "nubeinvite1:"

// SecretSize is the bytes of an invite's secret: 256 bits, past guessing.
const SecretSize = 32

// DefaultTTL is how long an invite is good for unless its maker says.
const DefaultTTL = 10 * time.Minute

// MaxText caps an invite's text: a peer ID, a few addresses, a secret.
const MaxText = 4 << 10

// maxAddrs caps the addresses an invite names.
const maxAddrs = 32

// The ways an invite is refused. Each is a refusal (errcode.Refused) but
// ErrBadInvite, which is a malformed one (errcode.BadRequest).
var (
	ErrBadInvite = errcode.New(errcode.BadRequest, "not a nube invite")
	ErrExpired   = errcode.New(errcode.Refused, "invite expired")
	ErrUsed      = errcode.New(errcode.Refused, "invite already used")
	ErrUnknown   = errcode.New(errcode.Refused, "no such invite (wrong secret, or made by another node)")
)

// Invite is what a new node needs to join its user's nodes.
type Invite struct {
	Peer    peer.ID  `cbor:"1,keyasint"` // the inviting node
	User    peer.ID  `cbor:"2,keyasint"` // the user it joins
	Addrs   []string `cbor:"3,keyasint"` // the inviter's multiaddrs, without /p2p
	Secret  []byte   `cbor:"4,keyasint"`
	Expires int64    `cbor:"5,keyasint"` // Unix seconds
}

// String returns the invite's text form: Prefix, then its CBOR in
// unpadded base64url.
func (in Invite) String() string {
	b, err := wire.Marshal(in)
	if err != nil {
		return "" // strings, bytes and an int: cannot fail
	}
	return Prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Parse reads an invite's text form, checking its shape (not its expiry:
// Expired says, and the inviter decides).
func Parse(s string) (Invite, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxText {
		return Invite{}, fmt.Errorf("%w: %d bytes (the most is %d)", ErrBadInvite, len(s), MaxText)
	}
	body, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Invite{}, fmt.Errorf("%w: it does not start with %q", ErrBadInvite, Prefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return Invite{}, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	var in Invite
	if err := wire.Unmarshal(b, &in); err != nil {
		return Invite{}, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	if err := in.check(); err != nil {
		return Invite{}, err
	}
	return in, nil
}

func (in Invite) check() error {
	if d, err := peer.Decode(in.Peer.String()); err != nil || d != in.Peer {
		return fmt.Errorf("%w: inviter: %v", ErrBadInvite, err)
	}
	if _, err := in.User.ExtractPublicKey(); err != nil {
		return fmt.Errorf("%w: user: %v", ErrBadInvite, err)
	}
	if len(in.Secret) < SecretSize {
		return fmt.Errorf("%w: a secret of %d bytes, want %d", ErrBadInvite, len(in.Secret), SecretSize)
	}
	if len(in.Addrs) > maxAddrs {
		return fmt.Errorf("%w: %d addresses (the most is %d)", ErrBadInvite, len(in.Addrs), maxAddrs)
	}
	for _, a := range in.Addrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return fmt.Errorf("%w: address %q: %v", ErrBadInvite, a, err)
		}
	}
	return nil
}

// Expired reports whether the invite's time is up at now.
func (in Invite) Expired(now time.Time) bool { return now.Unix() >= in.Expires }

// AddrInfo returns the inviter's ID and addresses, to dial it.
func (in Invite) AddrInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: in.Peer}
	for _, s := range in.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// keepUsed is how long the Book remembers an invite after its expiry,
// so that one used or expired lately is refused as such rather than as
// unknown.
const keepUsed = 24 * time.Hour

// pending is the Book's record of an invite: never the secret itself.
type pending struct {
	Hash    []byte    `json:"hash"` // SHA-256 of the secret
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used,omitempty"`
}

// Book keeps the invites a node made, in a file (or in memory).
type Book struct {
	path string // "": in memory
	mu   sync.Mutex
	all  []pending
}

// Open reads the book at path, a file that need not exist yet; "" keeps
// it in memory.
func Open(path string) (*Book, error) {
	b := &Book{path: path}
	if path == "" {
		return b, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("invites: %w", err)
	}
	if err := json.Unmarshal(data, &b.all); err != nil {
		return nil, fmt.Errorf("invites: %s: %w", path, err)
	}
	return b, nil
}

// New makes an invite from node self of user, reachable at addrs, good for
// ttl from now, and records it.
func (b *Book) New(self, user peer.ID, addrs []string, ttl time.Duration, now time.Time) (Invite, error) {
	if ttl <= 0 {
		return Invite{}, fmt.Errorf("%w: an invite's time must be positive, not %v", errcode.ErrBadRequest, ttl)
	}
	if len(addrs) > maxAddrs {
		addrs = addrs[:maxAddrs]
	}
	in := Invite{Peer: self, User: user, Addrs: addrs, Secret: make([]byte, SecretSize), Expires: now.Add(ttl).Unix()}
	rand.Read(in.Secret) // never fails (crypto/rand)
	h := sha256.Sum256(in.Secret)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prune(now)
	b.all = append(b.all, pending{Hash: h[:], Expires: time.Unix(in.Expires, 0).UTC()})
	if err := b.save(); err != nil {
		b.all = b.all[:len(b.all)-1]
		return Invite{}, err
	}
	return in, nil
}

// Use spends the invite whose secret this is: it is marked used, on disk,
// before Use returns nil, so that a second Use of it, even after a
// restart, fails with ErrUsed. Each record is compared in constant time.
func (b *Book) Use(secret []byte, now time.Time) error {
	h := sha256.Sum256(secret)
	b.mu.Lock()
	defer b.mu.Unlock()
	found := -1
	for i := range b.all {
		if subtle.ConstantTimeCompare(b.all[i].Hash, h[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return ErrUnknown
	}
	p := &b.all[found]
	switch {
	case p.Used:
		return ErrUsed
	case !now.Before(p.Expires):
		return fmt.Errorf("%w at %s", ErrExpired, p.Expires.Format(time.RFC3339))
	}
	p.Used = true
	if err := b.save(); err != nil {
		p.Used = false
		return err
	}
	return nil
}

// Pending counts the invites neither used nor expired at now.
func (b *Book) Pending(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, p := range b.all {
		if !p.Used && now.Before(p.Expires) {
			n++
		}
	}
	return n
}

// prune drops the records past keepUsed after their expiry.
func (b *Book) prune(now time.Time) {
	b.all = slices.DeleteFunc(b.all, func(p pending) bool { return now.Sub(p.Expires) > keepUsed })
}

func (b *Book) save() error {
	if b.path == "" {
		return nil
	}
	if err := atomicfile.WriteJSON(b.path, b.all, 0o600); err != nil {
		return fmt.Errorf("invites: %w", err)
	}
	return nil
}
