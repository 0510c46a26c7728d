package topic

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// durable is the layer's log side: a durable topic's log on its holders
// (a group), offsets, consumers and work queues.
type durable struct {
	m      *Manager
	db     *pebble.DB
	ctx    context.Context // ends at close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   []func()

	opening sync.Mutex // held while a log opens

	mu       sync.Mutex
	logs     map[string]*holderLog // topics this node holds, by topic ID
	routes   map[string]*route     // where this node sends a topic's calls
	outboxes map[string]*outbox    // publishes on their way, by topic
	callers  callers               // access.go
	closed   bool
}

// groupName is the name of a durable topic's group: a hash of its ID, as
// a topic's ID is longer than a group's name may be.
func groupName(topicID string) string {
	h := sha256.Sum256([]byte(topicID))
	return "topic." + hex.EncodeToString(h[:16])
}

// metaKey keeps, for each log this node holds, the topic's ID, so that the
// logs reopen when the node starts.
func metaKey(group string) []byte { return []byte("meta/" + group) }

// confKey keeps, for each log this node holds, the topic's config signed
// by its owner, once a caller brought it (or this node read it): a holder
// that restarts knows the retention before any call.
func confKey(group string) []byte { return []byte("conf/" + group) }

func newDurable(ctx context.Context, m *Manager) (*durable, error) {
	d := &durable{m: m, logs: map[string]*holderLog{}, routes: map[string]*route{}, outboxes: map[string]*outbox{}}
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, MemTableSize: 4 << 20,
		Cache: pebble.NewCache(8 << 20), Logger: quietPebble{}}
	// Most dedup lookups miss: a bloom filter answers them without
	// reading a block.
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	dir := ""
	if m.cfg.Dir != "" {
		dir = filepath.Join(m.cfg.Dir, "log")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("topic log dir: %w", err)
		}
	} else {
		o.FS = memFS()
	}
	db, err := pebble.Open(dir, o)
	o.Cache.Unref()
	if err != nil {
		return nil, fmt.Errorf("open topic logs: %w", err)
	}
	d.db = db
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if e := m.cfg.Endpoint; e != nil {
		d.stop = append(d.stop,
			remote.Handle(e, publishFn, d.servePublish),
			remote.Handle(e, readFn, d.serveRead),
			remote.Handle(e, fetchFn, d.serveFetch),
			remote.Handle(e, ackFn, d.serveAck),
			remote.Handle(e, infoFn, d.serveInfo),
			remote.Handle(e, wakeFn, d.serveWake),
			remote.Handle(e, dropFn, d.serveDrop),
			remote.Handle(e, moveFn, d.serveMove),
		)
	}
	// Reopen the logs this node held: a holder that restarts rejoins its
	// groups at once, not at the first call that names them.
	if m.cfg.Groups != nil {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("meta/"), UpperBound: []byte("meta0")})
		if err == nil {
			var ids []string
			for it.First(); it.Valid(); it.Next() {
				ids = append(ids, string(it.Value()))
			}
			it.Close()
			for _, id := range ids {
				if _, err := d.openLog(ctx, id, "", nil); err != nil {
					m.logger().Warn("reopen a topic's log", "topic", id, "err", err)
				}
			}
		}
	}
	return d, nil
}

func (m *Manager) logger() interface {
	Debug(string, ...any)
	Warn(string, ...any)
} {
	if m.cfg.Logger != nil {
		return m.cfg.Logger
	}
	return discardLog{}
}

type discardLog struct{}

func (discardLog) Debug(string, ...any) {}
func (discardLog) Warn(string, ...any)  {}

func (d *durable) close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	logs := make([]*holderLog, 0, len(d.logs))
	for _, l := range d.logs {
		logs = append(logs, l)
	}
	d.mu.Unlock()
	for _, s := range d.stop {
		s()
	}
	d.cancel()
	for _, l := range logs {
		l.close()
	}
	d.wg.Wait()
	return d.db.Close()
}

// holderLog is a durable topic's log on one of its holders: its group,
// its state machine and the batcher that gathers commands into entries.
type holderLog struct {
	d     *durable
	id    string
	name  string
	g     *group.Group
	log   *topicLog
	rmu   sync.Mutex
	cfg   config // the owner's signed config; zero until one is known
	reqs  chan *proposal
	casts chan []cast // stored messages on their way to live subscribers
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// proposal is a command waiting for its batch to commit.
type proposal struct {
	cmd  command
	size int
	out  chan proposalResult
}

type proposalResult struct {
	o   outcome
	err error
}

// appliers is how many batches a holder has under way at once: while one
// commits, the next gathers.
const appliers = 2

// openLog opens topic id's log on this node, a holder: join, if set, is a
// member to join the group through (a holder added by a migration).
func (d *durable) openLog(ctx context.Context, id, join string, hint []byte) (*holderLog, error) {
	// One open at a time: two would bind two machines, and the group
	// would apply to one while the other answered.
	d.opening.Lock()
	defer d.opening.Unlock()
	d.mu.Lock()
	if l := d.logs[id]; l != nil {
		d.mu.Unlock()
		l.hint(hint)
		return l, nil
	}
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return nil, ErrUnavailable
	}
	owner, name, err := SplitID(id)
	if err != nil {
		return nil, err
	}
	gname := groupName(id)
	tl, err := openLog(d.db, gname)
	if err != nil {
		return nil, err
	}
	var members []peer.ID
	sp, err := d.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return nil, err
	}
	t := &Topic{m: d.m, owner: owner, name: name, sp: sp}
	opts := group.Options{Machine: tl}
	if join != "" {
		p, err := peer.Decode(join)
		if err != nil {
			return nil, fmt.Errorf("%w: join %q", ErrBadName, join)
		}
		opts.Join = p
	}
	fresh := !slices.Contains(d.m.cfg.Groups.List(), gname)
	// The topic's config is in its space, which a holder may not read
	// (its user has no grant): then it is the one this node kept, or the
	// one a caller brings, if its owner signed it (openConfig).
	var cfg config
	if c, err := t.config(ctx); err == nil {
		cfg = c
	} else if v, closer, err := d.db.Get(confKey(gname)); err == nil {
		cfg, err = openConfig(id, v)
		closer.Close()
		if err != nil {
			cfg = config{}
		}
	}
	if cfg.raw == nil && hint != nil {
		if c, err := openConfig(id, hint); err == nil {
			cfg = c
		}
	}
	if cfg.raw != nil && !cfg.Retain.Durable() {
		return nil, fmt.Errorf("%w: %s", ErrNotDurable, id)
	}
	if fresh || join != "" {
		// Only a holder the topic's space names may form or join it.
		hs, err := t.logHolders(ctx)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(hs, d.m.cfg.Host.ID()) {
			return nil, fmt.Errorf("%w: %s does not hold %s", ErrUnavailable, d.m.cfg.Host.ID(), id)
		}
		// A node joins the log's group only through one of its holders:
		// a stranger that names itself would lead this node's log.
		if opts.Join != "" && !slices.Contains(hs, opts.Join) {
			return nil, fmt.Errorf("%w: join %s, not a holder of %s", ErrNotAuthorised, opts.Join, id)
		}
		members = hs
	}
	if opts.Join == "" {
		opts.Members = members
	}
	g, err := d.m.cfg.Groups.Open(ctx, gname, opts)
	if err != nil {
		return nil, fmt.Errorf("topic %s: open its log: %w", id, err)
	}
	if err := d.db.Set(metaKey(gname), []byte(id), pebble.Sync); err != nil {
		g.Close()
		return nil, err
	}
	if cfg.raw != nil {
		if err := d.db.Set(confKey(gname), cfg.raw, pebble.Sync); err != nil {
			g.Close()
			return nil, err
		}
	}
	l := &holderLog{d: d, id: id, name: gname, g: g, log: tl, cfg: cfg, reqs: make(chan *proposal, 1024), casts: make(chan []cast, castQueue), done: make(chan struct{})}
	d.mu.Lock()
	if o := d.logs[id]; o != nil || d.closed {
		d.mu.Unlock()
		if o != nil {
			return o, nil
		}
		return nil, ErrUnavailable
	}
	d.logs[id] = l
	d.mu.Unlock()
	for range appliers {
		l.wg.Add(1)
		go l.batcher()
	}
	l.wg.Add(1)
	go l.ager()
	l.wg.Add(1)
	go l.caster()
	if fresh && join == "" {
		// Wake the other holders, so that a majority forms the group.
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			wctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
			defer cancel()
			var others []peer.ID
			for _, p := range members {
				if p != d.m.cfg.Host.ID() {
					others = append(others, p)
				}
			}
			for p, r := range wakeFn.OnAll(wctx, d.m.cfg.Endpoint, others, wakeReq{Topic: id, Config: cfg.raw}) {
				if r.Err != nil {
					d.m.logger().Debug("wake a topic holder", "topic", id, "peer", p, "err", r.Err)
				}
			}
		}()
	}
	return l, nil
}

func (l *holderLog) close() {
	l.once.Do(func() {
		close(l.done)
		l.wg.Wait()
		l.g.Close()
	})
}

// logHolders are the members of a durable topic's log: the holders of
// its space, or its home alone for a local one.
func (t *Topic) logHolders(ctx context.Context) ([]peer.ID, error) {
	home, hs, err := t.holders(ctx)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 && home != "" {
		hs = []peer.ID{home}
	}
	slices.Sort(hs)
	return hs, nil
}

// hint takes the config a caller brings if the log has none and the
// topic's owner signed it; a topic's config never changes, so the first
// one that checks is the one.
func (l *holderLog) hint(raw []byte) {
	if raw == nil {
		return
	}
	l.rmu.Lock()
	known := l.cfg.raw != nil
	l.rmu.Unlock()
	if known {
		return
	}
	c, err := openConfig(l.id, raw)
	if err != nil || !c.Retain.Durable() {
		l.d.m.logger().Debug("a topic config that does not check", "topic", l.id, "err", err)
		return
	}
	l.rmu.Lock()
	if l.cfg.raw == nil {
		l.cfg = c
	}
	l.rmu.Unlock()
	if err := l.d.db.Set(confKey(l.name), c.raw, pebble.Sync); err != nil {
		l.d.m.logger().Warn("keep a topic's config", "topic", l.id, "err", err)
	}
}

// retention is the owner's retention; zero (keep all) until the log
// knows the config.
func (l *holderLog) retention() Retention {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.cfg.Retain
}

// config is the owner's signed config, nil until the log knows it.
func (l *holderLog) config() []byte {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.cfg.raw
}

func newProposal(c command) *proposal {
	return &proposal{cmd: c, size: len(c.Raw) + len(c.Key) + len(c.Consumer) + 8*len(c.Offsets) + 32, out: make(chan proposalResult, 1)}
}

// propose hands c to the batcher and waits for its outcome.
func (l *holderLog) propose(ctx context.Context, c command) (outcome, error) {
	p := newProposal(c)
	if err := l.send(ctx, p); err != nil {
		return outcome{}, err
	}
	return l.wait(ctx, p)
}

func (l *holderLog) send(ctx context.Context, p *proposal) error {
	select {
	case l.reqs <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return ErrUnavailable
	}
}

func (l *holderLog) wait(ctx context.Context, p *proposal) (outcome, error) {
	select {
	case r := <-p.out:
		return r.o, r.err
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
}

// batcher gathers the proposals waiting into one entry (group commit),
// applies it through raft and answers each.
func (l *holderLog) batcher() {
	defer l.wg.Done()
	for {
		var ps []*proposal
		select {
		case p := <-l.reqs:
			ps = append(ps, p)
		case <-l.done:
			return
		}
		size := ps[0].size
	gather:
		for size < maxBatch && len(ps) < maxCommands {
			select {
			case p := <-l.reqs:
				ps = append(ps, p)
				size += p.size
			default:
				break gather
			}
		}
		l.commit(ps)
	}
}

func (l *holderLog) commit(ps []*proposal) {
	bt := batch{Time: time.Now().UnixNano(), Retain: l.retention(), Cmds: make([]command, len(ps))}
	for i, p := range ps {
		bt.Cmds[i] = p.cmd
	}
	fail := func(err error) {
		for _, p := range ps {
			p.out <- proposalResult{err: err}
		}
	}
	b, err := wire.Marshal(bt)
	if err != nil {
		fail(err)
		return
	}
	if len(b) > maxCommandBytes {
		// Not the group's fault: say so, not "no majority".
		fail(fmt.Errorf("%w: a batch of %d bytes, over %d", ErrTooLarge, len(b), maxCommandBytes))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	out, err := l.g.Apply(ctx, b)
	cancel()
	if err != nil {
		fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
		return
	}
	var res batchResult
	if err := wire.Unmarshal(out, &res); err != nil || len(res.Out) != len(ps) {
		// A result lost to a restart's replay: the caller retries, and
		// the dedup key answers an append.
		fail(fmt.Errorf("%w: the batch's result was lost; retry", ErrUnavailable))
		return
	}
	for i, p := range ps {
		p.out <- proposalResult{o: res.Out[i]}
	}
	// Live subscribers get what was stored, from the caster: the next
	// batch need not wait for gossipsub.
	var cs []cast
	for i, p := range ps {
		if p.cmd.Op == opAppend && !res.Out[i].Dup {
			cs = append(cs, cast{off: res.Out[i].Offset, raw: p.cmd.Raw})
		}
	}
	if len(cs) > 0 {
		select {
		case l.casts <- cs:
		case <-l.done:
		}
	}
}

// listened reports whether a live subscriber may want the topic's
// messages: one on this node, or a peer that told gossipsub it
// subscribes (a subscriber reaches a holder only through such a peer).
func (l *holderLog) listened() bool {
	lv := l.d.m.live
	lv.mu.Lock()
	lt := lv.topics[l.id]
	lv.mu.Unlock()
	if lt == nil {
		return true // not joined yet: broadcast joins it
	}
	lt.mu.Lock()
	local := len(lt.subs)
	lt.mu.Unlock()
	return local > 0 || len(lt.pt.ListPeers()) > 0
}

// skipped counts n messages published to nobody in the topic's rates.
func (l *holderLog) skipped(n int) {
	lv := l.d.m.live
	lv.mu.Lock()
	lt := lv.topics[l.id]
	lv.mu.Unlock()
	if lt != nil {
		lt.published.Add(uint64(n))
	}
}

// cast is a stored message to broadcast.
type cast struct {
	off uint64
	raw []byte
}

// castQueue is how many batches wait for the caster; a batcher waits
// when it is full, so a slow gossipsub slows publishes, not memory.
const castQueue = 4

// caster hands stored messages to gossipsub.
func (l *holderLog) caster() {
	defer l.wg.Done()
	for {
		select {
		case cs := <-l.casts:
			if !l.listened() {
				// Nobody to hand them to: gossipsub would sign and
				// check each for nothing.
				l.skipped(len(cs))
				continue
			}
			for _, c := range cs {
				if err := l.d.m.broadcast(l.d.ctx, l.id, c.off, c.raw); err != nil {
					l.d.m.logger().Debug("broadcast a stored message", "topic", l.id, "err", err)
				}
			}
		case <-l.done:
			return
		}
	}
}

// ager applies the age retention while no publish comes.
func (l *holderLog) ager() {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.done:
			return
		}
		age := l.retention().Age
		if age <= 0 || l.g.Leader() != l.d.m.cfg.Host.ID() {
			continue
		}
		st := l.log.state()
		if st.First >= st.Next {
			continue
		}
		if t, ok := l.log.timeOf(st.First); ok && t < time.Now().Add(-age).UnixNano() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := l.propose(ctx, command{Op: opTrim}); err != nil {
				l.d.m.logger().Debug("trim a topic by age", "topic", l.id, "err", err)
			}
			cancel()
		}
	}
}

// waitApplied waits until cond holds of this holder's log.
func (l *holderLog) waitApplied(ctx context.Context, cond func(logState) bool) error {
	for {
		next := l.log.next()
		if cond(l.log.state()) {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return ErrUnavailable
		}
	}
}

// Why one publish of a call failed.
const (
	failBad = iota + 1
	failNotAuthorised
	failTooLarge
	failUnavailable
)

func failOf(err error) uint8 {
	switch {
	case errors.Is(err, ErrNotAuthorised):
		return failNotAuthorised
	case errors.Is(err, ErrTooLarge):
		return failTooLarge
	case errors.Is(err, ErrBadMessage):
		return failBad
	}
	return failUnavailable
}

func (a pubAck) err() error {
	s := []error{failBad: ErrBadMessage, failNotAuthorised: ErrNotAuthorised, failTooLarge: ErrTooLarge, failUnavailable: ErrUnavailable}
	if a.Fail == 0 {
		return nil
	}
	if int(a.Fail) < len(s) {
		return fmt.Errorf("%w: %s", s[a.Fail], a.Err)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, a.Err)
}

func (d *durable) servePublish(ctx context.Context, req pubReq) (pubReply, error) {
	if len(req.Msgs) > maxCommands {
		return pubReply{}, fmt.Errorf("%w: %d messages in one call", ErrBadMessage, len(req.Msgs))
	}
	l, ok := d.local(ctx, req.Topic, req.Config)
	if !ok {
		return pubReply{NotHolder: true}, nil
	}
	if l.config() == nil {
		// Stored without a retention it would be kept for ever: the
		// publisher brings the owner's config.
		return pubReply{}, fmt.Errorf("%w: a publish to %s without its owner's signed config", ErrBadMessage, req.Topic)
	}
	acks := make([]pubAck, len(req.Msgs))
	ps := make([]*proposal, len(req.Msgs))
	dupOK := make([]bool, len(req.Msgs))
	// Check the signatures on every core: it is most of a holder's work.
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(req.Msgs))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(req.Msgs); i += workers {
				it := req.Msgs[i]
				key, err := d.check(ctx, req.Topic, it)
				if err != nil {
					acks[i] = pubAck{Fail: failOf(err), Err: err.Error()}
					continue
				}
				dupOK[i] = key != ""
				ps[i] = newProposal(command{Op: opAppend, Raw: it.Raw, Key: key})
			}
		}()
	}
	wg.Wait()
	// All at once, so that they go in one batch.
	for i, p := range ps {
		if p == nil {
			continue
		}
		if err := l.send(ctx, p); err != nil {
			acks[i] = pubAck{Fail: failUnavailable, Err: err.Error()}
			ps[i] = nil
		}
	}
	for i, p := range ps {
		if p == nil {
			continue
		}
		o, err := l.wait(ctx, p)
		if err != nil {
			acks[i] = pubAck{Fail: failUnavailable, Err: err.Error()}
			continue
		}
		acks[i] = pubAck{Offset: o.Offset, Dup: o.Dup && dupOK[i]}
	}
	return pubReply{Acks: acks, Leader: l.g.Leader().String()}, nil
}

// check opens and authorises one publish and returns its dedup key.
func (d *durable) check(ctx context.Context, topicID string, it pubItem) (string, error) {
	r, err := openMessage(it.Raw)
	if err != nil {
		return "", err
	}
	if r.Topic != topicID {
		return "", fmt.Errorf("%w: a message of %s sent as %s's", ErrBadMessage, r.Topic, topicID)
	}
	if err := d.m.authorise(ctx, r); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotAuthorised, err)
	}
	if err := checkStoreTime(r, time.Now()); err != nil {
		return "", err
	}
	switch {
	case r.ID != "":
		return "u" + r.Publisher.String() + "/" + r.ID, nil
	case len(it.Nonce) > 64:
		return "", fmt.Errorf("%w: nonce of %d bytes", ErrBadMessage, len(it.Nonce))
	}
	return signedKey(r), nil
}

// signedKey is the dedup key of a publish without an ID: a hash of what
// its publisher signed, not a nonce the caller picks, so that anyone who
// replays a signed message (any reader of the log or of the gossip)
// finds it stored already.
func signedKey(r *record) string {
	h := sha256.New()
	h.Write([]byte(r.Publisher))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(r.Time))
	binary.BigEndian.PutUint64(b[8:], r.Epoch)
	h.Write(b[:])
	h.Write(r.Data)
	return "h" + hex.EncodeToString(h.Sum(nil)[:20])
}

// maxStoreAge is how far behind a holder's clock a durable publish may be
// stamped: the dedup window less the clock window ahead and some skew
// between holders, so that a replay of a message is either within the
// window, where its key is remembered, or refused.
const maxStoreAge = DedupWindow - maxFuture - 10*time.Second

// checkStoreTime refuses a publish stamped out of the window a holder
// stores.
func checkStoreTime(r *record, now time.Time) error {
	t := r.when()
	switch {
	case t.After(now.Add(maxFuture)):
		return fmt.Errorf("%w: stamped %v ahead of the holder's clock (more than %v)", ErrBadMessage, t.Sub(now).Round(time.Second), maxFuture)
	case t.Before(now.Add(-maxStoreAge)):
		return fmt.Errorf("%w: stamped %v ago (more than %v): a replay or a late message; publish it again", ErrBadMessage, now.Sub(t).Round(time.Second), maxStoreAge)
	}
	return nil
}

func (d *durable) serveRead(ctx context.Context, req readReq) (readReply, error) {
	l, ok := d.local(ctx, req.Topic, nil)
	if !ok {
		return readReply{NotHolder: true}, nil
	}
	if err := d.allow(ctx, req.Topic, req.Who); err != nil {
		return readReply{}, err
	}
	st := l.log.state()
	from := req.From
	switch req.Kind {
	case 0:
		if from == 0 {
			from = st.First // FromOffset(0): the first held
		}
	case 1:
		from = l.log.offsetAt(req.Time, &st)
	case 2:
		// The newest: what the group committed, which this holder may
		// not have applied yet.
		if err := l.g.Sync(ctx); err != nil {
			return readReply{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		from = l.log.state().Next
	}
	wait := min(time.Duration(req.Wait), maxWait)
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		l.waitApplied(wctx, func(s logState) bool { return s.Next > from || from < s.First })
		cancel()
	}
	n := req.Max
	if n <= 0 || n > maxRead {
		n = maxRead
	}
	msgs, st, err := l.log.read(from, n, maxReadBytes)
	if err != nil {
		return readReply{}, err
	}
	return readReply{Msgs: msgs, First: st.First, Next: st.Next, From: from}, nil
}

func (d *durable) serveFetch(ctx context.Context, req fetchReq) (fetchReply, error) {
	l, ok := d.local(ctx, req.Topic, req.Config)
	if !ok {
		return fetchReply{NotHolder: true}, nil
	}
	if err := d.allow(ctx, req.Topic, req.Who); err != nil {
		return fetchReply{}, err
	}
	if err := checkNames(req.Consumer, req.Worker); err != nil || req.Max <= 0 || req.AckWait < 0 {
		return fetchReply{}, fmt.Errorf("%w: consumer %q, worker %q, max %d, ack wait %d", ErrBadName, req.Consumer, req.Worker, req.Max, req.AckWait)
	}
	wait := min(time.Duration(req.Wait), maxWait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		next := l.log.next()
		// Ask the log only when it may have something: a consumer it does
		// not know, a message past the consumer's, or a deadline passed.
		c, known := l.log.consumer(req.Consumer)
		st := l.log.state()
		due := !known || c.Next < st.Next || c.Next < st.First
		for _, p := range c.Pending {
			if p.Deadline <= time.Now().UnixNano() {
				due = true
				break
			}
		}
		if due {
			o, err := l.propose(ctx, command{Op: opFetch, Consumer: req.Consumer, Worker: req.Worker, Max: min(req.Max, maxFetch),
				Wait: min(req.AckWait, maxAckWait), From: req.From, FromOff: req.FromOff, FromTime: req.FromTime})
			if err != nil {
				return fetchReply{}, err
			}
			if o.Err != "" {
				return fetchReply{}, fmt.Errorf("%w: %s", ErrBadName, o.Err)
			}
			if o.Lagged {
				return fetchReply{Lagged: true, Asked: o.Asked, First: o.First}, nil
			}
			if len(o.Offsets) > 0 {
				last := o.Offsets[len(o.Offsets)-1]
				if err := l.waitApplied(ctx, func(s logState) bool { return s.Next > last }); err != nil {
					return fetchReply{}, err
				}
				msgs, err := l.log.readOffsets(o.Offsets)
				return fetchReply{Msgs: msgs}, err
			}
		}
		select {
		case <-next:
		case <-time.After(100 * time.Millisecond): // a deadline may pass
		case <-wctx.Done():
			return fetchReply{}, nil
		}
	}
}

// checkNames checks a consumer's and a worker's names as the log bounds
// them, before a command is proposed.
func checkNames(consumer, worker string) error {
	if consumer == "" || len(consumer) > maxConsumerName || len(worker) > maxConsumerName ||
		!utf8.ValidString(consumer) || !utf8.ValidString(worker) {
		return ErrBadName
	}
	return nil
}

func (d *durable) serveAck(ctx context.Context, req ackReq) (ackReply, error) {
	l, ok := d.local(ctx, req.Topic, nil)
	if !ok {
		return ackReply{NotHolder: true}, nil
	}
	if err := d.allow(ctx, req.Topic, req.Who); err != nil {
		return ackReply{}, err
	}
	if err := checkNames(req.Consumer, req.Worker); err != nil || len(req.Offsets) > maxPending {
		return ackReply{}, fmt.Errorf("%w: ack of consumer %.64q, worker %.64q, %d offsets", ErrBadName, req.Consumer, req.Worker, len(req.Offsets))
	}
	c := command{Op: opAck, Consumer: req.Consumer, Worker: req.Worker, Offsets: req.Offsets}
	if req.Release {
		c.Op = opRelease
	}
	_, err := l.propose(ctx, c)
	return ackReply{}, err
}

func (d *durable) serveInfo(ctx context.Context, req infoReq) (infoReply, error) {
	l, ok := d.local(ctx, req.Topic, nil)
	if !ok {
		return infoReply{NotHolder: true}, nil
	}
	if err := d.allow(ctx, req.Topic, req.Who); err != nil {
		return infoReply{}, err
	}
	// What the group committed, which this holder may not have applied.
	if err := l.g.Sync(ctx); err != nil {
		return infoReply{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st := l.log.state()
	return infoReply{Leader: l.g.Leader().String(), First: st.First, Next: st.Next, Bytes: st.Bytes, Consumers: l.log.consumerInfos()}, nil
}

func (d *durable) serveWake(ctx context.Context, req wakeReq) (wakeReply, error) {
	l, err := d.openLog(ctx, req.Topic, req.Join, req.Config)
	if err != nil {
		return wakeReply{}, err
	}
	return wakeReply{Applied: l.log.state().Index}, nil
}

// serveDrop drops this node's copy of a log whose topic is deleted or
// that this node no longer holds.
func (d *durable) serveDrop(ctx context.Context, req dropReq) (dropReply, error) {
	owner, name, err := SplitID(req.Topic)
	if err != nil {
		return dropReply{}, err
	}
	sp, err := d.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return dropReply{}, err
	}
	t := &Topic{m: d.m, owner: owner, name: name, sp: sp}
	info, err := sp.Info(ctx)
	if err == nil && !info.Deleted {
		hs, err := t.logHolders(ctx)
		if err != nil {
			return dropReply{}, err
		}
		if slices.Contains(hs, d.m.cfg.Host.ID()) {
			return dropReply{}, fmt.Errorf("%w: %s still holds %s", ErrNotAuthorised, d.m.cfg.Host.ID(), req.Topic)
		}
	}
	return dropReply{}, d.dropLocal(req.Topic)
}

func (d *durable) dropLocal(id string) error {
	d.mu.Lock()
	l := d.logs[id]
	delete(d.logs, id)
	d.mu.Unlock()
	if l != nil {
		l.close()
	}
	gname := groupName(id)
	tl := &topicLog{db: d.db, prefix: append([]byte("t/"+gname), 0)}
	err := errors.Join(d.m.cfg.Groups.Drop(gname), tl.drop(), d.db.Delete(metaKey(gname), pebble.Sync))
	return err
}

// fill adds a durable topic's leader, offsets, bytes and consumers to info.
func (d *durable) fill(ctx context.Context, t *Topic, cfg config, info *Info) error {
	if !cfg.Retain.Durable() {
		return nil
	}
	who, err := d.who(ctx, t)
	if err != nil {
		return err
	}
	rep, err := call(ctx, d, t, func(ctx context.Context, p peer.ID) (infoReply, bool, error) {
		rep, err := infoFn.At(d.m.cfg.Endpoint, p).Call(ctx, infoReq{Topic: t.ID(), Who: who})
		return rep, rep.NotHolder, err
	})
	if err != nil {
		return fmt.Errorf("topic %s: info: %w", t.ID(), err)
	}
	if p, err := peer.Decode(rep.Leader); err == nil {
		info.Leader = p
	}
	info.First, info.Next, info.Bytes, info.Consumers = rep.First, rep.Next, rep.Bytes, rep.Consumers
	return nil
}

// drop deletes a durable topic's log on this node and on its holders (the
// topic is deleted).
func (d *durable) drop(ctx context.Context, t *Topic) error {
	hs, _ := t.logHolders(ctx)
	var errs []error
	for p, r := range dropFn.OnAll(ctx, d.m.cfg.Endpoint, slices.DeleteFunc(hs, func(p peer.ID) bool { return p == d.m.cfg.Host.ID() }), dropReq{Topic: t.ID()}) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("drop on %s: %w", p, r.Err))
		}
	}
	errs = append(errs, d.dropLocal(t.ID()))
	return errors.Join(errs...)
}
