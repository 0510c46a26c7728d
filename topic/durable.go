package topic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/nubecloud/nube/space"
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
	closed   bool
}

// authoriseHook, if set, replaces Manager.authorise on a holder. TESTS
// ONLY, until the live part's authorise is wired: the integrator removes
// it.
var authoriseHook func(ctx context.Context, m *Manager, r *record) error

// groupName is the name of a durable topic's group: a hash of its ID, as
// a topic's ID is longer than a group's name may be.
func groupName(topicID string) string {
	h := sha256.Sum256([]byte(topicID))
	return "topic." + hex.EncodeToString(h[:16])
}

// metaKey keeps, for each log this node holds, the topic's ID, so that the
// logs reopen when the node starts.
func metaKey(group string) []byte { return []byte("meta/" + group) }

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
				if _, err := d.openLog(ctx, id, "", Retention{}); err != nil {
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
	d      *durable
	id     string
	name   string
	g      *group.Group
	log    *topicLog
	rmu    sync.Mutex
	retain Retention // as the topic's config says, or a caller's hint
	reqs   chan *proposal
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
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
const appliers = 4

// openLog opens topic id's log on this node, a holder: join, if set, is a
// member to join the group through (a holder added by a migration).
func (d *durable) openLog(ctx context.Context, id, join string, hint Retention) (*holderLog, error) {
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
	var retain Retention
	var members []peer.ID
	opts := group.Options{Machine: tl}
	if join != "" {
		p, err := peer.Decode(join)
		if err != nil {
			return nil, fmt.Errorf("%w: join %q", ErrBadName, join)
		}
		opts.Join = p
	}
	sp, err := d.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return nil, err
	}
	t := &Topic{m: d.m, owner: owner, name: name, sp: sp}
	fresh := !slices.Contains(d.m.cfg.Groups.List(), gname)
	// The topic's config is in its space, which a holder may not read
	// (its user has no grant): then the retention comes from the caller,
	// who could.
	retain = hint
	if cfg, err := t.config(ctx); err == nil {
		if !cfg.Retain.Durable() {
			return nil, fmt.Errorf("%w: %s", ErrNotDurable, id)
		}
		retain = cfg.Retain
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
	l := &holderLog{d: d, id: id, name: gname, g: g, log: tl, retain: retain, reqs: make(chan *proposal, 1024), done: make(chan struct{})}
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
			for p, r := range wakeFn.OnAll(wctx, d.m.cfg.Endpoint, others, wakeReq{Topic: id, Retain: retain}) {
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

// hint takes a caller's retention if the log has none.
func (l *holderLog) hint(r Retention) {
	l.rmu.Lock()
	if !l.retain.Durable() && r.Durable() && r.Count >= 0 && r.Bytes >= 0 && r.Age >= 0 {
		l.retain = r
	}
	l.rmu.Unlock()
}

func (l *holderLog) retention() Retention {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.retain
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
	// Live subscribers get what was stored.
	for i, p := range ps {
		if p.cmd.Op == opAppend && !res.Out[i].Dup {
			if err := l.d.m.broadcast(l.d.ctx, l.id, res.Out[i].Offset, p.cmd.Raw); err != nil {
				l.d.m.logger().Debug("broadcast a stored message", "topic", l.id, "err", err)
			}
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

// The calls between publishers, subscribers and holders.
type (
	// pubReq carries the publishes a node has under way to one topic
	// at once: one call, and one batch on the holder.
	pubReq struct {
		Topic string    `cbor:"1,keyasint"`
		Msgs  []pubItem `cbor:"2,keyasint"`
		// Retain is the topic's retention as the publisher read it, for a
		// holder that may not read the topic's config.
		Retain Retention `cbor:"4,keyasint,omitempty"`
	}
	pubItem struct {
		Raw   []byte `cbor:"1,keyasint"`
		Nonce string `cbor:"2,keyasint,omitempty"` // dedups a retry of a publish with no ID
	}
	pubReply struct {
		Acks      []pubAck `cbor:"1,keyasint,omitempty"`
		NotHolder bool     `cbor:"3,keyasint,omitempty"`
		Leader    string   `cbor:"4,keyasint,omitempty"`
	}
	pubAck struct {
		Offset uint64 `cbor:"1,keyasint,omitempty"`
		Dup    bool   `cbor:"2,keyasint,omitempty"`
		Fail   uint8  `cbor:"3,keyasint,omitempty"` // failNotAuthorised, …
		Err    string `cbor:"4,keyasint,omitempty"`
	}
	readReq struct {
		Topic string `cbor:"1,keyasint"`
		From  uint64 `cbor:"2,keyasint,omitempty"`
		Kind  uint8  `cbor:"3,keyasint,omitempty"` // 0 offset From, 1 time Time, 2 newest
		Time  int64  `cbor:"4,keyasint,omitempty"`
		Max   int    `cbor:"5,keyasint,omitempty"`
		Wait  int64  `cbor:"6,keyasint,omitempty"` // ns to wait for a message past the end
	}
	readReply struct {
		Msgs      []stored `cbor:"1,keyasint,omitempty"`
		First     uint64   `cbor:"2,keyasint"`
		Next      uint64   `cbor:"3,keyasint"`
		From      uint64   `cbor:"4,keyasint"` // where the read began (a time's or the newest's offset)
		NotHolder bool     `cbor:"5,keyasint,omitempty"`
	}
	fetchReq struct {
		Topic    string    `cbor:"1,keyasint"`
		Consumer string    `cbor:"2,keyasint"`
		Worker   string    `cbor:"3,keyasint"`
		Max      int       `cbor:"4,keyasint"`
		AckWait  int64     `cbor:"5,keyasint"`
		From     uint8     `cbor:"6,keyasint,omitempty"`
		FromOff  uint64    `cbor:"7,keyasint,omitempty"`
		FromTime int64     `cbor:"8,keyasint,omitempty"`
		Wait     int64     `cbor:"9,keyasint,omitempty"`
		Retain   Retention `cbor:"10,keyasint,omitempty"`
	}
	fetchReply struct {
		Msgs      []stored `cbor:"1,keyasint,omitempty"`
		Lagged    bool     `cbor:"2,keyasint,omitempty"`
		Asked     uint64   `cbor:"3,keyasint,omitempty"`
		First     uint64   `cbor:"4,keyasint,omitempty"`
		NotHolder bool     `cbor:"5,keyasint,omitempty"`
	}
	ackReq struct {
		Topic    string   `cbor:"1,keyasint"`
		Consumer string   `cbor:"2,keyasint"`
		Worker   string   `cbor:"3,keyasint"`
		Offsets  []uint64 `cbor:"4,keyasint,omitempty"`
		Release  bool     `cbor:"5,keyasint,omitempty"`
	}
	ackReply struct {
		NotHolder bool `cbor:"1,keyasint,omitempty"`
	}
	infoReq struct {
		Topic string `cbor:"1,keyasint"`
	}
	infoReply struct {
		Leader    string         `cbor:"1,keyasint,omitempty"`
		First     uint64         `cbor:"2,keyasint"`
		Next      uint64         `cbor:"3,keyasint"`
		Bytes     int64          `cbor:"4,keyasint"`
		Consumers []ConsumerInfo `cbor:"5,keyasint,omitempty"`
		NotHolder bool           `cbor:"6,keyasint,omitempty"`
	}
	wakeReq struct {
		Topic  string    `cbor:"1,keyasint"`
		Join   string    `cbor:"2,keyasint,omitempty"`
		Retain Retention `cbor:"3,keyasint,omitempty"`
	}
	wakeReply struct {
		Applied uint64 `cbor:"1,keyasint,omitempty"`
	}
	dropReq struct {
		Topic string `cbor:"1,keyasint"`
	}
	dropReply struct{}
	moveReq   struct {
		Topic   string   `cbor:"1,keyasint"`
		Holders []string `cbor:"2,keyasint"`
	}
	moveReply struct {
		Removed []string `cbor:"1,keyasint,omitempty"`
	}
)

var (
	publishFn = remote.Declare[pubReq, pubReply]("nube.topic.publish")
	readFn    = remote.Declare[readReq, readReply]("nube.topic.read")
	fetchFn   = remote.Declare[fetchReq, fetchReply]("nube.topic.fetch")
	ackFn     = remote.Declare[ackReq, ackReply]("nube.topic.ack")
	infoFn    = remote.Declare[infoReq, infoReply]("nube.topic.loginfo")
	wakeFn    = remote.Declare[wakeReq, wakeReply]("nube.topic.wake")
	dropFn    = remote.Declare[dropReq, dropReply]("nube.topic.drop")
	moveFn    = remote.Declare[moveReq, moveReply]("nube.topic.move")
)

// Bounds of a read.
const (
	maxRead      = 1024
	maxReadBytes = 1 << 20
	maxWait      = 5 * time.Second
	// inFlight bounds the messages a consumer's subscriber holds unacked.
	inFlight = 256
)

// local returns the log of topic id if this node holds it, opening it if
// the topic's space names this node a holder.
func (d *durable) local(ctx context.Context, id string, hint Retention) (*holderLog, bool) {
	if len(id) > 2*MaxNameLen+128 {
		return nil, false
	}
	d.mu.Lock()
	l := d.logs[id]
	d.mu.Unlock()
	if l != nil {
		l.hint(hint)
		return l, true
	}
	l, err := d.openLog(ctx, id, "", hint)
	if err != nil {
		d.m.logger().Debug("not a holder of a topic", "topic", id, "err", err)
		return nil, false
	}
	return l, true
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
	l, ok := d.local(ctx, req.Topic, req.Retain)
	if !ok {
		return pubReply{NotHolder: true}, nil
	}
	acks := make([]pubAck, len(req.Msgs))
	ps := make([]*proposal, len(req.Msgs))
	dupOK := make([]bool, len(req.Msgs))
	for i, it := range req.Msgs {
		key, err := d.check(ctx, req.Topic, it)
		if err != nil {
			acks[i] = pubAck{Fail: failOf(err), Err: err.Error()}
			continue
		}
		dupOK[i] = key != "" && key[0] == 'u'
		ps[i] = newProposal(command{Op: opAppend, Raw: it.Raw, Key: key})
	}
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
	if authoriseHook != nil {
		err = authoriseHook(ctx, d.m, r)
	} else {
		err = d.m.authorise(ctx, r)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotAuthorised, err)
	}
	switch {
	case r.ID != "":
		return "u" + r.Publisher.String() + "/" + r.ID, nil
	case len(it.Nonce) > 64:
		return "", fmt.Errorf("%w: nonce of %d bytes", ErrBadMessage, len(it.Nonce))
	case it.Nonce != "":
		return "n" + it.Nonce, nil
	}
	return "", nil
}

func (d *durable) serveRead(ctx context.Context, req readReq) (readReply, error) {
	l, ok := d.local(ctx, req.Topic, Retention{})
	if !ok {
		return readReply{NotHolder: true}, nil
	}
	st := l.log.state()
	from := req.From
	switch req.Kind {
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
	l, ok := d.local(ctx, req.Topic, req.Retain)
	if !ok {
		return fetchReply{NotHolder: true}, nil
	}
	if req.Consumer == "" || len(req.Consumer) > maxConsumerName || len(req.Worker) > maxConsumerName || req.Max <= 0 ||
		!utf8.ValidString(req.Consumer) || !utf8.ValidString(req.Worker) {
		return fetchReply{}, fmt.Errorf("%w: consumer %q, worker %q, max %d", ErrBadName, req.Consumer, req.Worker, req.Max)
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
				Wait: req.AckWait, From: req.From, FromOff: req.FromOff, FromTime: req.FromTime})
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

func (d *durable) serveAck(ctx context.Context, req ackReq) (ackReply, error) {
	l, ok := d.local(ctx, req.Topic, Retention{})
	if !ok {
		return ackReply{NotHolder: true}, nil
	}
	if !utf8.ValidString(req.Consumer) || !utf8.ValidString(req.Worker) || len(req.Offsets) > maxPending {
		return ackReply{}, fmt.Errorf("%w: ack", ErrBadName)
	}
	c := command{Op: opAck, Consumer: req.Consumer, Worker: req.Worker, Offsets: req.Offsets}
	if req.Release {
		c.Op = opRelease
	}
	_, err := l.propose(ctx, c)
	return ackReply{}, err
}

func (d *durable) serveInfo(ctx context.Context, req infoReq) (infoReply, error) {
	l, ok := d.local(ctx, req.Topic, Retention{})
	if !ok {
		return infoReply{NotHolder: true}, nil
	}
	// What the group committed, which this holder may not have applied.
	if err := l.g.Sync(ctx); err != nil {
		return infoReply{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st := l.log.state()
	return infoReply{Leader: l.g.Leader().String(), First: st.First, Next: st.Next, Bytes: st.Bytes, Consumers: l.log.consumerInfos()}, nil
}

func (d *durable) serveWake(ctx context.Context, req wakeReq) (wakeReply, error) {
	l, err := d.openLog(ctx, req.Topic, req.Join, req.Retain)
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

// route is where this node sends a topic's calls: its holders, the one
// that answered last first.
type route struct {
	mu      sync.Mutex
	holders []peer.ID
	good    peer.ID
}

func (d *durable) route(ctx context.Context, t *Topic, refresh bool) (*route, []peer.ID, error) {
	id := t.ID()
	d.mu.Lock()
	r := d.routes[id]
	if r == nil {
		r = &route{}
		d.routes[id] = r
	}
	d.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if refresh || len(r.holders) == 0 {
		hs, err := t.logHolders(ctx)
		if err != nil {
			return r, nil, err
		}
		r.holders = hs
		if !slices.Contains(hs, r.good) {
			r.good = ""
		}
	}
	out := slices.Clone(r.holders)
	if r.good != "" {
		out = append([]peer.ID{r.good}, slices.DeleteFunc(out, func(p peer.ID) bool { return p == r.good })...)
	}
	return r, out, nil
}

func (r *route) prefer(p peer.ID) {
	r.mu.Lock()
	if slices.Contains(r.holders, p) {
		r.good = p
	}
	r.mu.Unlock()
}

// call runs fn on the topic's holders, the one that answered last first,
// until one answers, ctx ends, or every holder failed for long: a holder
// that is not one (the topic migrated) refreshes the holders.
func call[Out any](ctx context.Context, d *durable, t *Topic, fn func(ctx context.Context, p peer.ID) (Out, bool, error)) (Out, error) {
	var zero Out
	refresh := false
	var last error
	for attempt := 0; ; attempt++ {
		r, hs, err := d.route(ctx, t, refresh)
		if err != nil {
			return zero, err
		}
		refresh = false
		for _, p := range hs {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			out, notHolder, err := fn(cctx, p)
			cancel()
			switch {
			case err == nil && !notHolder:
				r.prefer(p)
				return out, nil
			case notHolder:
				refresh = true
				last = fmt.Errorf("%w: %s does not hold %s", ErrUnavailable, p, t.ID())
			default:
				last = err
				if errors.Is(err, ErrNotAuthorised) || errors.Is(err, ErrBadMessage) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrBadName) {
					return zero, err
				}
			}
			if ctx.Err() != nil {
				return zero, fmt.Errorf("%w: %w (last: %v)", ErrUnavailable, ctx.Err(), last)
			}
		}
		refresh = refresh || attempt%4 == 3
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%w: %w (last: %v)", ErrUnavailable, ctx.Err(), last)
		case <-d.ctx.Done():
			return zero, ErrUnavailable
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func newNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// publishDurable stores raw (a signed envelope, from t.sign) on the
// topic's holders and returns its offset once a majority stored it.
func (t *Topic) publishDurable(ctx context.Context, cfg config, raw []byte, opts PublishOptions) (Ack, error) {
	d := t.m.durable
	if !cfg.Retain.Durable() {
		return Ack{}, ErrNotDurable
	}
	o := d.outbox(t.ID())
	out := &outgoing{item: pubItem{Raw: raw, Nonce: newNonce()}, done: make(chan pubAck, 1)}
	o.mu.Lock()
	o.queue = append(o.queue, out)
	sender := o.senders < maxSenders
	if sender {
		o.senders++
	}
	o.mu.Unlock()
	if sender {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.send(t, cfg, o)
		}()
	}
	select {
	case a := <-out.done:
		if err := a.err(); err != nil {
			return Ack{}, fmt.Errorf("topic %s: publish: %w", t.ID(), err)
		}
		return Ack{Offset: a.Offset, Duplicate: a.Dup}, nil
	case <-ctx.Done():
		// It may yet be stored: a retry with the same ID is not doubled.
		return Ack{}, fmt.Errorf("topic %s: publish: %w", t.ID(), ctx.Err())
	}
}

// outbox gathers a node's concurrent publishes to one topic into calls of
// many (the first half of the group commit; the holder's batcher is the
// other).
type outbox struct {
	mu      sync.Mutex
	queue   []*outgoing
	senders int
}

type outgoing struct {
	item pubItem
	done chan pubAck
}

// maxSenders bounds the calls a node has under way to one topic.
const maxSenders = 8

func (d *durable) outbox(id string) *outbox {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.outboxes[id]
	if o == nil {
		o = &outbox{}
		d.outboxes[id] = o
	}
	return o
}

// send sends what o holds, a call at a time, until it is empty.
func (d *durable) send(t *Topic, cfg config, o *outbox) {
	for {
		o.mu.Lock()
		n, size := 0, 0
		for n < len(o.queue) && n < maxCommands && (n == 0 || size+len(o.queue[n].item.Raw) <= maxBatch) {
			size += len(o.queue[n].item.Raw)
			n++
		}
		if n == 0 {
			o.senders--
			o.mu.Unlock()
			return
		}
		outs := slices.Clone(o.queue[:n])
		o.queue = slices.Delete(o.queue, 0, n)
		o.mu.Unlock()
		req := pubReq{Topic: t.ID(), Retain: cfg.Retain, Msgs: make([]pubItem, n)}
		for i, g := range outs {
			req.Msgs[i] = g.item
		}
		ctx, cancel := context.WithTimeout(d.ctx, publishTimeout)
		rep, err := call(ctx, d, t, func(ctx context.Context, p peer.ID) (pubReply, bool, error) {
			rep, err := publishFn.At(d.m.cfg.Endpoint, p).Call(ctx, req)
			if err == nil && !rep.NotHolder && len(rep.Acks) != len(req.Msgs) {
				err = fmt.Errorf("%w: %d answers to %d publishes", ErrUnavailable, len(rep.Acks), len(req.Msgs))
			}
			return rep, rep.NotHolder, err
		})
		if err == nil && rep.Leader != "" {
			// Send the next publishes to the leader, saving a hop.
			if lp, err := peer.Decode(rep.Leader); err == nil {
				if r, _, _ := d.route(ctx, t, false); r != nil {
					r.prefer(lp)
				}
			}
		}
		cancel()
		for i, g := range outs {
			if err != nil {
				g.done <- pubAck{Fail: failOf(err), Err: err.Error()}
			} else {
				g.done <- rep.Acks[i]
			}
		}
	}
}

// publishTimeout bounds how long a node tries to store a publish.
const publishTimeout = 30 * time.Second

// subscribeDurable subscribes from an offset or a time, or as a consumer.
func (t *Topic) subscribeDurable(ctx context.Context, cfg config, opts SubscribeOptions) (*Subscription, error) {
	if !cfg.Retain.Durable() {
		return nil, ErrNotDurable
	}
	if opts.Consumer != "" {
		return t.consume(ctx, cfg, opts)
	}
	s := &reader{t: t, d: t.m.durable, kind: 2, done: make(chan struct{})}
	switch opts.From.kind {
	case 1:
		s.kind, s.from = 0, opts.From.offset
	case 2:
		s.kind, s.time = 1, opts.From.time.UnixNano()
	}
	// Fix where a time or the newest begins now, not at the first Next.
	rep, err := s.fetch(ctx, 0)
	if err != nil {
		return nil, err
	}
	s.kind, s.from, s.buf = 0, rep.From, rep.Msgs
	if rep.From < rep.First && len(rep.Msgs) == 0 {
		s.lag = &LagError{Asked: rep.From, First: rep.First}
		s.from = rep.First
	}
	return &Subscription{next: s.next, close: s.close}, nil
}

// reader is a subscription that reads a durable log from an offset.
type reader struct {
	t    *Topic
	d    *durable
	kind uint8
	from uint64 // the next offset to read
	time int64
	buf  []stored
	lag  *LagError
	mu   sync.Mutex
	done chan struct{}
	once sync.Once
}

func (s *reader) fetch(ctx context.Context, wait time.Duration) (readReply, error) {
	req := readReq{Topic: s.t.ID(), From: s.from, Kind: s.kind, Time: s.time, Max: maxRead, Wait: int64(wait)}
	return call(ctx, s.d, s.t, func(ctx context.Context, p peer.ID) (readReply, bool, error) {
		rep, err := readFn.At(s.d.m.cfg.Endpoint, p).Call(ctx, req)
		return rep, rep.NotHolder, err
	})
}

func (s *reader) next(ctx context.Context) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		select {
		case <-s.done:
			return Message{}, fmt.Errorf("topic %s: subscription closed", s.t.ID())
		default:
		}
		if s.lag != nil {
			err := s.lag
			s.lag = nil
			return Message{}, err
		}
		for len(s.buf) > 0 {
			m := s.buf[0]
			s.buf = s.buf[1:]
			if m.Offset < s.from {
				continue
			}
			s.from = m.Offset + 1
			msg, err := s.t.message(ctx, m)
			if err != nil {
				s.t.m.logger().Warn("a stored message that does not open", "topic", s.t.ID(), "offset", m.Offset, "err", err)
				continue
			}
			return msg, nil
		}
		rep, err := s.fetch(ctx, maxWait)
		if err != nil {
			return Message{}, err
		}
		if s.from < rep.First {
			s.lag = &LagError{Asked: s.from, First: rep.First}
			s.from = rep.First
			continue
		}
		s.buf = rep.Msgs
	}
}

func (s *reader) close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// message makes a Message of a stored envelope.
func (t *Topic) message(ctx context.Context, m stored) (Message, error) {
	r, err := openMessage(m.Raw)
	if err != nil {
		return Message{}, err
	}
	data, err := t.unseal(ctx, r)
	if err != nil {
		return Message{}, err
	}
	return Message{Topic: r.Topic, Offset: m.Offset, ID: r.ID, Publisher: r.Publisher, Time: time.Unix(0, m.Time), Data: data}, nil
}

// consumer is a subscription of a named durable consumer: a worker of
// its queue, with at most inFlight messages unacked.
type consumer struct {
	t       *Topic
	d       *durable
	name    string
	worker  string
	opts    SubscribeOptions
	retain  Retention
	ackWait time.Duration

	mu   sync.Mutex
	buf  []stored
	held map[uint64]time.Time // handed out, not acked: their deadlines
	lag  *LagError
	done chan struct{}
	once sync.Once
}

func (t *Topic) consume(ctx context.Context, cfg config, opts SubscribeOptions) (*Subscription, error) {
	if len(opts.Consumer) > maxConsumerName {
		return nil, fmt.Errorf("%w: consumer name of %d bytes, over %d", ErrBadName, len(opts.Consumer), maxConsumerName)
	}
	c := &consumer{t: t, d: t.m.durable, name: opts.Consumer, worker: t.m.cfg.Host.ID().String() + "/" + newNonce()[:12],
		opts: opts, retain: cfg.Retain, ackWait: opts.AckWait, held: map[uint64]time.Time{}, done: make(chan struct{})}
	if c.ackWait <= 0 {
		c.ackWait = 30 * time.Second
	}
	return &Subscription{next: c.next, close: c.close}, nil
}

func (c *consumer) next(ctx context.Context) (Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		select {
		case <-c.done:
			return Message{}, fmt.Errorf("topic %s: subscription closed", c.t.ID())
		default:
		}
		if c.lag != nil {
			err := c.lag
			c.lag = nil
			return Message{}, err
		}
		if len(c.buf) > 0 {
			m := c.buf[0]
			c.buf = c.buf[1:]
			msg, err := c.t.message(ctx, m)
			if err != nil {
				c.t.m.logger().Warn("a stored message that does not open", "topic", c.t.ID(), "offset", m.Offset, "err", err)
				continue
			}
			off := m.Offset
			msg.ack = func(ctx context.Context) error { return c.ack(ctx, off) }
			return msg, nil
		}
		now := time.Now()
		for o, dl := range c.held {
			if now.After(dl) {
				delete(c.held, o) // its deadline passed: it went back to the queue
			}
		}
		free := inFlight - len(c.held)
		if free <= 0 {
			// Backpressure: wait for an ack or a deadline.
			c.mu.Unlock()
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
			c.mu.Lock()
			if ctx.Err() != nil {
				return Message{}, ctx.Err()
			}
			continue
		}
		req := fetchReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Max: free, AckWait: int64(c.ackWait), Wait: int64(maxWait), Retain: c.retain}
		switch c.opts.From.kind {
		case 1:
			req.From, req.FromOff = 1, c.opts.From.offset
		case 2:
			req.From, req.FromTime = 2, c.opts.From.time.UnixNano()
		}
		c.mu.Unlock()
		rep, err := call(ctx, c.d, c.t, func(ctx context.Context, p peer.ID) (fetchReply, bool, error) {
			rep, err := fetchFn.At(c.d.m.cfg.Endpoint, p).Call(ctx, req)
			return rep, rep.NotHolder, err
		})
		c.mu.Lock()
		if err != nil {
			return Message{}, fmt.Errorf("topic %s: consumer %s: %w", c.t.ID(), c.name, err)
		}
		if rep.Lagged {
			c.lag = &LagError{Asked: rep.Asked, First: rep.First}
			continue
		}
		dl := time.Now().Add(c.ackWait)
		for _, m := range rep.Msgs {
			c.held[m.Offset] = dl
		}
		c.buf = append(c.buf, rep.Msgs...)
	}
}

func (c *consumer) ack(ctx context.Context, off uint64) error {
	req := ackReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Offsets: []uint64{off}}
	_, err := call(ctx, c.d, c.t, func(ctx context.Context, p peer.ID) (ackReply, bool, error) {
		rep, err := ackFn.At(c.d.m.cfg.Endpoint, p).Call(ctx, req)
		return rep, rep.NotHolder, err
	})
	if err != nil {
		return fmt.Errorf("topic %s: ack %d: %w", c.t.ID(), off, err)
	}
	c.mu.Lock()
	delete(c.held, off)
	c.mu.Unlock()
	return nil
}

// close ends the subscription and hands the messages it held, unacked, to
// the consumer's other subscribers at once.
func (c *consumer) close() error {
	first := false
	c.once.Do(func() { close(c.done); first = true })
	if !first {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.d.ctx, 5*time.Second)
	defer cancel()
	req := ackReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Release: true}
	_, err := call(ctx, c.d, c.t, func(ctx context.Context, p peer.ID) (ackReply, bool, error) {
		rep, err := ackFn.At(c.d.m.cfg.Endpoint, p).Call(ctx, req)
		return rep, rep.NotHolder, err
	})
	if err != nil {
		c.t.m.logger().Debug("release a consumer's messages", "topic", c.t.ID(), "err", err)
	}
	return nil
}

// fill adds a durable topic's leader, offsets, bytes and consumers to info.
func (d *durable) fill(ctx context.Context, t *Topic, cfg config, info *Info) error {
	if !cfg.Retain.Durable() {
		return nil
	}
	rep, err := call(ctx, d, t, func(ctx context.Context, p peer.ID) (infoReply, bool, error) {
		rep, err := infoFn.At(d.m.cfg.Endpoint, p).Call(ctx, infoReq{Topic: t.ID()})
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

// migrate moves a durable topic to the holders policy names while
// publishers and subscribers keep going; a live topic's space simply
// migrates.
func (t *Topic) migrate(ctx context.Context, policy space.Policy, progress func(string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	cfg, err := t.config(ctx)
	if err != nil {
		return err
	}
	var old []peer.ID
	if cfg.Retain.Durable() {
		if old, err = t.logHolders(ctx); err != nil {
			return err
		}
	}
	if err := t.sp.Migrate(ctx, policy, func(p space.MigrateProgress) { progress(fmt.Sprintf("space: %+v", p)) }); err != nil {
		return fmt.Errorf("topic %s: migrate its space: %w", t.ID(), err)
	}
	if !cfg.Retain.Durable() {
		return nil
	}
	d := t.m.durable
	nw, err := t.logHolders(ctx)
	if err != nil {
		return err
	}
	if slices.Equal(old, nw) {
		return nil
	}
	progress(fmt.Sprintf("log: from %v to %v", old, nw))
	var hs []string
	for _, p := range nw {
		hs = append(hs, p.String())
	}
	// One old holder that stays (else any old one) moves the group: it
	// adds the new holders, waits for them to catch up, removes the old.
	order := slices.Clone(old)
	slices.SortStableFunc(order, func(a, b peer.ID) int {
		ia, ib := slices.Contains(nw, a), slices.Contains(nw, b)
		switch {
		case ia && !ib:
			return -1
		case ib && !ia:
			return 1
		}
		return 0
	})
	for {
		var last error
		for _, p := range order {
			_, err = moveFn.At(d.m.cfg.Endpoint, p).Call(ctx, moveReq{Topic: t.ID(), Holders: hs})
			if err == nil {
				last = nil
				break
			}
			last = err
		}
		if last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: move its log: %w (last: %v)", t.ID(), ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
	d.mu.Lock()
	delete(d.routes, t.ID())
	d.mu.Unlock()
	// The old holders let go of their copies.
	var gone []peer.ID
	for _, p := range old {
		if !slices.Contains(nw, p) {
			gone = append(gone, p)
		}
	}
	for p, r := range dropFn.OnAll(ctx, d.m.cfg.Endpoint, gone, dropReq{Topic: t.ID()}) {
		if r.Err != nil {
			progress(fmt.Sprintf("log: %s did not drop its copy: %v", p, r.Err))
		}
	}
	progress("log: moved")
	return nil
}

// serveMove moves the group of a topic's log to req.Holders: it runs on a
// member, adds each new holder (which joins and catches up), then removes
// the members that are not holders, itself last.
func (d *durable) serveMove(ctx context.Context, req moveReq) (moveReply, error) {
	l, ok := d.local(ctx, req.Topic, Retention{})
	if !ok {
		return moveReply{}, fmt.Errorf("%w: %s holds no log of %s", ErrUnavailable, d.m.cfg.Host.ID(), req.Topic)
	}
	owner, name, err := SplitID(req.Topic)
	if err != nil {
		return moveReply{}, err
	}
	sp, err := d.m.cfg.Spaces.Open(owner, SpaceName(name))
	if err != nil {
		return moveReply{}, err
	}
	t := &Topic{m: d.m, owner: owner, name: name, sp: sp}
	// The space's holders are the truth: a caller cannot move the log
	// anywhere else.
	want, err := t.logHolders(ctx)
	if err != nil {
		return moveReply{}, err
	}
	st, err := l.g.Status(ctx)
	if err != nil {
		return moveReply{}, err
	}
	var members []peer.ID
	for _, m := range st.Members {
		members = append(members, m.ID)
	}
	self := d.m.cfg.Host.ID()
	for _, p := range want {
		if slices.Contains(members, p) {
			continue
		}
		if err := l.g.AddMember(ctx, p); err != nil {
			return moveReply{}, err
		}
		if _, err := wakeFn.At(d.m.cfg.Endpoint, p).Call(ctx, wakeReq{Topic: req.Topic, Join: self.String(), Retain: l.retention()}); err != nil {
			return moveReply{}, fmt.Errorf("new holder %s: %w", p, err)
		}
	}
	// Wait until every new holder applied what the group committed.
	if err := l.g.Sync(ctx); err != nil {
		return moveReply{}, err
	}
	target := l.log.state().Index
	for _, p := range want {
		if slices.Contains(members, p) {
			continue
		}
		for {
			rep, err := wakeFn.At(d.m.cfg.Endpoint, p).Call(ctx, wakeReq{Topic: req.Topic, Join: self.String(), Retain: l.retention()})
			if err == nil && rep.Applied >= target {
				break
			}
			select {
			case <-ctx.Done():
				return moveReply{}, fmt.Errorf("new holder %s never caught up: %w", p, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	var removed []string
	leaving := false
	for _, p := range members {
		if slices.Contains(want, p) {
			continue
		}
		if p == self {
			leaving = true
			continue
		}
		if err := l.g.RemoveMember(ctx, p); err != nil {
			return moveReply{Removed: removed}, err
		}
		removed = append(removed, p.String())
	}
	if leaving {
		if err := l.g.RemoveMember(ctx, self); err != nil {
			return moveReply{Removed: removed}, err
		}
		removed = append(removed, self.String())
	}
	return moveReply{Removed: removed}, nil
}
