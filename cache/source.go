package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/space"
)

// Source is where a cache's values come from and what tells it they
// changed. Nodes that cache sources with the same ID share one cache: its
// keys spread over them, and each key is loaded once among them.
//
// SpaceSource, GroupSource and Loader make the three kinds; a program may
// write its own.
type Source interface {
	// ID names the source, the same on every node (a space's OWNER/NAME).
	ID() string
	// Load reads key from the source: its value and the source's version
	// it was read at (or a lower one, never a higher). A key the source
	// lacks is ErrNotFound, with the version it was found missing at.
	Load(ctx context.Context, key string) (value []byte, version uint64, err error)
	// Version returns the source's current version, asking whoever keeps
	// it (one small round trip): every change acknowledged before Version
	// was called has a version at most the one returned.
	Version(ctx context.Context) (uint64, error)
	// Follow calls changed for each change the source makes, in order,
	// until ctx ends: the version of the change and the keys it changed
	// (nil: any key may have changed). It returns nil when ctx ends, or
	// an error that will not pass (ErrNotAuthorised). A source with no
	// change stream returns nil at once: its heartbeat (Version) alone
	// then invalidates.
	Follow(ctx context.Context, changed func(version uint64, keys []string)) error
}

// writer is a Source a cache writes through (Cache.Put, Cache.Delete).
type writer interface {
	write(ctx context.Context, key string, value []byte, del bool) (uint64, error)
}

// guarded is a Source whose values a peer gets from this node only with a
// proof that it may read them.
type guarded interface {
	proof(ctx context.Context) (proof, error)
	admit(ctx context.Context, node peer.ID, p proof) error
}

// proof is what a node presents to be served a guarded source's values:
// its user's cert of it and the user's grant chain.
type proof struct {
	Cert  nodecert.Cert `cbor:"1,keyasint,omitempty"`
	Chain [][]byte      `cbor:"2,keyasint,omitempty"`
}

// spaceSource caches a space, read under this node's user's grant.
type spaceSource struct {
	sp   *space.Space
	cert nodecert.Cert
	mu   sync.Mutex
	pf   *proof
	pfAt time.Time
}

// SpaceSource makes a Source of the space sp, read under this node's
// user's grant. cert is the user's cert of this node, which peers check
// before they serve it the space's values; a node of the owner's own has
// no chain to show.
func SpaceSource(sp *space.Space, cert nodecert.Cert) Source {
	return &spaceSource{sp: sp, cert: cert}
}

func (s *spaceSource) ID() string { return s.sp.ID() }

func (s *spaceSource) Version(ctx context.Context) (uint64, error) {
	st, err := s.sp.State(ctx, true)
	if err != nil {
		return 0, err
	}
	return st.Seq, nil
}

func (s *spaceSource) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	// The fresh head first, so that the read is of a head at least as new
	// as any change this node has been told of.
	v, err := s.Version(ctx)
	if err != nil {
		return nil, 0, err
	}
	b, err := s.sp.GetBytes(ctx, key)
	switch {
	case errors.Is(err, space.ErrNotFound):
		return nil, v, fmt.Errorf("%w: %s in %s", ErrNotFound, key, s.sp.ID())
	case errors.Is(err, space.ErrNotAuthorised):
		return nil, v, fmt.Errorf("%w: %v", ErrNotAuthorised, err)
	case err != nil:
		return nil, 0, err
	}
	return b, v, nil
}

func (s *spaceSource) Follow(ctx context.Context, changed func(uint64, []string)) error {
	for ev, err := range s.sp.Watch(ctx) {
		if err != nil {
			if errors.Is(err, space.ErrNotAuthorised) {
				return fmt.Errorf("%w: %v", ErrNotAuthorised, err)
			}
			return err
		}
		if ev.Key == "" {
			changed(ev.Seq, nil) // a change this user cannot name
			continue
		}
		changed(ev.Seq, []string{ev.Key})
	}
	return nil
}

func (s *spaceSource) write(ctx context.Context, key string, value []byte, del bool) (uint64, error) {
	var err error
	if del {
		err = s.sp.Delete(ctx, key)
	} else {
		err = s.sp.PutBytes(ctx, key, value)
	}
	if err != nil {
		return 0, err
	}
	return s.Version(ctx)
}

// proof is this user's read chain, asked of the home at most once a
// minute.
func (s *spaceSource) proof(ctx context.Context) (proof, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pf != nil && time.Since(s.pfAt) < time.Minute {
		return *s.pf, nil
	}
	chain, err := s.sp.Chain(ctx, space.Read)
	if err != nil {
		if errors.Is(err, space.ErrNotAuthorised) {
			return proof{}, fmt.Errorf("%w: %v", ErrNotAuthorised, err)
		}
		return proof{}, err
	}
	s.pf, s.pfAt = &proof{Cert: s.cert, Chain: chain}, time.Now()
	return *s.pf, nil
}

// admit checks that node is a node of a user whom a chain not revoked
// lets read the space.
func (s *spaceSource) admit(ctx context.Context, node peer.ID, p proof) error {
	if err := p.Cert.Check(node); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAuthorised, err)
	}
	st, err := s.sp.State(ctx, false)
	if err != nil {
		return err
	}
	if _, err := space.CheckChain(s.sp.ID(), p.Chain, p.Cert.User, space.Read, time.Now(), st.Revoked); err != nil {
		return fmt.Errorf("%w: %v", ErrNotAuthorised, err)
	}
	return nil
}

// groupSource caches a group's map on a member of the group.
type groupSource struct{ g *group.Group }

// GroupSource makes a Source of the map of group g, which this node is a
// member of (a group's change stream is its members' own). Loads are the
// group's linearizable Get; the heartbeat is a Sync through the leader.
func GroupSource(g *group.Group) Source { return groupSource{g} }

func (s groupSource) ID() string { return "group/" + s.g.Name() }

func (s groupSource) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.g.GetEntry(ctx, key)
	if errors.Is(err, group.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s in group %s", ErrNotFound, key, s.g.Name())
	}
	return e.Value, e.Version, err
}

func (s groupSource) Version(ctx context.Context) (uint64, error) {
	if err := s.g.Sync(ctx); err != nil {
		return 0, err
	}
	st, err := s.g.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Applied, nil
}

func (s groupSource) Follow(ctx context.Context, changed func(uint64, []string)) error {
	for c, err := range s.g.Watch(ctx, "") {
		if err != nil {
			if errors.Is(err, group.ErrLagged) {
				changed(0, nil) // behind: everything may have changed
				return err
			}
			return err
		}
		changed(c.Version, []string{c.Key})
	}
	return nil
}

func (s groupSource) write(ctx context.Context, key string, value []byte, del bool) (uint64, error) {
	if del {
		if _, err := s.g.Delete(ctx, key); err != nil {
			return 0, err
		}
		return s.Version(ctx)
	}
	return s.g.Put(ctx, key, value)
}

// localStream is a Source whose change stream is this node's own (a
// group member's): a change the heartbeat's version covers is handed to
// the stream as it applies, with no network between.
type localStream interface{ localStream() }

func (groupSource) localStream() {}

// loader is a Source made of a program's functions.
type loader struct {
	id      string
	load    func(ctx context.Context, key string) ([]byte, error)
	version func(ctx context.Context) (uint64, error)
}

// Loader makes a Source of a program's own functions: load reads a key
// (returning an error wrapping ErrNotFound for a missing one), version
// returns the data's current version, which must grow with every change.
// A loader has no change stream: the cache asks version at each
// heartbeat (a third of the bound) and drops what is older. Nodes that
// use the same id share the cache, so they must load the same data.
func Loader(id string, load func(ctx context.Context, key string) ([]byte, error), version func(ctx context.Context) (uint64, error)) Source {
	return loader{id, load, version}
}

func (l loader) ID() string                                  { return l.id }
func (l loader) Version(ctx context.Context) (uint64, error) { return l.version(ctx) }
func (l loader) Follow(context.Context, func(uint64, []string)) error {
	return nil
}

func (l loader) Load(ctx context.Context, key string) ([]byte, uint64, error) {
	v, err := l.version(ctx)
	if err != nil {
		return nil, 0, err
	}
	b, err := l.load(ctx, key)
	return b, v, err
}
