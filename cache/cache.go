package cache

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultBound is how long an entry is served without its source
// confirming that nothing changed it (Options.Bound).
const DefaultBound = time.Second

// Options say how a cache behaves. The zero value is a working default.
type Options struct {
	// Bound is the staleness bound: a change the source acknowledged more
	// than Bound ago is never hidden by an entry, and an entry is not
	// served once Bound has passed since the source last confirmed (a
	// heartbeat, every third of Bound) that this node has every change.
	// Zero means DefaultBound.
	Bound time.Duration
	// Strict makes every Get ask the source's version first (one small
	// round trip) and serve an entry only if this node has every change
	// up to that version: a strict Get is never stale.
	Strict bool
	// MaxBytes bounds the values this cache keeps on this node. Zero
	// means DefaultBytes.
	MaxBytes int64
	// MaxEntry is the largest value kept; larger ones are served but not
	// kept. Zero means DefaultMaxEntry.
	MaxEntry int
	// HotReads is how many reads on this node of a key another node owns
	// make this node keep a copy of it. Zero means DefaultHotReads; a
	// negative value never copies.
	HotReads int
	// Peers, if set, are the nodes to share the cache with, besides those
	// found: each is greeted at start.
	Peers []peer.ID
	// NoPeers keeps the cache on this node alone.
	NoPeers bool
	// Invalidated, if set, is called with the keys a change of the
	// source dropped on this node (nil: every key), after it dropped them,
	// from the goroutine that follows the source: return quickly.
	Invalidated func(keys []string)
}

// Validate names a bad field.
func (o Options) Validate() error {
	switch {
	case o.Bound < 0:
		return fmt.Errorf("%w: Options.Bound is negative", ErrBadRequest)
	case o.MaxBytes < 0:
		return fmt.Errorf("%w: Options.MaxBytes is negative", ErrBadRequest)
	case o.MaxEntry < 0:
		return fmt.Errorf("%w: Options.MaxEntry is negative", ErrBadRequest)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Bound == 0 {
		o.Bound = DefaultBound
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultBytes
	}
	if o.MaxEntry == 0 {
		o.MaxEntry = DefaultMaxEntry
	}
	if o.HotReads == 0 {
		o.HotReads = DefaultHotReads
	}
	return o
}

// Stats is what a cache did on this node.
type Stats struct {
	Name          string    `json:"name"`
	Entries       int       `json:"entries"`
	Bytes         int64     `json:"bytes"`
	MaxBytes      int64     `json:"max_bytes"`
	Peers         []peer.ID `json:"peers"`
	Version       uint64    `json:"version"`
	Confirmed     time.Time `json:"confirmed"`
	Bound         string    `json:"bound"`
	Strict        bool      `json:"strict"`
	Hits          uint64    `json:"hits"`
	RemoteHits    uint64    `json:"remote_hits"`
	Misses        uint64    `json:"misses"`
	Loads         uint64    `json:"loads"`
	Invalidations uint64    `json:"invalidations"`
	Evictions     uint64    `json:"evictions"`
	StaleFills    uint64    `json:"stale_fills"`
}

// entry is one key's value as this node keeps it.
type entry struct {
	key     string
	val     []byte
	ver     uint64
	missing bool // the source has no such key
	el      *list.Element
}

func (e *entry) size() int64 { return int64(len(e.key) + len(e.val) + 64) }

// fill is a load of one key under way on this node: every Get of the key
// waits on it (one load per key per node, and per network on the owner).
// An invalidation of the key during the fill sets stale, its lease
// broken: what it loaded is not kept.
type fill struct {
	done  chan struct{}
	stale bool
	e     *entry
	err   error
}

// Cache is one node's part of a cache of a source. Use it from many
// goroutines. Close stops it on this node.
type Cache struct {
	m    *Manager
	src  Source
	id   string
	opts Options

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	bytes atomic.Int64
	st    struct{ hits, remoteHits, misses, loads, invalidations, evictions, stale atomic.Uint64 }

	mu        sync.Mutex
	entries   map[string]*entry
	lru       list.List // front: most recently used
	fills     map[string]*fill
	remote    map[string]*fill // fetches from owners under way
	reads     map[string]int   // reads of others' keys, for hot copies
	wrote     map[string]uint64
	applied   uint64      // every change up to it is applied here
	confirmed time.Time   // the source last confirmed applied then
	fresh     atomic.Bool // confirmed less than the bound ago
	expire    *time.Timer // clears fresh
	refused   error       // the source refuses this node's user
	pending   uint64      // a version the heartbeat saw that the stream has yet to bring
	pendingAt time.Time   // when it was seen
	noStream  bool        // the source has no change stream
	peers     map[peer.ID]bool
	closed    bool

	// fillHook, if set, runs between a load and keeping it (tests).
	fillHook func(key string)
}

func newCache(m *Manager, src Source, opts Options) *Cache {
	c := &Cache{m: m, src: src, id: src.ID(), opts: opts.withDefaults(),
		entries: map[string]*entry{}, fills: map[string]*fill{}, remote: map[string]*fill{},
		reads: map[string]int{}, wrote: map[string]uint64{}, peers: map[peer.ID]bool{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Name is the cache's name: its source's ID.
func (c *Cache) Name() string { return c.id }

// Bound is the staleness bound in force.
func (c *Cache) Bound() time.Duration { return c.opts.Bound }

func (c *Cache) start(ctx context.Context) {
	c.wg.Add(2)
	go c.follow()
	go c.heartbeat()
	if !c.opts.NoPeers {
		for _, p := range c.opts.Peers {
			c.addPeer(p)
		}
		c.greet(ctx)
		c.wg.Add(1)
		go c.regreet()
	}
}

// Close stops following the source and drops this node's entries. Safe
// to call twice.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.dropAllLocked(false)
	c.fresh.Store(false)
	if c.expire != nil {
		c.expire.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.m.forget(c)
	return nil
}

// follow applies the source's change stream until Close, starting it
// again after an error that may pass.
func (c *Cache) follow() {
	defer c.wg.Done()
	backoff := 100 * time.Millisecond
	for c.ctx.Err() == nil {
		err := c.src.Follow(c.ctx, func(v uint64, keys []string) { c.changed(v, keys, time.Time{}) })
		switch {
		case errors.Is(err, ErrNotAuthorised):
			c.refuse(err)
			return
		case err == nil && c.ctx.Err() == nil:
			c.mu.Lock()
			c.noStream = true // the heartbeat alone invalidates
			c.mu.Unlock()
			return
		case err != nil:
			c.m.log.Debug("following the source", "cache", c.id, "err", err)
			c.changed(0, nil, time.Time{}) // what was missed is unknown
		}
		select {
		case <-c.ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// heartbeat asks the source's version every third of the bound; a
// version this node has applied confirms its entries, a newer one drops
// every entry older than it.
func (c *Cache) heartbeat() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.Bound / 3)
	defer t.Stop()
	for {
		c.beat()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Cache) beat() {
	at := time.Now()
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.Bound)
	v, err := c.src.Version(ctx)
	cancel()
	if err != nil {
		c.m.log.Debug("source heartbeat", "cache", c.id, "err", err)
		return
	}
	c.confirm(v, at)
}

// confirm records that the source was at version v at time at. An entry
// is confirmed once this node has applied every change up to v: at once
// if the stream brought them, or, for a member's own stream (a group),
// which hands changes over as they apply. A stream that stays behind v
// for a whole beat has missed something: every entry older than v goes.
// A source with no stream is confirmed by the version alone.
func (c *Cache) confirm(v uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != 0 && c.applied >= c.pending {
		c.setConfirmedLocked(c.pendingAt)
	}
	_, local := c.src.(localStream)
	switch {
	case v <= c.applied:
		c.pending = 0
	case local:
		c.applied = v
	case c.noStream || len(c.entries) == 0 || (c.pending != 0 && c.applied < c.pending):
		c.dropOlderLocked(v)
		c.applied, c.pending = v, 0
	default:
		c.pending, c.pendingAt = v, at // the stream has a beat to bring it
		return
	}
	c.setConfirmedLocked(at)
}

// setConfirmedLocked records a confirmation at time at, and arms the
// timer that ends it: entries are served while fresh is set, which the
// timer clears a twentieth of the bound early; a hit also reads the clock
// (servableLocked), so a timer that runs later still keeps the bound.
func (c *Cache) setConfirmedLocked(at time.Time) {
	if !at.After(c.confirmed) {
		return
	}
	c.confirmed = at
	left := time.Until(at.Add(c.opts.Bound - c.opts.Bound/20))
	if left <= 0 || c.closed {
		return
	}
	c.fresh.Store(true)
	if c.expire == nil {
		c.expire = time.AfterFunc(left, c.expireNow)
	} else {
		c.expire.Reset(left)
	}
}

func (c *Cache) expireNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.confirmed) >= c.opts.Bound-c.opts.Bound/20 {
		c.fresh.Store(false)
	}
}

// changed applies a change of the source: keys changed at version v
// (nil keys: any key).
func (c *Cache) changed(v uint64, keys []string, _ time.Time) {
	c.mu.Lock()
	c.changedLocked(v, keys)
	c.mu.Unlock()
	if c.opts.Invalidated != nil {
		c.opts.Invalidated(keys)
	}
}

func (c *Cache) changedLocked(v uint64, keys []string) {
	if keys == nil {
		c.dropAllLocked(true)
	}
	for _, k := range keys {
		if e := c.entries[k]; e != nil && (e.ver < v || v == 0) {
			c.removeLocked(e)
			c.st.invalidations.Add(1)
			c.m.met.invalidations.Inc()
		}
		if f := c.fills[k]; f != nil {
			f.stale = true
		}
		if f := c.remote[k]; f != nil {
			f.stale = true
		}
	}
	if v > c.applied && keys != nil {
		c.applied = v
	}
	if c.pending != 0 && c.applied >= c.pending {
		c.setConfirmedLocked(c.pendingAt)
		c.pending = 0
	}
}

func (c *Cache) dropOlderLocked(v uint64) {
	for _, e := range c.entries {
		if e.ver < v {
			c.removeLocked(e)
			c.st.invalidations.Add(1)
			c.m.met.invalidations.Inc()
		}
	}
	for _, f := range c.fills {
		f.stale = true
	}
	for _, f := range c.remote {
		f.stale = true
	}
}

func (c *Cache) dropAllLocked(count bool) {
	for _, e := range c.entries {
		c.removeLocked(e)
		if count {
			c.st.invalidations.Add(1)
			c.m.met.invalidations.Inc()
		}
	}
	for _, f := range c.fills {
		f.stale = true
	}
	for _, f := range c.remote {
		f.stale = true
	}
}

// refuse drops every entry and refuses Gets from now on: the source
// says this node's user may not read it.
func (c *Cache) refuse(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		c.refused = err
	}
	c.dropAllLocked(true)
}

func (c *Cache) removeLocked(e *entry) {
	delete(c.entries, e.key)
	c.lru.Remove(e.el)
	c.bytes.Add(-e.size())
	c.m.bytes.Add(-e.size())
}

// keepLocked keeps e, unless it is too large, within the cache's bound.
// The node's bound is the caller's to enforce after unlocking.
func (c *Cache) keepLocked(e *entry) {
	if len(e.val) > c.opts.MaxEntry || c.closed || c.refused != nil {
		return
	}
	if old := c.entries[e.key]; old != nil {
		c.removeLocked(old)
	}
	e.el = c.lru.PushFront(e)
	c.entries[e.key] = e
	c.bytes.Add(e.size())
	c.m.bytes.Add(e.size())
	for c.bytes.Load() > c.opts.MaxBytes && c.lru.Len() > 0 {
		c.evictLocked()
	}
}

func (c *Cache) evictLocked() {
	e := c.lru.Back().Value.(*entry)
	c.removeLocked(e)
	c.st.evictions.Add(1)
	c.m.met.evictions.Inc()
}

// evictOne drops the least recently used entry, for the node's bound.
func (c *Cache) evictOne() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() == 0 {
		return false
	}
	c.evictLocked()
	return true
}

// Get returns key's value: from this node's memory if it holds it and
// the source confirmed it within the bound (or, Strict, now), else from
// the key's owner among the cache's nodes, else from one load of the
// source. A key the source lacks is ErrNotFound; a space this node's user
// may not read, ErrNotAuthorised. The value is the cache's: do not change
// it.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	var min uint64
	if c.opts.Strict {
		v, err := c.src.Version(ctx)
		if err != nil {
			return nil, fmt.Errorf("cache %s: strict get %q: %w", c.id, key, err)
		}
		min = v
	}
	c.mu.Lock()
	if _, local := c.src.(localStream); local && min > c.applied {
		c.applied = min
	}
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if len(c.wrote) > 0 && c.wrote[key] > min {
		min = c.wrote[key]
	}
	if e := c.entries[key]; e != nil && c.servableLocked(e, min) {
		c.lru.MoveToFront(e.el)
		c.mu.Unlock()
		c.st.hits.Add(1)
		return e.value(c.id)
	}
	c.mu.Unlock()
	c.st.misses.Add(1)
	c.m.met.misses.Inc()
	if c.opts.Strict {
		// Straight to the source: an owner's answer would be one hop more
		// and no fresher.
		e, err := c.load(ctx, key, min)
		if err != nil {
			return nil, err
		}
		return e.value(c.id)
	}
	owner := c.owner(key)
	if owner == c.m.self {
		e, err := c.load(ctx, key, min)
		if err != nil {
			return nil, err
		}
		return e.value(c.id)
	}
	e, err := c.fromOwner(ctx, owner, key, min)
	if err != nil {
		return nil, err
	}
	return e.value(c.id)
}

func (e *entry) value(id string) ([]byte, error) {
	if e.missing {
		return nil, fmt.Errorf("%w: %q in %s", ErrNotFound, e.key, id)
	}
	return e.val, nil
}

func (c *Cache) usableLocked() error {
	switch {
	case c.closed:
		return ErrClosed
	case c.refused != nil:
		return fmt.Errorf("cache %s: %w", c.id, c.refused)
	}
	return nil
}

// servableLocked says whether e may be served to a reader that knows the
// source at version min: confirmed within the bound, and this node
// as far as min.
func (c *Cache) servableLocked(e *entry, min uint64) bool {
	if e.ver < min && c.applied < min {
		return false
	}
	if c.opts.Strict {
		return c.applied >= min
	}
	// The timer that clears fresh may run late on a starved machine (it
	// did, by more than its twentieth of the bound, under a test's read
	// loop on two cores), so the clock is read too: a hit costs one
	// monotonic clock read, and the bound holds however late the timer.
	return c.fresh.Load() && time.Since(c.confirmed) < c.opts.Bound
}

// ownerGet serves a peer's Get as the key's owner.
func (c *Cache) ownerGet(ctx context.Context, key string, min uint64) (*entry, error) {
	c.mu.Lock()
	if err := c.usableLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if e := c.entries[key]; e != nil && c.servableLocked(e, min) {
		c.lru.MoveToFront(e.el)
		c.mu.Unlock()
		c.st.hits.Add(1)
		if e.missing {
			return e, fmt.Errorf("%w: %q", ErrNotFound, key)
		}
		return e, nil
	}
	c.mu.Unlock()
	c.st.misses.Add(1)
	c.m.met.misses.Inc()
	e, err := c.load(ctx, key, min)
	if err == nil && e.missing {
		return e, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return e, err
}

// load reads key from the source once however many ask at once, and
// keeps the value unless an invalidation broke the fill's lease; then it
// loads again (three tries), so that no caller gets a value older than
// an invalidation it raced.
func (c *Cache) load(ctx context.Context, key string, min uint64) (*entry, error) {
	c.mu.Lock()
	if f := c.fills[key]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.e, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &fill{done: make(chan struct{})}
	c.fills[key] = f
	c.mu.Unlock()
	// The load belongs to all who wait on it, not to the first caller.
	lctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	var e *entry
	var err error
	for try := 0; ; try++ {
		var val []byte
		var ver uint64
		c.st.loads.Add(1)
		c.m.met.loads.Inc()
		val, ver, err = c.src.Load(lctx, key)
		if c.fillHook != nil {
			c.fillHook(key)
		}
		missing := errors.Is(err, ErrNotFound)
		if missing {
			err = nil
		}
		c.mu.Lock()
		stale := f.stale
		f.stale = false
		if err == nil {
			e = &entry{key: key, val: val, ver: ver, missing: missing}
		}
		if errors.Is(err, ErrNotAuthorised) {
			delete(c.fills, key)
			f.err = err
			close(f.done)
			c.mu.Unlock()
			c.refuse(err)
			return nil, err
		}
		if stale {
			c.st.stale.Add(1)
			c.m.met.stale.Inc()
		}
		if (!stale || try == 2) || err != nil {
			if err == nil && !stale && ver >= min {
				c.keepLocked(e)
			}
			delete(c.fills, key)
			f.e, f.err = e, err
			close(f.done)
			c.mu.Unlock()
			c.m.fitNode()
			if err != nil {
				return nil, fmt.Errorf("cache %s: load %q: %w", c.id, key, err)
			}
			return e, nil
		}
		c.mu.Unlock()
	}
}

// fromOwner asks the key's owner, one call per key on this node however
// many ask at once; a hot key is kept here too. If the owner does not
// answer it is dropped from the peers and the key loaded here.
func (c *Cache) fromOwner(ctx context.Context, owner peer.ID, key string, min uint64) (*entry, error) {
	c.mu.Lock()
	if f := c.remote[key]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return nil, f.err
			}
			return f.e, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &fill{done: make(chan struct{})}
	c.remote[key] = f
	c.reads[key]++
	hot := c.opts.HotReads > 0 && c.reads[key] >= c.opts.HotReads
	if len(c.reads) > 4096 {
		clear(c.reads)
	}
	c.mu.Unlock()
	finish := func(e *entry, err error) (*entry, error) {
		c.mu.Lock()
		if err == nil && hot && !f.stale {
			c.keepLocked(&entry{key: e.key, val: e.val, ver: e.ver, missing: e.missing})
		}
		delete(c.remote, key)
		f.e, f.err = e, err
		close(f.done)
		c.mu.Unlock()
		if hot {
			c.m.fitNode()
		}
		return e, err
	}
	req := getReq{Cache: c.id, Key: key, Min: max(min, c.appliedNow())}
	if g, ok := c.src.(guarded); ok {
		pf, err := g.proof(ctx)
		if err != nil {
			if errors.Is(err, ErrNotAuthorised) {
				c.refuse(err)
			}
			return finish(nil, err)
		}
		req.Proof = &pf
	}
	rctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	rep, err := getFn.At(c.m.cfg.Remote, owner).Call(rctx, req)
	cancel()
	if err != nil {
		if errors.Is(err, ErrNotAuthorised) {
			return finish(nil, fmt.Errorf("cache %s: owner %s refused: %w", c.id, owner, err))
		}
		c.m.log.Debug("cache owner did not serve", "cache", c.id, "owner", owner, "err", err)
		c.removePeer(owner)
		e, err := c.load(ctx, key, min)
		return finish(e, err)
	}
	c.st.remoteHits.Add(1)
	c.m.met.remoteHits.Inc()
	return finish(&entry{key: key, val: rep.Value, ver: rep.Version, missing: rep.Missing}, nil)
}

func (c *Cache) appliedNow() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

// Put writes key through to the source (a space or group source), then
// drops it here and on its owner, so that this node reads its own write
// at once. Other nodes see it within the bound.
func (c *Cache) Put(ctx context.Context, key string, value []byte) error {
	return c.write(ctx, key, value, false)
}

// Delete deletes key through to the source, as Put writes.
func (c *Cache) Delete(ctx context.Context, key string) error {
	return c.write(ctx, key, nil, true)
}

func (c *Cache) write(ctx context.Context, key string, value []byte, del bool) error {
	w, ok := c.src.(writer)
	if !ok {
		return fmt.Errorf("%w: the source of cache %s takes no writes", ErrBadRequest, c.id)
	}
	v, err := w.write(ctx, key, value, del)
	if err != nil {
		return fmt.Errorf("cache %s: write %q: %w", c.id, key, err)
	}
	c.mu.Lock()
	if len(c.wrote) > 4096 {
		clear(c.wrote)
	}
	c.wrote[key] = v
	c.mu.Unlock()
	c.changed(v, []string{key}, time.Time{})
	if owner := c.owner(key); owner != c.m.self {
		if _, err := invalFn.At(c.m.cfg.Remote, owner).Call(ctx, invalReq{Cache: c.id, Key: key, Version: v}); err != nil {
			// The version the next Get sends makes the owner load anew.
			c.m.log.Debug("telling the owner of a write", "cache", c.id, "owner", owner, "err", err)
		}
	}
	return nil
}

// Invalidate drops key on this node (for a Loader whose program knows of
// a change before its version says so).
func (c *Cache) Invalidate(key string) { c.changed(0, []string{key}, time.Time{}) }

// Stats returns what the cache holds and did on this node.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	s := Stats{Name: c.id, Entries: len(c.entries), Bytes: c.bytes.Load(), MaxBytes: c.opts.MaxBytes,
		Version: c.applied, Confirmed: c.confirmed, Bound: c.opts.Bound.String(), Strict: c.opts.Strict}
	for p := range c.peers {
		s.Peers = append(s.Peers, p)
	}
	c.mu.Unlock()
	s.Hits, s.RemoteHits, s.Misses, s.Loads = c.st.hits.Load(), c.st.remoteHits.Load(), c.st.misses.Load(), c.st.loads.Load()
	s.Invalidations, s.Evictions, s.StaleFills = c.st.invalidations.Load(), c.st.evictions.Load(), c.st.stale.Load()
	return s
}

// Peers are the other nodes this node knows use the cache.
func (c *Cache) Peers() []peer.ID { return c.Stats().Peers }

func (c *Cache) addPeer(p peer.ID) {
	if p == "" || p == c.m.self || c.opts.NoPeers {
		return
	}
	c.mu.Lock()
	c.peers[p] = true
	c.mu.Unlock()
}

func (c *Cache) removePeer(p peer.ID) {
	c.mu.Lock()
	delete(c.peers, p)
	c.mu.Unlock()
}

func (c *Cache) isRefused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused != nil
}

func (c *Cache) isPeer(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p == c.m.self || c.peers[p]
}

// Owner is the node that owns key among this node and the cache's peers
// it knows: the one a miss here asks.
func (c *Cache) Owner(key string) peer.ID { return c.owner(key) }

// owner is the key's owner among this node and its peers: the one whose
// hash with the key is highest (rendezvous hashing), so that a node that
// joins or leaves moves only its own share of the keys.
func (c *Cache) owner(key string) peer.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, bestScore := c.m.self, score(c.m.self, key)
	for p := range c.peers {
		if s := score(p, key); s > bestScore || (s == bestScore && p > best) {
			best, bestScore = p, s
		}
	}
	return best
}

func score(p peer.ID, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	var sep [8]byte
	binary.BigEndian.PutUint64(sep[:], uint64(len(p)))
	h.Write(sep[:])
	h.Write([]byte(key))
	// fnv's low bits mix poorly; a finaliser spreads them.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// greet says hello to the connected peers: those that use the cache
// answer, and both sides add each other.
func (c *Cache) greet(ctx context.Context) {
	peers := c.m.cfg.Host.Network().Peers()
	c.mu.Lock()
	for p := range c.peers {
		peers = append(peers, p)
	}
	c.mu.Unlock()
	if len(peers) > 256 {
		peers = peers[:256]
	}
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for p, r := range helloFn.OnAll(gctx, c.m.cfg.Remote, peers, helloMsg{Caches: []string{c.id}}) {
		if r.Err == nil && len(r.Value.Caches) > 0 && r.Value.Caches[0] == c.id {
			c.addPeer(p)
		}
	}
}

// regreet greets again every ten seconds, to find nodes that came and
// forget none.
func (c *Cache) regreet() {
	defer c.wg.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.greet(c.ctx)
		}
	}
}
