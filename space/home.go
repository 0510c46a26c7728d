package space

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/atomicfile"
)

// owned is a space this node is home of. Its mutex serialises every
// change to the space, so two writes never both build on one root.
type owned struct {
	m    *Manager
	name string
	id   string

	mu      sync.Mutex
	keys    keyring
	head    *head
	signed  signed
	size    int                   // of signed, encoded
	grants  map[string]*Grant     // filed grants, by ID
	rate    *limiter              // filings under each delegate
	down    map[peer.ID]time.Time // holders unreachable since
	joining map[peer.ID]bool      // holders still copying: writes do not wait for them
	nonces  map[string]time.Time  // changes applied recently, against replays
	paid    map[peer.ID]time.Time // holders paid up to, or holding since
	chain   []signed              // the delegation this node signs heads under, if it holds no user key
	keyBox  []byte                // the keys wrapped to this node's key, kept with a delegation
	gone    peer.ID               // the node the home was handed to: this node signs no more heads
	pending *takeHomeReq          // a handover whose answer was lost, offered again (retryHandover)

	wmu      sync.Mutex
	watchers map[chan signed]struct{}
	recent   []signed // the last heads, for watchers catching up
}

const (
	recentHeads = 256
	recentBytes = 16 << 20
	// changeWindow is how far a change's time may be from the home's
	// clock; nonces are remembered for twice as long.
	changeWindow = 10 * time.Minute
)

// holdPinPrefix names the pins of the spaces a node keeps: the home's
// and each holder's, so GC never takes them and Holdings finds them.
const holdPinPrefix = "space "

// newOwned makes the state of a space this node is home of, with no
// head yet.
func (m *Manager) newOwned(name string, keys keyring) *owned {
	return &owned{m: m, name: name, id: m.user.String() + "/" + name, keys: keys,
		grants: map[string]*Grant{}, rate: newLimiter(GrantBurst, GrantEvery),
		down: map[peer.ID]time.Time{}, joining: map[peer.ID]bool{}, paid: map[peer.ID]time.Time{},
		watchers: map[chan signed]struct{}{}, nonces: map[string]time.Time{}}
}

// handedOver says the home was handed to another node (or may have
// been): this node signs no more heads of the space.
func (o *owned) handedOver() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gone != ""
}

func (o *owned) current() (*head, signed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.head, o.signed
}

func (o *owned) create(ctx context.Context, policy Policy) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.m
	unlock := m.cfg.Content.Store().PinLock(ctx)
	root, err := emptyRoot(ctx, m.local, o.id)
	if err == nil {
		err = m.cfg.Content.Store().Pin(ctx, root, holdPinPrefix+o.id)
	}
	unlock()
	if err != nil {
		return fmt.Errorf("create %s: %w", o.id, err)
	}
	h := &head{Owner: m.user, Name: o.name, Root: root.Bytes(), Home: m.self, Policy: Policy{Local: true, Public: policy.Public}}
	if _, err := o.commitLocked(ctx, h, nil); err != nil {
		return err
	}
	if policy.Local {
		return nil
	}
	o.mu.Unlock()
	err = o.move(ctx, policy, nil, nil)
	o.mu.Lock()
	return err
}

// next returns a copy of the current head to change into the next one.
func (o *owned) next() *head {
	h := *o.head
	h.Holders = slices.Clone(h.Holders)
	h.Keys = slices.Clone(h.Keys)
	h.Revoked = slices.Clone(h.Revoked)
	h.Delegates = slices.Clone(h.Delegates)
	h.Removed = slices.Clone(h.Removed)
	h.Changes = nil
	return &h
}

// commitLocked signs h as the next head and, if it fits (signLocked),
// installs it. o.mu is held.
func (o *owned) commitLocked(ctx context.Context, h *head, blocks []block) (signed, error) {
	s, err := o.signLocked(h, o.keys)
	if err != nil {
		return signed{}, err
	}
	return s, o.installLocked(ctx, h, s, blocks, nil)
}

// signLocked numbers h as the head after the current one, under keys,
// and signs it. A head whose encoding is over MaxHeadSize is refused
// with ErrHeadTooLarge before anything changes: every other node would
// drop it, and the home could not load it again. Whoever changes the
// readers or the keys wraps them first (wrapAll); the first head gets
// them here. o.mu is held.
func (o *owned) signLocked(h *head, keys keyring) (signed, error) {
	if o.gone != "" {
		return signed{}, fmt.Errorf("%w: the home of %s moved to %s", ErrNotHome, o.id, o.gone)
	}
	key, chain, err := o.headSigner()
	if err != nil {
		return signed{}, err
	}
	h.Chain = chain
	// The nodes once handed the home that the user has removed since: the
	// head says so, and readers refuse heads signed under their links.
	for _, d := range h.Delegates {
		if !slices.Contains(h.Removed, d) && o.m.refused(d) != nil {
			h.Removed = append(h.Removed, d)
		}
	}
	if o.head != nil {
		h.Seq = o.head.Seq + 1
	} else {
		h.Seq = 1
	}
	h.Time = time.Now().UnixNano()
	h.Epoch = keys.epoch()
	if o.head == nil {
		if err := o.wrapAll(h, keys, o.grants); err != nil {
			return signed{}, err
		}
	}
	s, err := sign(key, headDomain, h)
	if err != nil {
		return signed{}, err
	}
	if n := encodedSize(s); n > MaxHeadSize {
		return signed{}, fmt.Errorf("%w: the next head of %s would be %d bytes, over the limit of %d (%d readers at key epoch %d); revoke grants to make room",
			ErrHeadTooLarge, o.id, n, MaxHeadSize, len(h.Keys), h.Epoch)
	}
	return s, nil
}

// installLocked makes the signed head h the space's (with grants, if not
// nil, as its filed grants), keeps it, tells watchers and pushes it to
// the holders that are not still copying, with blocks the write made.
// o.mu is held.
func (o *owned) installLocked(ctx context.Context, h *head, s signed, blocks []block, grants map[string]*Grant) error {
	if grants == nil {
		grants = o.grants
	}
	if err := o.saveLocked(s, grants); err != nil {
		return err
	}
	o.head, o.signed, o.size, o.grants = h, s, encodedSize(s), grants
	o.publish(s)
	if b, err := marshal(s); err == nil {
		o.m.storeHead(o.id, b)
	}
	var targets []peer.ID
	for _, p := range h.Holders {
		if !o.joining[p] {
			targets = append(targets, p)
		}
	}
	o.pushAll(ctx, targets, s, blocks)
	return nil
}

// encodedSize is the size of a signed head as nodes send and store it.
func encodedSize(s signed) int {
	b, err := marshal(s)
	if err != nil {
		return math.MaxInt
	}
	return len(b)
}

func (o *owned) saveLocked(s signed, grants map[string]*Grant) error {
	p := o.m.path(ownedDir, fileName(o.id))
	if p == "" {
		return nil
	}
	hb, err := marshal(s)
	if err != nil {
		return err
	}
	of := ownedFile{Head: hb, Chain: o.chain}
	if len(o.chain) > 0 {
		of.Keys = o.keyBox
	}
	for _, g := range grants {
		of.Grants = append(of.Grants, g.links)
	}
	b, err := marshal(of)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, b, 0o600)
}

// pushAll gives each holder the head, in parallel, and waits for them
// within a bound: a holder that is down only delays the write by that
// bound, and the repair loop catches it up later.
func (o *owned) pushAll(ctx context.Context, holders []peer.ID, s signed, blocks []block) {
	if len(holders) == 0 {
		return
	}
	hb, _ := marshal(s)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range holders {
		wg.Go(func() {
			if _, err := o.m.push(ctx, p, hb, blocks, nil); err != nil {
				o.m.log.Debug("push failed", "space", o.id, "peer", p, "err", err)
			}
		})
	}
	wg.Wait()
}

// push gives p a head and waits until it holds it (or let go).
func (m *Manager) push(ctx context.Context, p peer.ID, hb []byte, blocks []block, progress func(content.FetchProgress)) (pushReply, error) {
	var last pushReply
	for r, err := range pushFn.At(m.cfg.Remote, p).Call(network.WithAllowLimitedConn(ctx, "space"), pushReq{Head: hb, Blocks: blocks}) {
		if err != nil {
			return last, err
		}
		if r.Progress != nil && progress != nil {
			progress(*r.Progress)
		}
		if r.Done {
			return r, nil
		}
		last = r
	}
	return last, errors.New("holder ended the push without an answer")
}

// publish hands a new head to the watchers.
func (o *owned) publish(s signed) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	o.recent = append(o.recent, s)
	size := 0
	for i := len(o.recent) - 1; i >= 0; i-- {
		size += len(o.recent[i].Body)
		if len(o.recent)-i > recentHeads || size > recentBytes {
			o.recent = o.recent[i+1:]
			break
		}
	}
	for ch := range o.watchers {
		select {
		case ch <- s:
		default: // a watcher that fell behind catches up from recent
		}
	}
}

func (o *owned) closeWatchers() {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	for ch := range o.watchers {
		close(ch)
		delete(o.watchers, ch)
	}
}

// apply carries out one change: put (entry not undef) or delete of tag,
// with the blocks the writer brought. The entry's blocks must be in the
// store or among blocks. prefix, a loan's, is what the key must start
// with; writer is who the entry must name as its writer. It reads what
// the rules look at, has planWrite decide, and commits the plan
// (write.go).
func (o *owned) apply(ctx context.Context, op Op, tag string, entry cid.Cid, blocks []block, prefix, writer string) (signed, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := writeState{space: o.id, deleted: o.head.Deleted, count: o.head.Count, bytes: o.head.Bytes,
		epoch: o.keys.epoch(), maxValue: uint64(o.m.cfg.MaxValue), public: o.head.Policy.Public}
	w := writeReq{op: op, tag: tag, entry: entry, prefix: prefix, writer: writer}
	var t *writeTree
	// A deleted space's tree may be gone; the rules refuse the write
	// before they look at it.
	if !st.deleted {
		unlock := o.m.cfg.Content.Store().PinLock(ctx)
		defer unlock()
		var err error
		if t, err = openWrite(ctx, o.m.local, o.id, o.keys, o.head, blocks); err != nil {
			return signed{}, err
		}
		st.old = t.current(ctx, tag)
		if op == OpPut {
			t.read(ctx, &w)
		}
	}
	p, err := planWrite(st, w)
	if err != nil {
		return signed{}, err
	}
	return o.commitWrite(ctx, t, p)
}

// commitWrite carries out p on the tree t it was planned on: it edits
// the tree, signs the next head, stores the blocks the new root reaches,
// moves the pin to it and installs the head (kept, published, pushed).
// o.mu and the store's pin lock are held.
func (o *owned) commitWrite(ctx context.Context, t *writeTree, p writePlan) (signed, error) {
	m := o.m
	if p.entry.Defined() {
		en, err := t.made.Get(ctx, p.entry)
		if err != nil {
			return signed{}, fmt.Errorf("entry %s: %w", p.entry, err)
		}
		if err := t.sh.Set(ctx, p.tag, en); err != nil {
			return signed{}, err
		}
	} else if err := t.sh.Remove(ctx, p.tag); err != nil {
		return signed{}, err
	}
	nr, err := writeRoot(ctx, t.made, o.id, t.sh)
	if err != nil {
		return signed{}, err
	}
	h := o.next()
	h.Root = nr.Bytes()
	h.Count, h.Bytes = p.count, p.bytes
	dk, _ := o.keys.data(o.keys.epoch())
	h.Changes = []headChange{{Op: p.op, Tag: p.tag, Name: sealSmall(dk, metaAD(o.id, p.tag), []byte(p.name))}}
	// The head is signed (and its size checked) before anything is
	// stored: a write refused here leaves the store and the pin as they
	// were.
	s, err := o.signLocked(h, o.keys)
	if err != nil {
		return signed{}, err
	}
	// Everything new goes to the store in one batch, then the new root is
	// pinned and the old one let go, under the pin lock: GC never sees
	// the new blocks unpinned. Blocks a writer sent that the new version
	// does not reach are dropped.
	var nodes []ipld.Node
	out := reachable(ctx, t.made, nr)
	for _, b := range out {
		blk, _ := checkedBlock(b.CID, b.Data)
		if n, err := decodeBlock(blk); err == nil {
			nodes = append(nodes, n)
		}
	}
	if err := m.local.AddMany(ctx, nodes); err != nil {
		return signed{}, fmt.Errorf("store blocks: %w", err)
	}
	if err := m.cfg.Content.Store().Repin(ctx, t.root, nr, holdPinPrefix+o.id); err != nil {
		return signed{}, err
	}
	// Small values travel with the head; large ones the holders fetch.
	if total(out) > inlineValue {
		out = treeOnly(out)
	}
	return s, o.installLocked(ctx, h, s, out, nil)
}

// reachable returns the blocks of d that root reaches, following only
// blocks d holds in memory (what this write made or brought).
func reachable(ctx context.Context, d *memDAG, root cid.Cid) []block {
	var out []block
	seen := map[cid.Cid]bool{}
	var visit func(c cid.Cid)
	visit = func(c cid.Cid) {
		if seen[c] || !d.has(c) {
			return
		}
		seen[c] = true
		n, err := d.Get(ctx, c)
		if err != nil {
			return
		}
		out = append(out, block{CID: c.Bytes(), Data: n.RawData()})
		for _, l := range n.Links() {
			visit(l.Cid)
		}
	}
	visit(root)
	return out
}

func total(bs []block) int {
	n := 0
	for _, b := range bs {
		n += len(b.Data)
	}
	return n
}

// treeOnly keeps the dag-pb blocks (root, tree, entries) and drops raw
// value leaves.
func treeOnly(bs []block) []block {
	var out []block
	for _, b := range bs {
		if c, err := cid.Cast(b.CID); err == nil && c.Prefix().Codec == cid.DagProtobuf {
			out = append(out, b)
		}
	}
	return out
}

// checkChange decides whether the home applies a change from another node:
// one its owner signed, or a grantee under its grant, or a runner node
// under a loan (checkLoanChange), which it returns. The loan's prefix is
// left to planWrite, which reads the key's name.
func (o *owned) checkChange(c *change, body *changeBody) (*Loan, error) {
	if body.Space != o.id {
		return nil, fmt.Errorf("%w: change for %s sent to the home of %s", ErrBadChange, body.Space, o.id)
	}
	now := time.Now()
	if d := now.Sub(time.Unix(0, body.Time)); d > changeWindow || d < -changeWindow {
		return nil, fmt.Errorf("%w: change made %v from the home's time", ErrStale, d.Round(time.Second))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for n, t := range o.nonces {
		if now.Sub(t) > 2*changeWindow {
			delete(o.nonces, n)
		}
	}
	if _, dup := o.nonces[string(body.Nonce)]; dup {
		return nil, fmt.Errorf("%w: this change was applied already (a replay)", ErrStale)
	}
	var l *Loan
	if len(c.Loan) > 0 {
		var err error
		l, err = decodeLoan(c.Loan)
		if err != nil {
			return nil, err
		}
		if len(c.Grant) > 0 {
			return nil, fmt.Errorf("%w: a change carries a grant or a loan, not both", ErrBadChange)
		}
		if err := checkLoanChange(l, body, now, o.head.Revoked); err != nil {
			return nil, err
		}
	} else if body.Writer != o.m.user {
		g, err := grantOf(c.Grant)
		if err != nil {
			return nil, err
		}
		if g.To() != body.Writer {
			return nil, fmt.Errorf("%w: the grant is for %s, not the writer %s", ErrNotAuthorised, g.To(), body.Writer)
		}
		if err := g.check(o.id, Write, now, o.head.Revoked); err != nil {
			return nil, err
		}
	}
	o.nonces[string(body.Nonce)] = now
	return l, nil
}

// MigrateProgress reports how a migration goes.
type MigrateProgress struct {
	Holder peer.ID `json:"holder"`
	Blocks int     `json:"blocks"`
	Bytes  int64   `json:"bytes"`
	Total  int64   `json:"total"` // bytes of the space, sealed, about
	Done   bool    `json:"done"`  // this holder has it all
}

// move places the space as policy says: it picks the holders, publishes a
// head naming the old and the new, copies the space onto the new ones
// (writes go on meanwhile and reach them too), then publishes a head
// naming only the new and lets the old ones go. drop names current holders
// that may not stay (repair drops the dead); progress, if set, hears how
// each new holder's copy goes.
func (o *owned) move(ctx context.Context, policy Policy, drop []peer.ID, progress func(MigrateProgress)) error {
	if err := policy.Validate(); err != nil {
		return err
	}
	m := o.m
	o.mu.Lock()
	cur := o.head
	policy.Public = cur.Policy.Public // set at create, for good
	var keep []peer.ID
	for _, p := range cur.Holders {
		if !slices.Contains(drop, p) && (slices.Contains(policy.On, p) || !policy.Local) && m.refused(p) == nil {
			keep = append(keep, p)
		}
	}
	want, err := m.pick(policy, keep, drop)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	var adding []peer.ID
	for _, p := range want {
		if !cur.holds(p) {
			adding = append(adding, p)
			o.joining[p] = true
		}
	}
	// The policy is recorded only once the copy is done: a migration that
	// fails leaves the space placed as it was.
	h := o.next()
	h.Holders = append(h.Holders, adding...)
	_, err = o.commitLocked(ctx, h, nil)
	total := int64(sealedSize(cur.Bytes))
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		for _, p := range adding {
			delete(o.joining, p)
		}
		o.mu.Unlock()
	}()
	if err != nil {
		return err
	}
	// Copy onto each new holder, all at once, then give each the newest
	// head, so what was written during the copy reaches it too.
	var wg sync.WaitGroup
	errs := make([]error, len(adding))
	for i, p := range adding {
		wg.Go(func() {
			_, s := o.current()
			hb, _ := marshal(s)
			r, err := m.push(ctx, p, hb, nil, func(fp content.FetchProgress) {
				if progress != nil {
					progress(MigrateProgress{Holder: p, Blocks: fp.Blocks, Bytes: fp.Bytes, Total: total})
				}
			})
			if err == nil && r.Released {
				err = errors.New("it refused to hold the space")
			}
			if err != nil {
				errs[i] = fmt.Errorf("copy to %s: %w", p, err)
				return
			}
			o.mu.Lock()
			delete(o.joining, p)
			s = o.signed
			o.mu.Unlock()
			hb, _ = marshal(s)
			if _, err := m.push(ctx, p, hb, nil, nil); err != nil {
				errs[i] = fmt.Errorf("catch up %s: %w", p, err)
				return
			}
			if progress != nil {
				progress(MigrateProgress{Holder: p, Bytes: total, Total: total, Done: true})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// The old holders still hold everything. A migration drops every
		// new one from the head, so the space is placed as before, and
		// tells those that copied to let go; a repair (drop) keeps those
		// that copied, which replace the dead. Then report.
		var release []peer.ID
		for i, p := range adding {
			if errs[i] == nil && len(drop) == 0 {
				release = append(release, p)
			}
		}
		o.mu.Lock()
		h := o.next()
		h.Holders = slices.DeleteFunc(h.Holders, func(p peer.ID) bool {
			i := slices.Index(adding, p)
			return i >= 0 && (errs[i] != nil || len(drop) == 0)
		})
		s, cerr := o.commitLocked(ctx, h, nil)
		o.mu.Unlock()
		if cerr == nil {
			o.pushAll(ctx, release, s, nil)
		}
		return fmt.Errorf("migrate %s: %w", o.id, errors.Join(err, cerr))
	}
	// The new holders have it all: name only them, and tell the old.
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.head.Holders
	h = o.next()
	h.Policy = policy
	h.Holders = want
	s, err := o.commitLocked(ctx, h, nil)
	if err != nil {
		return err
	}
	var leaving []peer.ID
	for _, p := range old {
		if !slices.Contains(want, p) {
			leaving = append(leaving, p)
			delete(o.down, p)
		}
	}
	o.pushAll(ctx, leaving, s, nil)
	return nil
}

// pick chooses the holders a policy wants: those it names, those kept,
// then connected peers, nearest first, never this node or the excluded.
func (m *Manager) pick(policy Policy, keep, exclude []peer.ID) ([]peer.ID, error) {
	if policy.Local {
		return nil, nil
	}
	want := slices.Clone(policy.On)
	for _, p := range want {
		if p == m.self {
			return nil, fmt.Errorf("%w: the home keeps a copy already; name other nodes", ErrBadPolicy)
		}
		if err := m.refused(p); err != nil {
			return nil, err
		}
	}
	add := func(p peer.ID) {
		if len(want) < policy.copies() && p != m.self && !slices.Contains(want, p) && !slices.Contains(exclude, p) && m.refused(p) == nil {
			want = append(want, p)
		}
	}
	for _, p := range keep {
		add(p)
	}
	peers := m.cfg.Host.Network().Peers()
	ps := m.cfg.Host.Peerstore()
	sort.Slice(peers, func(i, j int) bool {
		li, lj := ps.LatencyEWMA(peers[i]), ps.LatencyEWMA(peers[j])
		if li != lj {
			return li < lj
		}
		return peers[i] < peers[j]
	})
	for _, p := range peers {
		add(p)
	}
	if len(want) < policy.copies() {
		return nil, fmt.Errorf("%w: %d holders wanted, only %d nodes are connected to hold the space", ErrBadPolicy, policy.copies(), len(want))
	}
	return want, nil
}

// refused says why node may not hold this user's spaces, if it may not.
func (m *Manager) refused(node peer.ID) error {
	if m.cfg.Holder == nil {
		return nil
	}
	if err := m.cfg.Holder(node); err != nil {
		return fmt.Errorf("%w: %s may not hold this user's spaces: %w", ErrNotOffered, node, err)
	}
	return nil
}

// check is one round of the repair loop: it asks each holder what it
// holds, catches up those behind, and replaces those gone for longer than
// the grace period. It also rotates the keys when a reader's grant has
// expired, so that reader reads nothing written after.
func (o *owned) check(ctx context.Context) {
	m := o.m
	o.retryHandover(ctx)
	if o.handedOver() {
		return
	}
	if h, _ := o.current(); h.Deleted {
		return
	}
	o.expireGrants(ctx)
	o.mu.Lock()
	h, s := o.head, o.signed
	oversized := o.oversizedLocked()
	o.mu.Unlock()
	if oversized != nil {
		return // no holder would take the head
	}
	hb, _ := marshal(s)
	var dead, failed []peer.ID
	for _, p := range h.Holders {
		o.mu.Lock()
		joining := o.joining[p]
		o.mu.Unlock()
		if joining {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := headFn.At(m.cfg.Remote, p).Call(network.WithAllowLimitedConn(cctx, "space"), headReq{Space: o.id})
		cancel()
		var seq uint64
		if err == nil {
			if hh, _, err := decodeHead(r.Head, o.id); err == nil {
				seq = hh.Seq
			}
		}
		o.mu.Lock()
		if err != nil {
			if _, ok := o.down[p]; !ok {
				o.down[p] = time.Now()
			}
			if time.Since(o.down[p]) >= m.cfg.RepairGrace && !slices.Contains(h.Policy.On, p) {
				dead = append(dead, p)
			}
			o.mu.Unlock()
			continue
		}
		delete(o.down, p)
		o.mu.Unlock()
		if seq < h.Seq {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, err := m.push(pctx, p, hb, nil, nil); err != nil {
				m.log.Debug("catching a holder up failed", "space", o.id, "peer", p, "err", err)
			}
			cancel()
		}
		if !o.audit(ctx, p, h) {
			failed = append(failed, p)
		}
	}
	dead = append(dead, failedHolders(failed, h.Policy)...)
	if len(dead) > 0 {
		m.log.Info("replacing holders gone past the grace period", "space", o.id, "holders", dead)
		if err := o.move(ctx, h.Policy, dead, nil); err != nil {
			m.log.Warn("repair failed", "space", o.id, "err", err)
		}
	}
}

// follow sends send every head after since, as the home makes them,
// until ctx ends, the node closes (errClosing) or send fails. The watch
// channel only says there is news; the heads come from the recent ones,
// so a follower that fell behind misses none.
func (o *owned) follow(ctx context.Context, since uint64, send func(signed) error) error {
	ch, todo := o.watch(since)
	defer o.unwatch(ch)
	last := since
	for {
		for _, s := range todo {
			if err := send(s); err != nil {
				return err
			}
			last = seqOf(s)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-ch:
			if !ok {
				return errClosing
			}
			todo = o.since(last)
		}
	}
}

// watch registers a watcher and returns the heads since seq it missed.
func (o *owned) watch(since uint64) (chan signed, []signed) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	ch := make(chan signed, 1)
	o.watchers[ch] = struct{}{}
	return ch, o.sinceLocked(since)
}

// since returns the recent heads newer than seq, oldest first.
func (o *owned) since(seq uint64) []signed {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	return o.sinceLocked(seq)
}

func (o *owned) sinceLocked(seq uint64) []signed {
	var out []signed
	for _, s := range o.recent {
		if seqOf(s) > seq {
			out = append(out, s)
		}
	}
	return out
}

// seqOf is the sequence number of a head this node signed or checked.
func seqOf(s signed) uint64 {
	var h head
	if unmarshal(s.Body, &h) != nil {
		return 0
	}
	return h.Seq
}

func (o *owned) unwatch(ch chan signed) {
	o.wmu.Lock()
	defer o.wmu.Unlock()
	if _, ok := o.watchers[ch]; ok {
		delete(o.watchers, ch)
		close(ch)
	}
}

// remove ends the space: a last head marked deleted, holders let go.
func (o *owned) remove(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	h := o.next()
	old := h.Holders
	h.Holders = nil
	h.Deleted = true
	s, err := o.commitLocked(ctx, h, nil)
	if err != nil {
		return err
	}
	o.pushAll(ctx, old, s, nil)
	if r, err := o.head.root(); err == nil {
		o.m.cfg.Content.Store().Unpin(ctx, r)
	}
	return nil
}
