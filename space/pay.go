package space

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/remote"
)

// DefaultPayInterval is how often a home checks and pays each holder of
// another user.
const DefaultPayInterval = time.Hour

// Payments pays the holders of this node's spaces and is paid for holding
// other users' spaces; the ledger provides it.
type Payments interface {
	// Bill, on a holder, signs a receipt to owner for keeping bytes of
	// space from..until, at the holder's price. It returns nil if the
	// holder asks nothing.
	Bill(owner peer.ID, space string, bytes int64, from, until time.Time) ([]byte, error)
	// Pay, on the home, checks a holder's receipt against what it was
	// asked for, signs it and has the ledger settle it, and returns what
	// it cost.
	Pay(ctx context.Context, holder peer.ID, receipt []byte, space string, bytes int64, from, until time.Time) (int64, error)
}

// AdmitStorage says whether this node holds a space of owner that takes
// bytes, when it holds held bytes of other users' spaces already.
type AdmitStorage func(owner peer.ID, bytes, held int64) error

// challengeFn asks a holder for one block of a space, picked at random by
// the home, and for its receipt for the period.
var challengeFn = remote.Declare[challengeReq, challengeReply]("nube.space.challenge")

type challengeReq struct {
	Space string `cbor:"1,keyasint"`
	Block []byte `cbor:"2,keyasint"`
	Bytes int64  `cbor:"3,keyasint,omitempty"`
	From  int64  `cbor:"4,keyasint,omitempty"`
	Until int64  `cbor:"5,keyasint,omitempty"`
}

type challengeReply struct {
	Data    []byte `cbor:"1,keyasint"`
	Receipt []byte `cbor:"2,keyasint,omitempty"`
}

// heldForOthers adds up the bytes of the other users' spaces this node
// holds.
func (m *Manager) heldForOthers() int64 {
	m.mu.Lock()
	hs := make([]*held, 0, len(m.held))
	for _, h := range m.held {
		hs = append(hs, h)
	}
	m.mu.Unlock()
	var n int64
	for _, h := range hs {
		if cur := h.current(); cur != nil && cur.Owner != m.user && cur.holds(m.self) {
			n += int64(cur.Bytes)
		}
	}
	return n
}

// admitHold decides whether to take h, the first head of a space this node
// is asked to hold, or one that makes it grow.
func (m *Manager) admitHold(h, cur *head) error {
	if h.Owner == m.user {
		return nil
	}
	if m.cfg.NoStorage {
		return fmt.Errorf("%w: this node holds no spaces for others", ErrNotOffered)
	}
	if m.cfg.Admit == nil {
		return nil
	}
	held := m.heldForOthers()
	if cur != nil && cur.holds(m.self) {
		held -= int64(cur.Bytes)
	}
	return m.cfg.Admit(h.Owner, int64(h.Bytes), held)
}

// serveChallenge answers a home's challenge with the block it asked for,
// from this node's own store, and a receipt for the period.
func (m *Manager) serveChallenge(ctx context.Context, req challengeReq) (challengeReply, error) {
	m.mu.Lock()
	hd := m.held[req.Space]
	m.mu.Unlock()
	var cur *head
	if hd != nil {
		cur = hd.current()
	}
	if cur == nil || !cur.holds(m.self) || remote.Caller(ctx) != cur.Home {
		return challengeReply{}, fmt.Errorf("%w: this node holds no %s for that home", ErrNotFound, req.Space)
	}
	c, err := cid.Cast(req.Block)
	if err != nil {
		return challengeReply{}, fmt.Errorf("%w: challenge: %v", ErrBadHead, err)
	}
	blk, err := m.cfg.Content.Store().Blockstore().Get(ctx, c)
	if err != nil {
		return challengeReply{}, fmt.Errorf("%w: block %s of %s: %v", ErrNotFound, c, req.Space, err)
	}
	reply := challengeReply{Data: blk.RawData()}
	if m.cfg.Payments != nil && cur.Owner != m.user && req.Until > req.From {
		reply.Receipt, err = m.cfg.Payments.Bill(cur.Owner, req.Space, req.Bytes, time.Unix(0, req.From), time.Unix(0, req.Until))
		if err != nil {
			m.log.Warn("could not bill for a space", "space", req.Space, "err", err)
		}
	}
	return reply, nil
}

// randomBlock walks from root down random links of the home's own copy
// and returns where it stops: any block of the space, leaves most often.
func (m *Manager) randomBlock(ctx context.Context, root cid.Cid) (cid.Cid, error) {
	c := root
	for depth := 0; depth < 64; depth++ {
		nd, err := m.local.Get(ctx, c)
		if err != nil {
			return cid.Undef, err
		}
		links := nd.Links()
		if len(links) == 0 || rand.IntN(len(links)+1) == 0 && depth > 0 {
			return c, nil
		}
		c = links[rand.IntN(len(links))].Cid
	}
	return c, nil
}

// audit challenges holder p for a random block of h's root and, if it
// passes and the period is over, pays it. It returns false if p failed the
// challenge: it no longer holds the data.
func (o *owned) audit(ctx context.Context, p peer.ID, h *head) bool {
	m := o.m
	now := time.Now()
	o.mu.Lock()
	since, ok := o.paid[p]
	if !ok {
		o.paid[p] = now
	}
	o.mu.Unlock()
	if !ok || now.Sub(since) < m.cfg.PayInterval {
		return true
	}
	root, err := h.root()
	if err != nil {
		return true
	}
	blk, err := m.randomBlock(ctx, root)
	if err != nil {
		m.log.Debug("could not pick a block to challenge", "space", o.id, "err", err)
		return true
	}
	req := challengeReq{Space: o.id, Block: blk.Bytes(), Bytes: int64(h.Bytes), From: since.UnixNano(), Until: now.UnixNano()}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	r, err := challengeFn.At(m.cfg.Remote, p).Call(network.WithAllowLimitedConn(cctx, "space"), req)
	cancel()
	if err == nil {
		_, err = checkedBlock(blk.Bytes(), r.Data)
	}
	if err != nil {
		if errors.Is(err, remote.ErrUnreachable) || ctx.Err() != nil {
			return true // the repair loop deals with holders that are down
		}
		m.log.Warn("a holder failed its challenge: it is not paid and its copy moves", "space", o.id, "holder", p, "err", err)
		return false
	}
	if len(r.Receipt) > 0 && m.cfg.Payments != nil {
		cost, err := m.cfg.Payments.Pay(ctx, p, r.Receipt, o.id, req.Bytes, since, now)
		switch {
		case errcode.Of(err) == errcode.Unreachable:
			m.log.Debug("could not reach the ledger to pay a holder", "space", o.id, "holder", p, "err", err)
			return true // try again next time, for the whole period
		case err != nil:
			// A receipt this user will not sign (a price over its
			// most, say): the period goes unpaid, and is not asked
			// about again.
			m.log.Warn("did not pay a holder", "space", o.id, "holder", p, "err", err)
		default:
			m.log.Debug("paid a holder", "space", o.id, "holder", p, "cost", cost)
		}
	}
	o.mu.Lock()
	o.paid[p] = now
	o.mu.Unlock()
	return true
}

// failedHolders removes from dead those that policy names, which can only
// be caught up, and returns the rest.
func failedHolders(failed []peer.ID, policy Policy) []peer.ID {
	return slices.DeleteFunc(failed, func(p peer.ID) bool { return slices.Contains(policy.On, p) })
}
