package space

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The home's grants: filing, within the caps and the pace; revoking and
// expiring, which rotate the keys; and wrapping the keys for readers.

// file records a grant with the home and gives its grantee the keys. A
// grant filed already changes nothing. Only the new grantee's keys are
// wrapped: the others' in the head are still good, as the keys did not
// change, so filing costs one HPKE seal, not one per reader.
func (o *owned) file(ctx context.Context, g *Grant) (signed, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	if err := g.check(o.id, g.Rights(), now, o.head.Revoked); err != nil {
		return signed{}, err
	}
	if _, ok := o.grants[g.ID()]; ok {
		return o.signed, nil
	}
	if err := o.roomLocked(g); err != nil {
		return signed{}, err
	}
	if d, wait := o.rate.take(g.delegates()); wait > 0 {
		return signed{}, fmt.Errorf("%w: %d at once, then one each %v, under delegate %s on %s; try again in %v",
			ErrGrantRate, GrantBurst, GrantEvery, d, o.id, wait.Round(time.Second))
	}
	grants := maps.Clone(o.grants)
	grants[g.ID()] = g
	h := o.next()
	if g.check(o.id, Read, now, h.Revoked) == nil && h.keysFor(g.To()) == nil {
		box, err := wrapKeys(o.id, g.To(), o.keys)
		if err != nil {
			return signed{}, err
		}
		h.Keys = append(h.Keys, sealedKeys{User: g.To(), Box: box})
		sort.Slice(h.Keys, func(i, j int) bool { return h.Keys[i].User < h.Keys[j].User })
	}
	s, err := o.signLocked(h, o.keys)
	if err != nil {
		return signed{}, err
	}
	return s, o.installLocked(ctx, h, s, nil, grants)
}

// roomLocked says whether g may be filed within MaxGrants and, for each
// delegate it is issued under, MaxGrantsPerIssuer. o.mu is held.
func (o *owned) roomLocked(g *Grant) error {
	if len(o.grants) >= MaxGrants {
		return fmt.Errorf("%w: %s has %d grants filed, the most a space has; revoke some first", ErrTooManyGrants, o.id, len(o.grants))
	}
	for _, d := range g.delegates() {
		n := 0
		for _, f := range o.grants {
			if slices.Contains(f.delegates(), d) {
				n++
			}
		}
		if n >= MaxGrantsPerIssuer {
			return fmt.Errorf("%w: %d grants on %s are filed under delegate %s, the most under one", ErrTooManyGrants, n, o.id, d)
		}
	}
	return nil
}

// revoke ends a grant (and every grant delegated under it) and rotates the
// space's data key, so that its grantees read nothing written after.
func (o *owned) revoke(ctx context.Context, id string) (signed, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	grants := maps.Clone(o.grants)
	found := false
	for gid, g := range grants {
		if slices.Contains(g.Chain(), id) {
			found = true
			delete(grants, gid)
		}
	}
	if !found {
		return signed{}, fmt.Errorf("%w: no grant %s on %s", ErrNotFound, id, o.id)
	}
	h := o.next()
	h.Revoked = append(h.Revoked, id)
	return o.rekeyLocked(ctx, h, grants)
}

// rekeyLocked starts a new key epoch for h, wraps its keys for the
// readers of grants, and commits it with them; if it does not commit,
// the space keeps its keys and grants. o.mu is held.
func (o *owned) rekeyLocked(ctx context.Context, h *head, grants map[string]*Grant) (signed, error) {
	keys := o.keys.clone()
	keys.rotate()
	if err := o.wrapAll(h, keys, grants); err != nil {
		return signed{}, err
	}
	s, err := o.signLocked(h, keys)
	if err != nil {
		return signed{}, err
	}
	if err := o.installLocked(ctx, h, s, nil, grants); err != nil {
		return signed{}, err
	}
	o.keys = keys
	return s, nil
}

// grantsFor lists the filed grants for user.
func (o *owned) grantsFor(u peer.ID) []*Grant {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*Grant
	for _, g := range o.grants {
		if g.To() == u && g.check(o.id, 0, time.Now(), o.head.Revoked) == nil {
			out = append(out, g)
		}
	}
	return out
}

// expireGrants rotates the keys once a reader's grant has ended.
func (o *owned) expireGrants(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	grants := maps.Clone(o.grants)
	for id, g := range grants {
		if g.check(o.id, 0, now, o.head.Revoked) != nil {
			delete(grants, id)
		}
	}
	if len(grants) == len(o.grants) {
		return
	}
	if _, err := o.rekeyLocked(ctx, o.next(), grants); err != nil {
		o.m.log.Warn("could not rotate the keys after a grant expired", "space", o.id, "err", err)
	}
}

// wrapAll wraps keys for the owner and every grantee in grants whose
// grant still holds.
func (o *owned) wrapAll(h *head, keys keyring, grants map[string]*Grant) error {
	readers := map[peer.ID]bool{o.m.user: true}
	now := time.Now()
	for _, g := range grants {
		if g.check(o.id, Read, now, h.Revoked) == nil {
			readers[g.To()] = true
		}
	}
	h.Keys = nil
	for u := range readers {
		box, err := wrapKeys(o.id, u, keys)
		if err != nil {
			return err
		}
		h.Keys = append(h.Keys, sealedKeys{User: u, Box: box})
	}
	sort.Slice(h.Keys, func(i, j int) bool { return h.Keys[i].User < h.Keys[j].User })
	return nil
}
