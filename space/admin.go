package space

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Info describes a space.
type Info struct {
	ID      string       `json:"id"`
	Owner   peer.ID      `json:"owner"`
	Name    string       `json:"name"`
	Seq     uint64       `json:"seq"`
	Root    string       `json:"root"`
	Home    peer.ID      `json:"home"`
	Policy  Policy       `json:"policy"`
	Holders []HolderInfo `json:"holders"`
	Epoch   uint64       `json:"epoch"`
	Keys    uint64       `json:"keys"`
	Bytes   uint64       `json:"bytes"`
	Readers []peer.ID    `json:"readers"`
	Grants  []GrantInfo  `json:"grants,omitempty"` // on the home only
	Revoked []string     `json:"revoked,omitempty"`
	Updated time.Time    `json:"updated"`
	Deleted bool         `json:"deleted,omitempty"`
}

// HolderInfo is one holder's state, as the node asking sees it.
type HolderInfo struct {
	Peer  peer.ID `json:"peer"`
	State string  `json:"state"` // "ok", "behind", "copying" or "unreachable"
	Seq   uint64  `json:"seq,omitempty"`
}

// GrantInfo describes a filed grant.
type GrantInfo struct {
	ID     string    `json:"id"`
	To     peer.ID   `json:"to"`
	Issuer peer.ID   `json:"issuer"`
	Rights string    `json:"rights"`
	Until  time.Time `json:"until,omitzero"`
}

// Info resolves the space's newest head and asks each holder what it
// holds.
func (s *Space) Info(ctx context.Context) (Info, error) {
	v, err := s.resolve(ctx, true)
	if err != nil {
		return Info{}, err
	}
	h := v.head
	r, _ := h.root()
	info := Info{ID: s.id, Owner: h.Owner, Name: h.Name, Seq: h.Seq, Root: r.String(), Home: h.Home, Policy: h.Policy,
		Epoch: h.Epoch, Keys: h.Count, Bytes: h.Bytes, Revoked: h.Revoked, Updated: time.Unix(0, h.Time).UTC(), Deleted: h.Deleted}
	for _, k := range h.Keys {
		info.Readers = append(info.Readers, k.User)
	}
	o := s.m.ownedSpace(s.id)
	if o != nil {
		o.mu.Lock()
		for _, g := range o.grants {
			info.Grants = append(info.Grants, GrantInfo{ID: g.ID(), To: g.To(), Issuer: g.Issuer(), Rights: g.Rights().String(), Until: g.Until()})
		}
		o.mu.Unlock()
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	seqs := map[peer.ID]uint64{}
	for p, r := range headFn.OnAll(network.WithAllowLimitedConn(actx, "space"), s.m.cfg.Remote, h.Holders, headReq{Space: s.id}) {
		if r.Err != nil {
			continue
		}
		if hh, _, err := decodeHead(r.Value.Head, s.id); err == nil {
			seqs[p] = hh.Seq
		}
	}
	for _, p := range h.Holders {
		hi := HolderInfo{Peer: p, State: "unreachable"}
		if seq, ok := seqs[p]; ok {
			hi.Seq, hi.State = seq, "ok"
			if seq < h.Seq {
				hi.State = "behind"
			}
		}
		if o != nil {
			o.mu.Lock()
			if o.joining[p] {
				hi.State = "copying"
			}
			o.mu.Unlock()
		}
		info.Holders = append(info.Holders, hi)
	}
	return info, nil
}

// home returns the space if this node is its home. Otherwise it looks
// for the space: ErrNotFound if no node keeps it, else ErrNotHome naming
// the home it found.
func (s *Space) home(ctx context.Context, what string) (*owned, error) {
	o := s.m.ownedSpace(s.id)
	if o != nil {
		return o, nil
	}
	if err := s.m.notLoaded(s.id); err != nil {
		return nil, err
	}
	v, err := s.resolve(ctx, false)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: %s %s: there is no such space (no node keeps it)", ErrNotFound, what, s.id)
	case err == nil && v.head.Home != "":
		return nil, fmt.Errorf("%w: %s %s runs on the space's home node, %s", ErrNotHome, what, s.id, v.head.Home)
	}
	return nil, fmt.Errorf("%w: %s %s runs on the space's home node", ErrNotHome, what, s.id)
}

// Grant gives user rights on the space until until (the zero time: no
// end) and returns the grant. The owner grants from any node that holds
// the user key (the home files it); a grantee with the Delegate right
// from any node, the same rights or fewer, for no longer than its own. A grant to read (or write, which
// includes reading: a writer seals with the space's keys) gives user the
// space's keys in the next head.
func (s *Space) Grant(ctx context.Context, user peer.ID, rights Rights, until time.Time) (*Grant, error) {
	if _, err := userPublic(user); err != nil {
		return nil, fmt.Errorf("%w: grantee: %v", ErrBadName, err)
	}
	if rights&Write != 0 {
		rights |= Read
	}
	l := grantLink{Space: s.id, To: user, Rights: rights, Nonce: randomBytes(8)}
	if !until.IsZero() {
		l.Until = until.Unix()
	}
	m := s.m
	l.Issuer = m.user
	if o := m.ownedSpace(s.id); o != nil {
		g, err := extend(nil, m.cfg.UserKey, l)
		if err != nil {
			return nil, err
		}
		if _, err := o.file(ctx, g); err != nil {
			return nil, err
		}
		return g, nil
	}
	v, err := s.resolve(ctx, true)
	if err != nil {
		if s.owner == m.user {
			_, err = s.home(ctx, "grant on")
		}
		return nil, err
	}
	// The owner grants from any node that holds the user key, and files
	// the grant with the home (one that holds no user key, since its
	// home was handed to it, cannot sign the owner's link); a grantee
	// under its Delegate right.
	var mine *Grant
	if s.owner != m.user {
		if mine, err = s.myGrant(ctx, v, Delegate); err != nil {
			return nil, err
		}
	}
	g, err := extend(mine, m.cfg.UserKey, l)
	if err != nil {
		return nil, err
	}
	raw, err := marshal(g.links)
	if err != nil {
		return nil, err
	}
	rep, err := grantFn.At(m.cfg.Remote, v.head.Home).Call(network.WithAllowLimitedConn(ctx, "space"), raw)
	if err != nil {
		return nil, fmt.Errorf("file the grant with the home of %s: %w", s.id, err)
	}
	s.learn(rep.Head, keyring{})
	return g, nil
}

// Revoke ends the grant id and every grant delegated under it: their
// grantees can no longer write, and the space's data key rotates so that
// they cannot read what is written after. It runs on the space's home.
func (s *Space) Revoke(ctx context.Context, id string) error {
	o, err := s.home(ctx, "revoke on")
	if err != nil {
		return err
	}
	_, err = o.revoke(ctx, id)
	return err
}

// Migrate places the space as policy says: it copies the space onto the
// new holders and checks every block, publishes a head naming them, then
// lets the old holders go. Readers and writers keep working throughout.
// progress, if set, is called as each new holder copies. It runs on the
// space's home.
func (s *Space) Migrate(ctx context.Context, policy Policy, progress func(MigrateProgress)) error {
	o, err := s.home(ctx, "migrate")
	if err != nil {
		return err
	}
	return o.move(ctx, policy, nil, progress)
}

// Destroy removes the whole space, every key in it: its holders let go
// of it, and readers are told it was deleted. It runs on the space's
// home. (Delete removes one key.)
func (s *Space) Destroy(ctx context.Context) error {
	o, err := s.home(ctx, "delete")
	if err != nil {
		return err
	}
	return o.remove(ctx)
}
