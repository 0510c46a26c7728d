package space

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/atomicfile"
)

// held is a space this node holds for its owner: the newest head it was
// given, whose root it has pinned.
type held struct {
	mu     sync.Mutex // serialises pushes
	hmu    sync.Mutex
	head   *head
	signed signed
}

func (h *held) current() *head {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	return h.head
}

func (h *held) currentSigned() signed {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	return h.signed
}

// serveHead answers with the newest head of a space this node is home or
// holder of.
func (m *Manager) serveHead(_ context.Context, req headReq) (headReply, error) {
	if o := m.ownedSpace(req.Space); o != nil {
		o.mu.Lock()
		s, err := o.signed, o.oversizedLocked()
		o.mu.Unlock()
		if err != nil {
			return headReply{}, err
		}
		b, err := marshal(s)
		return headReply{Head: b}, err
	}
	m.mu.Lock()
	h := m.held[req.Space]
	m.mu.Unlock()
	if h == nil {
		return headReply{}, fmt.Errorf("%w: this node keeps no space %s", ErrNotFound, req.Space)
	}
	b, err := marshal(h.currentSigned())
	return headReply{Head: b}, err
}

// servePush takes a head from a space's home: the holder pins its root
// (fetching what it lacks) and lets go of the root before, or of the
// whole space if the head no longer names it.
func (m *Manager) servePush(ctx context.Context, req pushReq, yield func(pushReply) error) error {
	h, s, err := decodeHead(req.Head, "")
	if err != nil {
		return err
	}
	id := h.id()
	if h.Owner == m.user && m.ownedSpace(id) != nil {
		return fmt.Errorf("%w: this node is the home of %s", ErrBadHead, id)
	}
	m.mu.Lock()
	hd := m.held[id]
	if hd == nil {
		hd = &held{}
		m.held[id] = hd
	}
	m.mu.Unlock()
	hd.mu.Lock()
	defer hd.mu.Unlock()
	cur := hd.current()
	if cur != nil && h.Seq <= cur.Seq {
		return yield(pushReply{Seq: cur.Seq, Done: true, Released: !cur.holds(m.self)})
	}
	if !h.holds(m.self) {
		m.release(ctx, hd, cur, h, s)
		return yield(pushReply{Seq: h.Seq, Done: true, Released: true})
	}
	if err := m.admitHold(h, cur); err != nil {
		if cur == nil {
			m.mu.Lock()
			delete(m.held, id)
			m.mu.Unlock()
			m.log.Info("refused to hold a space", "space", id, "err", err)
			return yield(pushReply{Done: true, Released: true})
		}
		// A space this node holds already may not grow past the budget:
		// the home keeps it where it is and learns it is behind.
		return err
	}
	root, _ := h.root()
	store := m.cfg.Content.Store()
	blks := make([]blocks.Block, 0, len(req.Blocks))
	for _, b := range req.Blocks {
		blk, err := checkedBlock(b.CID, b.Data)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadChange, err)
		}
		blks = append(blks, blk)
	}
	if err := store.Blockstore().PutMany(ctx, blks); err != nil {
		return err
	}
	var perr error
	progress := func(p content.FetchProgress) {
		if perr == nil {
			perr = yield(pushReply{Progress: &p})
		}
	}
	// Fetch what is missing and move the pin from the old root to the new
	// in one write, under the pin lock so that GC takes nothing between.
	old := cid.Undef
	if cur != nil && cur.holds(m.self) {
		old, _ = cur.root()
	}
	unlock := store.PinLock(ctx)
	err = m.cfg.Content.Fetch(ctx, root, progress)
	if err == nil {
		err = store.Repin(ctx, old, root, holdPinPrefix+id)
	}
	unlock()
	if err != nil {
		return fmt.Errorf("hold %s: %w", id, err)
	}
	if perr != nil {
		return perr
	}
	if err := m.saveHeld(id, s); err != nil {
		return err
	}
	hd.hmu.Lock()
	hd.head, hd.signed = h, s
	hd.hmu.Unlock()
	if cur == nil {
		m.announce(id)
	}
	return yield(pushReply{Seq: h.Seq, Done: true})
}

// release lets go of a space whose head no longer names this node. The
// head is kept (unpinned blocks go at the next GC), so the node can tell
// readers where the space went.
func (m *Manager) release(ctx context.Context, hd *held, cur, h *head, s signed) {
	if cur != nil {
		if old, err := cur.root(); err == nil {
			if err := m.cfg.Content.Unpin(ctx, old); err != nil && !errors.Is(err, content.ErrNotPinned) {
				m.log.Warn("could not unpin a released space", "space", h.id(), "err", err)
			}
		}
	}
	if err := m.saveHeld(h.id(), s); err != nil {
		m.log.Warn("could not save a released head", "space", h.id(), "err", err)
	}
	hd.hmu.Lock()
	hd.head, hd.signed = h, s
	hd.hmu.Unlock()
}

func (m *Manager) saveHeld(id string, s signed) error {
	p := m.path(heldDir, fileName(id))
	if p == "" {
		return nil
	}
	b, err := marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, b, 0o600)
}

// holdsRoot reports whether this node keeps root of space now.
func (m *Manager) holdsRoot(space string, root cid.Cid) bool {
	if o := m.ownedSpace(space); o != nil {
		return true // the home keeps every root it made until GC
	}
	m.mu.Lock()
	hd := m.held[space]
	m.mu.Unlock()
	if hd == nil {
		return false
	}
	cur := hd.current()
	if cur == nil || !cur.holds(m.self) {
		return false
	}
	r, err := cur.root()
	return err == nil && r.Equals(root)
}

// serveRead returns the blocks on the paths from a root to some tags'
// entries, and their values when small; or, with All, every entry's.
func (m *Manager) serveRead(ctx context.Context, req readReq) (readReply, error) {
	root, err := cid.Cast(req.Root)
	if err != nil {
		return readReply{}, fmt.Errorf("%w: root: %v", ErrBadChange, err)
	}
	if len(req.Tags) > 64 {
		return readReply{}, fmt.Errorf("%w: %d tags in one read, over the limit of 64", ErrTooLarge, len(req.Tags))
	}
	if !m.holdsRoot(req.Space, root) {
		return readReply{NotHeld: true}, nil
	}
	rec := &recordDAG{DAGService: cachedDAG{m.local, &m.tree}, seen: map[cid.Cid]bool{}}
	sh, err := openTree(ctx, rec, req.Space, root)
	if ipld.IsNotFound(err) {
		return readReply{NotHeld: true}, nil
	}
	if err != nil {
		return readReply{}, err
	}
	reply := readReply{}
	if req.All {
		err := sh.ForEachLink(ctx, func(l *ipld.Link) error {
			if rec.bytes > maxReadReply {
				return errFull
			}
			_, err := rec.Get(ctx, l.Cid)
			return err
		})
		if err != nil && !errors.Is(err, errFull) {
			return readReply{}, err
		}
		reply.Blocks = rec.got
		return reply, nil
	}
	reply.Value = true
	for _, tag := range req.Tags {
		l, err := sh.Find(ctx, tag)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return readReply{}, err
		}
		en, err := rec.Get(ctx, l.Cid)
		if err != nil {
			return readReply{}, err
		}
		links := en.Links()
		if len(links) != 1 {
			return readReply{}, fmt.Errorf("entry %s has %d links", l.Cid, len(links))
		}
		vl := links[0]
		if vl.Size > inlineValue {
			// The head of a large value: the reader starts on it at once
			// while its fetcher asks every holder for the rest.
			reply.Value = false
			if err := walkUpTo(ctx, rec, vl.Cid, rec.bytes+inlineValue); err != nil && !errors.Is(err, errFull) {
				return readReply{}, err
			}
			continue
		}
		if err := walk(ctx, rec, vl.Cid); err != nil {
			return readReply{}, err
		}
	}
	reply.Blocks = rec.got
	if m.tamperRead != nil {
		m.tamperRead(reply.Blocks)
	}
	return reply, nil
}

var (
	errFull    = errors.New("reply full")
	errClosing = errors.New("the node is closing")
)

// walk visits every block under c (a value's: a few levels deep).
func walk(ctx context.Context, dag ipld.NodeGetter, c cid.Cid) error {
	n, err := dag.Get(ctx, c)
	if err != nil {
		return err
	}
	for _, l := range n.Links() {
		if err := walk(ctx, dag, l.Cid); err != nil {
			return err
		}
	}
	return nil
}

// walkUpTo visits the blocks under c depth first, in the order a reader
// reads them, until the recorder holds limit bytes (then errFull).
func walkUpTo(ctx context.Context, rec *recordDAG, c cid.Cid, limit int) error {
	if rec.bytes >= limit {
		return errFull
	}
	n, err := rec.Get(ctx, c)
	if err != nil {
		return err
	}
	for _, l := range n.Links() {
		if err := walkUpTo(ctx, rec, l.Cid, limit); err != nil {
			return err
		}
	}
	return nil
}

// serveWrite applies a change sent by a writer on another node.
func (m *Manager) serveWrite(ctx context.Context, raw []byte) (headReply, error) {
	c, body, err := decodeChange(raw)
	if err != nil {
		return headReply{}, err
	}
	o := m.ownedSpace(body.Space)
	if o == nil {
		return headReply{}, fmt.Errorf("%w: this node is not the home of %s", ErrNotHome, body.Space)
	}
	l, err := o.checkChange(c, body)
	if err != nil {
		return headReply{}, err
	}
	// The entry must name who answers for the write: the loan's issuer
	// for a run's, else the change's signer.
	prefix, writer := "", body.Writer.String()
	if l != nil {
		prefix, writer = l.Prefix(), l.Issuer().String()
	}
	entry := cid.Undef
	if body.Op == OpPut {
		entry, _ = cid.Cast(body.Entry)
		if !hasBlock(c.Blocks, entry) {
			return headReply{}, fmt.Errorf("%w: the entry's block is missing", ErrBadChange)
		}
		// A value too large to come inline is fetched from the writer,
		// under a pin of its own until the write is applied.
		if en, err := entryValue(c.Blocks, entry); err == nil && !hasBlock(c.Blocks, en) {
			if err := m.pinStalling(ctx, en, "space pending "+body.Space); err != nil {
				return headReply{}, fmt.Errorf("fetch the value from the writer: %w", err)
			}
			defer m.cfg.Content.Unpin(context.WithoutCancel(ctx), en)
		}
	}
	s, err := o.apply(ctx, body.Op, body.Tag, entry, c.Blocks, prefix, writer)
	if err != nil {
		return headReply{}, err
	}
	b, err := marshal(s)
	return headReply{Head: b}, err
}

func hasBlock(bs []block, c cid.Cid) bool {
	for _, b := range bs {
		if bytesEqualCID(b.CID, c) {
			return true
		}
	}
	return false
}

// entryValue returns the value CID an inline entry block links to.
func entryValue(bs []block, entry cid.Cid) (cid.Cid, error) {
	for _, b := range bs {
		if bytesEqualCID(b.CID, entry) {
			blk, err := checkedBlock(b.CID, b.Data)
			if err != nil {
				return cid.Undef, err
			}
			n, err := decodeBlock(blk)
			if err != nil {
				return cid.Undef, err
			}
			if len(n.Links()) != 1 {
				return cid.Undef, fmt.Errorf("%w: entry has %d links", ErrBadChange, len(n.Links()))
			}
			return n.Links()[0].Cid, nil
		}
	}
	return cid.Undef, ErrNotFound
}

// serveGrant files a delegated grant with the home.
func (m *Manager) serveGrant(ctx context.Context, raw []byte) (headReply, error) {
	g, err := decodeGrant(raw)
	if err != nil {
		return headReply{}, err
	}
	o := m.ownedSpace(g.Space())
	if o == nil {
		return headReply{}, fmt.Errorf("%w: this node is not the home of %s", ErrNotHome, g.Space())
	}
	s, err := o.file(ctx, g)
	if err != nil {
		return headReply{}, err
	}
	b, err := marshal(s)
	return headReply{Head: b}, err
}

// serveGrants lists a user's grants on a space. Grants are no secret:
// each is bound to its grantee's key.
func (m *Manager) serveGrants(_ context.Context, req grantsReq) (grantsReply, error) {
	o := m.ownedSpace(req.Space)
	if o == nil {
		return grantsReply{}, fmt.Errorf("%w: this node is not the home of %s", ErrNotHome, req.Space)
	}
	u, err := peer.Decode(req.User)
	if err != nil {
		return grantsReply{}, fmt.Errorf("%w: user: %v", ErrBadName, err)
	}
	var out grantsReply
	for _, g := range o.grantsFor(u) {
		b, err := marshal(g.links)
		if err != nil {
			return out, err
		}
		out.Grants = append(out.Grants, b)
	}
	return out, nil
}

// serveWatch streams a space's heads from since on, until the caller
// leaves or the node closes.
func (m *Manager) serveWatch(ctx context.Context, req watchReq, yield func(headReply) error) error {
	o := m.ownedSpace(req.Space)
	if o == nil {
		return fmt.Errorf("%w: this node is not the home of %s", ErrNotHome, req.Space)
	}
	return o.follow(ctx, req.Since, func(s signed) error {
		b, err := marshal(s)
		if err != nil {
			return err
		}
		return yield(headReply{Head: b})
	})
}

// errStalled ends a fetch that made no progress for too long.
var errStalled = errors.New("nothing arrived")

// pinStalling pins c, fetching it, and gives up once no block has arrived
// for m.stall: a writer that names a value nobody has must not hold the
// home's resources for as long as the writer's deadline says.
func (m *Manager) pinStalling(ctx context.Context, c cid.Cid, name string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := time.AfterFunc(m.stall, func() { cancel(fmt.Errorf("%w for %v", errStalled, m.stall)) })
	defer t.Stop()
	err := m.cfg.Content.Pin(ctx, c, name, func(content.FetchProgress) { t.Reset(m.stall) })
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errStalled) {
		return cause
	}
	return err
}
