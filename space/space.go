package space

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"sort"
	"strings"
	"time"

	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
)

// Space is a handle on one space, by owner and name. Programs keep it for
// as long as they like: it finds the space's newest head and holders on
// each call, so it keeps working while the space migrates. It is safe for
// concurrent use.
type Space struct {
	m     *Manager
	owner peer.ID
	name  string
	id    string
}

// ID is the space's ID, OWNER/NAME.
func (s *Space) ID() string { return s.id }

// Owner is the user the space belongs to.
func (s *Space) Owner() peer.ID { return s.owner }

// Name is the space's name.
func (s *Space) Name() string { return s.name }

// view is a head as a reader resolved it, with the keys the reader could
// unwrap from it (or why not).
type view struct {
	head    *head
	signed  signed
	keys    keyring
	keysErr error
	at      time.Time
}

// resolve returns the space's head: the home's own, or a cached one not
// older than HeadTTL unless fresh, or the newest that the home, the
// holders and the nodes announcing the space give. A head older than one
// seen before is never used.
func (s *Space) resolve(ctx context.Context, fresh bool) (*view, error) {
	m := s.m
	if o := m.ownedSpace(s.id); o != nil {
		o.mu.Lock()
		v := &view{head: o.head, signed: o.signed, keys: o.keys, at: time.Now()}
		o.mu.Unlock()
		return v, nil
	}
	if err := m.notLoaded(s.id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	cached := m.cache[s.id]
	m.mu.Unlock()
	if cached != nil && !fresh && time.Since(cached.at) < m.cfg.HeadTTL {
		return cached, nil
	}
	asked := map[peer.ID]bool{m.self: true}
	var best *view
	// refusedBy: the nodes that answered, but would not hand out their
	// head (over the limit). If one is the home or a holder of the
	// cached head or of the DHT's, the DHT's older head is not the space;
	// any other node's word does not count, or a stranger would keep
	// readers off the DHT's head.
	refusedBy := map[peer.ID]bool{}
	names := func(h *head) bool {
		if h == nil {
			return false
		}
		for p := range refusedBy {
			if p == h.Home || h.holds(p) {
				return true
			}
		}
		return false
	}
	var cands []*view
	consider := func(b []byte) {
		h, sg, err := decodeHead(b, s.id)
		if err != nil {
			m.log.Debug("ignoring a head", "space", s.id, "err", err)
			return
		}
		cands = append(cands, &view{head: h, signed: sg})
		// A head the user key signed may name nodes removed since an
		// earlier candidate came: choose again among those still usable.
		best = nil
		for _, c := range cands {
			if m.usable(s.id, c.head) && (best == nil || c.head.Seq > best.head.Seq) {
				best = c
			}
		}
	}
	ask := func(peers []peer.ID) {
		var todo []peer.ID
		for _, p := range peers {
			if !asked[p] {
				asked[p] = true
				todo = append(todo, p)
			}
		}
		if len(todo) == 0 {
			return
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for p, r := range headFn.OnAll(network.WithAllowLimitedConn(actx, "space"), m.cfg.Remote, todo, headReq{Space: s.id}) {
			if r.Err == nil {
				consider(r.Value.Head)
			} else if errors.Is(r.Err, ErrHeadTooLarge) {
				refusedBy[p] = true
			}
		}
	}
	if cached != nil {
		// The home has the newest; the holders only if it does not answer
		// (asking all at once would wait on a holder that is down).
		ask([]peer.ID{cached.head.Home})
		if best == nil {
			ask(cached.head.Holders)
		}
	}
	if best == nil {
		// Some node near may know the space: the owner's other nodes,
		// its holders, its home.
		peers := m.cfg.Host.Network().Peers()
		ask(peers[:min(len(peers), maxAsk)])
	}
	if best == nil && m.cfg.Routing != nil {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var found []peer.ID
		for ai := range m.cfg.Routing.FindProvidersAsync(fctx, locator(s.id), 8) {
			m.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			found = append(found, ai.ID)
		}
		cancel()
		ask(found)
	}
	if best == nil && (cached == nil || !names(cached.head)) {
		// No node that keeps the space answers: the DHT keeps its last
		// head (durable.go), unless a node it names refused a newer one.
		if b := m.headFromDHT(ctx, s.id); b != nil {
			if h, _, err := decodeHead(b, s.id); err == nil && !names(h) {
				consider(b)
			}
		}
	}
	if best != nil && !asked[best.head.Home] {
		ask([]peer.ID{best.head.Home}) // the home has the newest
	}
	if best == nil || !m.noteSeen(s.id, best.head.Seq) {
		if cached != nil {
			return cached, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: no node could be found that keeps space %s", ErrNotFound, s.id)
	}
	var prev keyring
	if cached != nil && cached.keysErr == nil {
		prev = cached.keys
	}
	best = m.viewOf(s.id, best.head, best.signed, prev)
	m.setCache(s.id, best)
	return best, nil
}

// viewOf makes a view of a verified head with this user's keys: prev's
// if they are of the head's epoch, else unwrapped from the head.
func (m *Manager) viewOf(id string, h *head, sg signed, prev keyring) *view {
	v := &view{head: h, signed: sg, at: time.Now()}
	box := h.keysFor(m.user)
	switch {
	case box == nil:
		v.keysErr = fmt.Errorf("%w: user %s has no grant to read %s", ErrNotAuthorised, m.user, id)
	case prev.Index != nil && uint64(len(prev.Data)) == h.Epoch+1:
		v.keys = prev
	default:
		var err error
		if v.keys, err = unwrapKeys(id, m.cfg.UserKey, box); err != nil {
			v.keysErr = fmt.Errorf("%w: %v", ErrNotAuthorised, err)
		}
	}
	return v
}

func (m *Manager) setCache(id string, v *view) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.cache[id]; c == nil || v.head.Seq >= c.head.Seq {
		m.cache[id] = v
	}
}

// learn takes a head a write or grant returned as the newest.
func (s *Space) learn(b []byte, prev keyring) {
	if h, sg, err := decodeHead(b, s.id); err == nil && s.m.usable(s.id, h) {
		s.learnHead(h, sg, prev)
	}
}

// learnHead caches a verified head, unless a newer one was seen, and
// returns its view.
func (s *Space) learnHead(h *head, sg signed, prev keyring) *view {
	v := s.m.viewOf(s.id, h, sg, prev)
	if s.m.noteSeen(s.id, h.Seq) {
		s.m.setCache(s.id, v)
	}
	return v
}

// viewFn gives the view a read or write goes under; fresh asks for the
// newest head. The user's is Space.readable; a Borrowed has its own, with
// the loan's keys, which never reach the Manager's cache.
type viewFn func(ctx context.Context, fresh bool) (*view, error)

// readable resolves the head and the keys to read it.
func (s *Space) readable(ctx context.Context, fresh bool) (*view, error) {
	v, err := s.resolve(ctx, fresh)
	if err == nil && v.keysErr != nil && !fresh {
		// A grant may have come since the head was cached.
		v, err = s.resolve(ctx, true)
	}
	if err != nil {
		return nil, err
	}
	if v.head.Deleted {
		return nil, fmt.Errorf("%w: space %s was deleted", ErrNotFound, s.id)
	}
	if v.keysErr != nil {
		return nil, v.keysErr
	}
	return v, nil
}

// sources are the nodes to read a view's root from: the holders, then the
// home. On the home itself, only itself.
func (s *Space) sources(v *view) []peer.ID {
	if v.head.Home == s.m.self || s.m.ownedSpace(s.id) != nil {
		return []peer.ID{s.m.self}
	}
	out := slices.Clone(v.head.Holders)
	if i := slices.Index(out, s.m.self); i > 0 {
		out[0], out[i] = out[i], out[0] // a holder reads its own copy first
	}
	return append(out, v.head.Home)
}

// maxAsk bounds the connected peers a reader asks for a head it has no
// trace of, before it turns to the DHT.
const maxAsk = 32

// errMoved says a source no longer holds the root asked for.
var errMoved = errors.New("the holder no longer has that root")

// fetch asks the sources for the blocks of req, one after another, until
// one answers with blocks that all match their CIDs. It returns a DAG over
// those blocks that fetches anything else through the network.
func (s *Space) fetch(ctx context.Context, v *view, req readReq) (*memDAG, bool, error) {
	m := s.m
	root, _ := v.head.root()
	req.Space, req.Root = s.id, root.Bytes()
	if m.holdsRoot(s.id, root) {
		return newMemDAG(m.local), true, nil
	}
	var errs []error
	moved, answered := false, false
	for _, p := range s.sources(v) {
		if p == m.self {
			continue
		}
		r, err := readFn.At(m.cfg.Remote, p).Call(network.WithAllowLimitedConn(ctx, "space"), req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		answered = true
		if r.NotHeld {
			moved = true
			errs = append(errs, fmt.Errorf("%s: %w", p, errMoved))
			continue
		}
		d := newMemDAG(m.cfg.Content.DAG())
		bad := false
		for _, b := range r.Blocks {
			blk, err := checkedBlock(b.CID, b.Data)
			if err != nil {
				m.log.Warn("a holder sent a block that does not match its CID; asking another", "space", s.id, "peer", p, "err", err)
				errs = append(errs, fmt.Errorf("%s sent a tampered block: %w", p, err))
				bad = true
				break
			}
			d.put(blk)
		}
		if !bad {
			return d, r.Value, nil
		}
	}
	if moved {
		return nil, false, errMoved
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if answered || req.All || m.cfg.Routing == nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, s.id, errors.Join(errs...))
	}
	// No home or holder answers: read the blocks through the content
	// layer from whatever node still provides them (one that pinned the
	// space's root, a reader that kept them). Each block is checked
	// against its CID as it comes, and the tree under the signed root
	// decides what is there.
	m.log.Debug("no home or holder of the space answers; reading its blocks from any provider", "space", s.id, "err", errors.Join(errs...))
	return newMemDAG(boundedGetter{m.cfg.Content.DAG(), providerWait}), false, nil
}

// Value is a value being read. Close it when done.
type Value interface {
	io.ReadCloser
	// Size is the value's length in bytes.
	Size() uint64
}

type value struct {
	io.Reader
	size  uint64
	close func() error
}

func (v *value) Size() uint64 { return v.size }
func (v *value) Close() error {
	if v.close != nil {
		return v.close()
	}
	return nil
}

// Get opens key's value. It returns ErrNotFound if the key is not there,
// ErrNotAuthorised if this user may not read the space.
func (s *Space) Get(ctx context.Context, key string) (Value, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return s.getVia(ctx, key, s.readable)
}

// getVia opens key's value under the views of readable, asking for a
// newer head when the one it has may be behind.
func (s *Space) getVia(ctx context.Context, key string, readable viewFn) (Value, error) {
	var last error
	for attempt := range 3 {
		start := time.Now()
		v, err := readable(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		val, err := s.get(ctx, v, key)
		if err == nil {
			return val, nil
		}
		last = err
		// A key missing under a head that was cached (it may be older
		// than the write), or a holder that let go: ask for the newest
		// head and try again.
		cached := v.at.Before(start) && s.m.ownedSpace(s.id) == nil
		if !errors.Is(err, errMoved) && !(errors.Is(err, ErrNotFound) && cached) {
			return nil, err
		}
	}
	if errors.Is(last, errMoved) {
		return nil, fmt.Errorf("%w: %s: every holder asked had moved on", ErrUnavailable, s.id)
	}
	return nil, last
}

func (s *Space) get(ctx context.Context, v *view, key string) (Value, error) {
	tag := v.keys.tag(key)
	dag, whole, err := s.fetch(ctx, v, readReq{Tags: []string{tag}})
	if err != nil {
		return nil, err
	}
	root, _ := v.head.root()
	ec, err := findEntry(ctx, dag, s.id, root, tag)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: no key %q in %s", ErrNotFound, key, s.id)
		}
		return nil, err
	}
	en, err := dag.Get(ctx, ec)
	if err != nil {
		return nil, err
	}
	mt, ep, err := readEntry(en, v.keys, s.id, tag)
	if err != nil {
		return nil, err
	}
	dk, err := v.keys.data(ep)
	if err != nil {
		return nil, err
	}
	vc, _ := cid.Cast(mt.Value)
	var src io.Reader
	closer := func() error { return nil }
	if whole && (dag.has(vc) || s.m.holdsRoot(s.id, root)) {
		vn, err := dag.Get(ctx, vc)
		if err != nil {
			return nil, err
		}
		r, err := uio.NewDagReader(ctx, vn, dag)
		if err != nil {
			return nil, err
		}
		src = r
	} else {
		// The first blocks of the value came with the reply: into the
		// store with them (each was checked against its CID), so the file
		// reader starts on them while its fetcher gets the rest.
		if err := s.m.cfg.Content.Store().Blockstore().PutMany(ctx, dag.values()); err != nil {
			return nil, err
		}
		f, err := s.m.cfg.Content.Get(ctx, vc.String())
		if err != nil {
			return nil, err
		}
		src, closer = f, f.Close
	}
	if v.head.Policy.Public {
		return &value{Reader: &sizeCheck{r: src, want: mt.Size}, size: mt.Size, close: closer}, nil
	}
	op, err := newOpener(dk, src, mt.Size)
	if err != nil {
		closer()
		return nil, err
	}
	return &value{Reader: &sizeCheck{r: op, want: mt.Size}, size: mt.Size, close: closer}, nil
}

// sizeCheck fails a value whose plaintext is not the size its entry says.
type sizeCheck struct {
	r    io.Reader
	n    uint64
	want uint64
}

func (c *sizeCheck) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if err == io.EOF && c.n != c.want {
		return n, fmt.Errorf("%w: value of %d bytes, its entry says %d", ErrDecrypt, c.n, c.want)
	}
	return n, err
}

// GetBytes reads key's whole value.
func (s *Space) GetBytes(ctx context.Context, key string) ([]byte, error) {
	v, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return io.ReadAll(v)
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrBadName)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes, over the limit of %d", ErrTooLarge, len(key), MaxKeyLen)
	}
	return nil
}

// Put sets key to the bytes of r, sealed on this node before any of them
// leaves it. It returns once the home has applied the write.
func (s *Space) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.write(ctx, nil, OpPut, key, r)
}

// PutBytes sets key to b.
func (s *Space) PutBytes(ctx context.Context, key string, b []byte) error {
	return s.Put(ctx, key, bytes.NewReader(b))
}

// Delete removes key, and only it (Destroy removes the whole space). It
// returns ErrNotFound if the key is not there.
func (s *Space) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.write(ctx, nil, OpDelete, key, nil)
}

// smallValue is the most plaintext a write seals in memory and sends
// with the change (sealed, it stays under inlineValue); a larger value is
// stored on the writer's node and fetched by the home.
const smallValue = inlineValue - 4<<10

// write seals the value, stores it here, and has the home apply the
// change, as this node's user (b nil) or as the run b under its loan. A
// write sealed under a key epoch that ended meanwhile is sealed again
// under the new one.
func (s *Space) write(ctx context.Context, b *Borrowed, op Op, key string, r io.Reader) error {
	m := s.m
	readable := s.readable
	if b != nil {
		readable = b.view
	}
	// A small value is read whole first: it is sealed in memory, and can
	// be sealed again if need be.
	var small []byte
	if r != nil {
		head, err := io.ReadAll(io.LimitReader(r, smallValue+1))
		if err != nil {
			return fmt.Errorf("put %q: %w", key, err)
		}
		if len(head) <= smallValue {
			small, r = head, nil
		} else {
			r = io.MultiReader(bytes.NewReader(head), r)
		}
	}
	for attempt := range 4 {
		v, err := readable(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = s.writeOnce(ctx, v, b, op, key, small, r)
		if errors.Is(err, ErrNotHome) && r == nil && attempt < 3 {
			// The home handed the space over (Space.Home) and did not
			// apply the change: write again at the new home, if the
			// newest head names another. (ErrNotHome's kind is also
			// other refusals', which leave the home as it was.)
			nv, rerr := readable(ctx, true)
			if rerr == nil && nv.head.Home != v.head.Home {
				m.log.Debug("the home moved; writing at the new one", "space", s.id, "home", nv.head.Home)
				continue
			}
			return err
		}
		if !errors.Is(err, ErrStale) || r != nil || attempt >= 2 {
			return err
		}
		m.log.Debug("write raced a key rotation; sealing again", "space", s.id)
	}
	return nil
}

// writeOnce writes small (a whole value), or r's bytes, or deletes. b,
// if not nil, is the run the write is for: the runner node signs the
// change and attaches the loan, and the entry names the loan's issuer as
// its writer.
func (s *Space) writeOnce(ctx context.Context, v *view, b *Borrowed, op Op, key string, small []byte, r io.Reader) error {
	m := s.m
	writer, signer, signs := m.user, m.cfg.UserKey, m.user
	if b != nil {
		writer, signer, signs = b.loan.Issuer(), b.node, b.runner
	}
	tag := v.keys.tag(key)
	epoch := v.head.Epoch
	var entry cid.Cid
	var blocks []block
	if op == OpPut {
		dk, err := v.keys.data(epoch)
		if err != nil {
			return err
		}
		var vc cid.Cid
		var n uint64
		// A public space's value goes as it is, a file as content.Add
		// makes it; another's, sealed.
		public := v.head.Policy.Public
		source := func(r io.Reader) (io.Reader, func() uint64) {
			if public {
				p := &plain{r: r, max: uint64(m.cfg.MaxValue)}
				return p, func() uint64 { return p.n }
			}
			sl := newSealer(dk, r, uint64(m.cfg.MaxValue))
			return sl, func() uint64 { return sl.n }
		}
		if r == nil {
			mem := newMemDAG(nil)
			src, count := source(bytes.NewReader(small))
			vn, err := content.ImportFile(mem, src)
			if err != nil {
				return fmt.Errorf("put %q: %w", key, err)
			}
			vc, n = vn.Cid(), count()
			blocks = mem.added()
		} else {
			src, count := source(r)
			vc, err = m.cfg.Content.Add(ctx, src, content.AddOptions{Name: "space pending " + s.id})
			if err != nil {
				return fmt.Errorf("put %q: %w", key, err)
			}
			defer m.cfg.Content.Unpin(context.WithoutCancel(ctx), vc)
			n = count()
		}
		en, err := makeEntry(v.keys, epoch, s.id, tag, meta{Key: key, Size: n, Value: vc.Bytes(), Time: time.Now().UnixNano(), Writer: writer.String()}, public)
		if err != nil {
			return err
		}
		entry = en.Cid()
		blocks = append([]block{{CID: en.Cid().Bytes(), Data: en.RawData()}}, blocks...)
	}
	if o := m.ownedSpace(s.id); o != nil && b == nil {
		_, err := o.apply(ctx, op, tag, entry, blocks, "", m.user.String())
		return err
	}
	body := changeBody{Space: s.id, Writer: signs, Op: op, Tag: tag, Nonce: randomBytes(16), Time: time.Now().UnixNano()}
	if op == OpPut {
		body.Entry = entry.Bytes()
	}
	sg, err := sign(signer, changeDomain, body)
	if err != nil {
		return err
	}
	c := change{Signed: sg, Blocks: blocks}
	switch {
	case b != nil:
		c.Loan = b.loan.raw
	case s.owner != m.user:
		g, err := s.writeGrant(ctx, v)
		if err != nil {
			return err
		}
		c.Grant = g.links
	}
	raw, err := marshal(c)
	if err != nil {
		return err
	}
	var rep headReply
	if v.head.Home == m.self {
		// A run on the home itself: the home checks the loan as it
		// would another node's.
		rep, err = m.serveWrite(ctx, raw)
	} else {
		rep, err = writeFn.At(m.cfg.Remote, v.head.Home).Call(network.WithAllowLimitedConn(ctx, "space"), raw)
	}
	if err != nil {
		if errors.Is(err, ErrNotAuthorised) && b == nil {
			m.mu.Lock()
			delete(m.myGrant, s.id) // ask the home again next time
			m.mu.Unlock()
		}
		return fmt.Errorf("%s %q in %s: %w", op, key, s.id, err)
	}
	if b != nil {
		// The loan's keys stay with the run: the cache learns the head
		// with this user's own keys, if it has any.
		s.learn(rep.Head, keyring{})
		return nil
	}
	s.learn(rep.Head, v.keys)
	return nil
}

// writeGrant returns this user's grant to write the space, from the cache
// or the home.
func (s *Space) writeGrant(ctx context.Context, v *view) (*Grant, error) {
	m := s.m
	m.mu.Lock()
	g := m.myGrant[s.id]
	m.mu.Unlock()
	if g != nil && g.check(s.id, Write, time.Now(), v.head.Revoked) == nil {
		return g, nil
	}
	g, err := s.myGrant(ctx, v, Write)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.myGrant[s.id] = g
	m.mu.Unlock()
	return g, nil
}

// myGrant finds this user's grant on the space that gives want, asking
// the home.
func (s *Space) myGrant(ctx context.Context, v *view, want Rights) (*Grant, error) {
	m := s.m
	r, err := grantsFn.At(m.cfg.Remote, v.head.Home).Call(network.WithAllowLimitedConn(ctx, "space"), grantsReq{Space: s.id, User: m.user.String()})
	if err != nil {
		return nil, fmt.Errorf("ask the home of %s for this user's grants: %w", s.id, err)
	}
	var last error = fmt.Errorf("%w: user %s has no grant to %s %s", ErrNotAuthorised, m.user, strings.ToLower(want.String()), s.id)
	for _, b := range r.Grants {
		g, err := decodeGrant(b)
		if err != nil {
			continue
		}
		if err := g.check(s.id, want, time.Now(), v.head.Revoked); err != nil {
			last = err
			continue
		}
		if g.To() == m.user {
			return g, nil
		}
	}
	return nil, last
}

// Item is one key of a List.
type Item struct {
	Key    string    `json:"key"`
	Size   uint64    `json:"size"`
	Time   time.Time `json:"time"`
	Writer string    `json:"writer"`
}

// List lists the keys that start with prefix, sorted.
func (s *Space) List(ctx context.Context, prefix string) ([]Item, error) {
	return s.listVia(ctx, prefix, s.readable)
}

// listVia lists under the views of readable.
func (s *Space) listVia(ctx context.Context, prefix string, readable viewFn) ([]Item, error) {
	var last error
	for attempt := range 3 {
		v, err := readable(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		items, err := s.list(ctx, v, prefix)
		if !errors.Is(err, errMoved) {
			return items, err
		}
		last = err
	}
	return nil, last
}

func (s *Space) list(ctx context.Context, v *view, prefix string) ([]Item, error) {
	dag, _, err := s.fetch(ctx, v, readReq{All: true})
	if err != nil {
		return nil, err
	}
	root, _ := v.head.root()
	sh, err := openTree(ctx, dag, s.id, root)
	if err != nil {
		return nil, err
	}
	var out []Item
	err = sh.ForEachLink(ctx, func(l *ipld.Link) error {
		tag := l.Name
		if len(tag) > 64 {
			tag = tag[len(tag)-64:]
		}
		n, err := dag.Get(ctx, l.Cid)
		if err != nil {
			return err
		}
		mt, _, err := readEntry(n, v.keys, s.id, tag)
		if err != nil {
			return err
		}
		if strings.HasPrefix(mt.Key, prefix) {
			out = append(out, Item{Key: mt.Key, Size: mt.Size, Time: time.Unix(0, mt.Time).UTC(), Writer: mt.Writer})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// Event is one change to a space, as Watch reports it.
type Event struct {
	Seq  uint64    `json:"seq"`
	Op   Op        `json:"-"`
	Kind string    `json:"op"` // "put" or "delete"
	Key  string    `json:"key"`
	Time time.Time `json:"time"`
}

// Watch yields the space's changes as the home applies them, from the
// version current when Watch is called (not when the sequence is first
// ranged: a change made in between is reported), until ctx ends. Heads
// the reader cannot verify are skipped; a lost connection to the home is
// retried. An error that will not pass (no grant, no such space) ends the
// sequence after it is yielded.
func (s *Space) Watch(ctx context.Context) iter.Seq2[Event, error] {
	v, err := s.readable(ctx, true)
	return func(yield func(Event, error) bool) {
		if err != nil {
			yield(Event{}, err)
			return
		}
		since := v.head.Seq
		keys := v.keys
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			home := v.head.Home
			var stream iter.Seq2[headReply, error]
			if o := s.m.ownedSpace(s.id); o != nil {
				stream = s.localWatch(ctx, o, since)
			} else {
				stream = watchFn.At(s.m.cfg.Remote, home).Call(network.WithAllowLimitedConn(ctx, "space"), watchReq{Space: s.id, Since: since})
			}
			for r, err := range stream {
				if err != nil {
					break
				}
				h, sg, err := decodeHead(r.Head, s.id)
				if err != nil || h.Seq <= since {
					continue
				}
				nv := s.learnHead(h, sg, keys)
				if nv.keysErr != nil {
					yield(Event{}, nv.keysErr)
					return
				}
				keys = nv.keys
				since = h.Seq
				backoff = 100 * time.Millisecond
				for _, c := range h.Changes {
					ev := Event{Seq: h.Seq, Op: c.Op, Kind: c.Op.String(), Time: time.Unix(0, h.Time).UTC()}
					if dk, err := keys.data(h.Epoch); err == nil {
						if name, err := openSmall(dk, metaAD(s.id, c.Tag), c.Name); err == nil {
							ev.Key = string(name)
						}
					}
					if !yield(ev, nil) {
						return
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			if nv, err := s.readable(ctx, true); err == nil {
				v = nv
			}
		}
	}
}

func (s *Space) localWatch(ctx context.Context, o *owned, since uint64) iter.Seq2[headReply, error] {
	return func(yield func(headReply, error) bool) {
		err := o.follow(ctx, since, func(sg signed) error {
			b, err := marshal(sg)
			if err == nil && !yield(headReply{Head: b}, nil) {
				return errStop
			}
			return err
		})
		if errors.Is(err, errClosing) {
			yield(headReply{}, err)
		}
	}
}

// errStop ends a follow whose consumer stopped.
var errStop = errors.New("stopped")
