package space

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// What a layer that rides on a space (topics) needs of it: the user's own
// grant chain to present with what it signs, a pure check of a chain
// someone else presents, what the newest head says (revocations, home,
// holders, key epoch), and keys derived from the space's keyring, so that
// the layer's grants, revocations and key rotations are the space's own.

// Chain returns this user's grant chain on the space that gives want: its
// links' encodings, the owner's first, as CheckChain takes them. The
// owner has none (nil, nil). A chain to write is cached as writes cache
// it; another is asked of the space's home. ErrNotAuthorised if no grant
// of this user gives want now.
func (s *Space) Chain(ctx context.Context, want Rights) ([][]byte, error) {
	if s.owner == s.m.user {
		return nil, nil
	}
	v, err := s.resolve(ctx, false)
	if err != nil {
		return nil, err
	}
	if v.head.Deleted {
		return nil, fmt.Errorf("%w: space %s was deleted", ErrNotFound, s.id)
	}
	var g *Grant
	if want == Write {
		g, err = s.writeGrant(ctx, v)
	} else {
		g, err = s.myGrant(ctx, v, want)
	}
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(g.links))
	for i, l := range g.links {
		if out[i], err = marshal(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// maxChainLink caps one encoded link of a chain CheckChain decodes: the
// link's body and its signature, with room for the encoding.
const maxChainLink = maxLinkBody + 256

// CheckChain checks, with no I/O, that chain (as Chain returns it) gives
// user the rights want on the space id at now, none of its links among
// revoked (the grant IDs the space's newest head revoked): every link is
// signed by its issuer, the first by the space's owner, none wider or
// longer than the one before, none expired. An empty chain holds for the
// space's owner alone. It returns when the chain ends (the zero time: it
// does not), and an error wrapping ErrNotAuthorised or ErrBadGrant.
func CheckChain(id string, chain [][]byte, user peer.ID, want Rights, now time.Time, revoked []string) (time.Time, error) {
	owner, _, err := SplitID(id)
	if err != nil {
		return time.Time{}, err
	}
	if len(chain) == 0 {
		if user != owner {
			return time.Time{}, fmt.Errorf("%w: %s presents no grant on %s and is not its owner", ErrNotAuthorised, user, id)
		}
		return time.Time{}, nil
	}
	if len(chain) > MaxGrantChain {
		return time.Time{}, fmt.Errorf("%w: a chain of %d links, over the limit of %d", ErrBadGrant, len(chain), MaxGrantChain)
	}
	links := make([]signed, len(chain))
	for i, b := range chain {
		if len(b) > maxChainLink {
			return time.Time{}, fmt.Errorf("%w: link %d: %d bytes, over the limit of %d", ErrBadGrant, i, len(b), maxChainLink)
		}
		if err := unmarshal(b, &links[i]); err != nil {
			return time.Time{}, fmt.Errorf("%w: link %d: %v", ErrBadGrant, i, err)
		}
	}
	g, err := grantOf(links)
	if err != nil {
		return time.Time{}, err
	}
	if g.To() != user {
		return time.Time{}, fmt.Errorf("%w: the grant is for %s, not %s", ErrNotAuthorised, g.To(), user)
	}
	if err := g.check(id, want, now, revoked); err != nil {
		return time.Time{}, err
	}
	var until time.Time
	for _, l := range g.body {
		if l.Until != 0 && (until.IsZero() || time.Unix(l.Until, 0).Before(until)) {
			until = time.Unix(l.Until, 0)
		}
	}
	return until, nil
}

// State is what a space's newest head says, for a layer that rides on
// the space.
type State struct {
	Seq     uint64
	Home    peer.ID
	Holders []peer.ID
	// Revoked are the grant IDs revoked so far.
	Revoked []string
	// Epoch is the key epoch: a revocation or an expiry starts a new one.
	Epoch   uint64
	Deleted bool
}

// State resolves the space's head and says what it says. On the space's
// home it is the home's current head, with no I/O; elsewhere a cached
// head not older than Config.HeadTTL unless fresh, which asks the home.
// It needs no grant: heads are public, their keys wrapped.
func (s *Space) State(ctx context.Context, fresh bool) (State, error) {
	v, err := s.resolve(ctx, fresh)
	if err != nil {
		return State{}, err
	}
	h := v.head
	return State{Seq: h.Seq, Home: h.Home, Holders: slices.Clone(h.Holders), Revoked: slices.Clone(h.Revoked),
		Epoch: h.Epoch, Deleted: h.Deleted}, nil
}

// derivedKeyInfo binds a derived key to its space and purpose.
func derivedKeyInfo(space, purpose string) string {
	return "nube space derived key v1\n" + space + "\n" + purpose
}

// DeriveKey derives a 32-byte key for purpose from the space's data key
// of epoch with HKDF-SHA256: the same on every reader, different for
// each purpose, space and epoch. The user must be a reader of the space
// (ErrNotAuthorised); a reader revoked before epoch began never got its
// data key and cannot derive its keys (ErrNotAuthorised). An epoch this
// node has not seen yet makes it ask the home for the newest head.
func (s *Space) DeriveKey(ctx context.Context, purpose string, epoch uint64) ([]byte, error) {
	v, err := s.readable(ctx, false)
	if err == nil && epoch > v.head.Epoch {
		v, err = s.readable(ctx, true)
	}
	if err != nil {
		return nil, err
	}
	dk, err := v.keys.data(epoch)
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, dk, nil, derivedKeyInfo(s.id, purpose), keySize)
}

// NewestKey is DeriveKey for the newest epoch this node knows of (the
// home's current one on the home; elsewhere one at most
// Config.HeadTTL old), and that epoch.
func (s *Space) NewestKey(ctx context.Context, purpose string) ([]byte, uint64, error) {
	v, err := s.readable(ctx, false)
	if err != nil {
		return nil, 0, err
	}
	dk, err := v.keys.data(v.head.Epoch)
	if err != nil {
		return nil, 0, err
	}
	k, err := hkdf.Key(sha256.New, dk, nil, derivedKeyInfo(s.id, purpose), keySize)
	return k, v.head.Epoch, err
}
