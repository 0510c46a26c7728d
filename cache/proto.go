package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nubecloud/nube/remote"
)

// The calls between the nodes of a cache. Their inputs are decoded by the
// remote layer, whose frames are capped; checkReq caps what is inside.
var (
	// getFn asks the key's owner for its value: from its memory, else one
	// load from the source among all who ask at once.
	getFn = remote.Declare[getReq, getReply]("nube.cache.get")
	// helloFn tells a peer this node uses the caches named, and learns
	// which of them the peer uses.
	helloFn = remote.Declare[helloMsg, helloMsg]("nube.cache.hello")
	// invalFn tells a key's owner that a write through this node changed
	// it, so that the writer's next read, which asks the owner, sees it.
	invalFn = remote.Declare[invalReq, struct{}]("nube.cache.invalidate")
)

type getReq struct {
	Cache string `cbor:"1,keyasint"`
	Key   string `cbor:"2,keyasint"`
	// Min is the version the asker knows the source at: an entry older
	// than it, on an owner not yet as far, is loaded again.
	Min   uint64 `cbor:"3,keyasint,omitempty"`
	Proof *proof `cbor:"4,keyasint,omitempty"`
}

type getReply struct {
	Value   []byte `cbor:"1,keyasint,omitempty"`
	Version uint64 `cbor:"2,keyasint,omitempty"`
	Missing bool   `cbor:"3,keyasint,omitempty"`
}

type helloMsg struct {
	Caches []string `cbor:"1,keyasint"`
}

type invalReq struct {
	Cache   string `cbor:"1,keyasint"`
	Key     string `cbor:"2,keyasint"`
	Version uint64 `cbor:"3,keyasint"`
}

// maxHello caps the names in one hello.
const maxHello = 256

func checkName(name string) error {
	if name == "" || len(name) > MaxName {
		return fmt.Errorf("%w: cache name of %d bytes (1-%d)", ErrBadRequest, len(name), MaxName)
	}
	return nil
}

func checkKey(key string) error {
	if len(key) > MaxKey {
		return fmt.Errorf("%w: key of %d bytes, over %d", ErrBadRequest, len(key), MaxKey)
	}
	return nil
}

func (r getReq) check() error {
	if err := checkName(r.Cache); err != nil {
		return err
	}
	if err := checkKey(r.Key); err != nil {
		return err
	}
	if r.Proof != nil && len(r.Proof.Chain) > 16 {
		return fmt.Errorf("%w: a chain of %d links", ErrBadRequest, len(r.Proof.Chain))
	}
	return nil
}

func (m *Manager) serveGet(ctx context.Context, req getReq) (getReply, error) {
	if err := req.check(); err != nil {
		return getReply{}, err
	}
	c := m.Get(req.Cache)
	if c == nil {
		return getReply{}, fmt.Errorf("%w: no cache %q on this node", ErrNotFound, req.Cache)
	}
	if c.isRefused() {
		// This node's own grant is gone: the asker loads elsewhere.
		return getReply{}, fmt.Errorf("%w: this node no longer reads %s", ErrClosed, req.Cache)
	}
	from := remote.Caller(ctx)
	if g, ok := c.src.(guarded); ok && from != m.self {
		var p proof
		if req.Proof != nil {
			p = *req.Proof
		}
		if err := g.admit(ctx, from, p); err != nil {
			return getReply{}, err
		}
	}
	c.addPeer(from)
	e, err := c.ownerGet(ctx, req.Key, req.Min)
	switch {
	case errors.Is(err, ErrNotFound):
		return getReply{Missing: true, Version: e.ver}, nil
	case err != nil:
		return getReply{}, err
	}
	return getReply{Value: e.val, Version: e.ver}, nil
}

func (m *Manager) serveHello(ctx context.Context, in helloMsg) (helloMsg, error) {
	if len(in.Caches) > maxHello {
		return helloMsg{}, fmt.Errorf("%w: %d names in a hello, over %d", ErrBadRequest, len(in.Caches), maxHello)
	}
	from := remote.Caller(ctx)
	var out helloMsg
	for _, name := range in.Caches {
		if checkName(name) != nil {
			continue
		}
		if c := m.Get(name); c != nil && !c.opts.NoPeers && !c.isRefused() {
			c.addPeer(from)
			out.Caches = append(out.Caches, name)
		}
	}
	return out, nil
}

func (m *Manager) serveInval(ctx context.Context, in invalReq) (struct{}, error) {
	if err := checkName(in.Cache); err != nil {
		return struct{}{}, err
	}
	if err := checkKey(in.Key); err != nil {
		return struct{}{}, err
	}
	c := m.Get(in.Cache)
	if c == nil {
		return struct{}{}, nil
	}
	// Only a peer of the cache may drop entries; a drop is no read, so no
	// grant is asked: at worst a later read loads the key again.
	if !c.isPeer(remote.Caller(ctx)) {
		return struct{}{}, fmt.Errorf("%w: not a peer of cache %q", ErrBadRequest, in.Cache)
	}
	c.changed(in.Version, []string{in.Key}, time.Time{})
	return struct{}{}, nil
}
