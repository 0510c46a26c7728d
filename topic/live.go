package topic

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/space"
)

// The live side: one gossipsub router per node, one gossipsub topic per
// nube topic, a validator on each that every relay runs, and local
// subscriptions fed from it through bounded buffers.

const (
	// gossipPrefix starts the gossipsub topic of a nube topic ID.
	gossipPrefix = "/nube/topic/1/"
	// subBuffer is how many messages a local subscription holds for its
	// reader, and subBytes how many bytes; past either, the subscription
	// loses messages and its reader gets ErrLagged.
	subBuffer = 1024
	subBytes  = 16 << 20
	// pumpBuffer is the gossipsub subscription's own buffer, which the
	// pump empties at once into the local subscriptions.
	pumpBuffer = 256
	// validateQueue is how many received messages wait for the
	// validator; past it gossipsub drops them, unpenalised.
	validateQueue = 1024
	// outboundQueue is how many RPCs wait to be sent to one peer; past it
	// gossipsub drops what it would send to that peer.
	outboundQueue = 256
	// maxPayload caps a gossip payload: an envelope and its offset.
	maxPayload = MaxEnvelope + 64
	// maxFuture and maxAge bound the publish time of a live message, by
	// the relay's clock: a message stamped further ahead (a skewed or
	// lying clock) or older (a replay the seen-cache no longer remembers)
	// is refused. seenTTL, the seen-cache's span, covers the window, so a
	// replay inside it is dropped as a duplicate.
	maxFuture = 30 * time.Second
	maxAge    = 90 * time.Second
	seenTTL   = maxFuture + maxAge + 10*time.Second
)

// gossipTopic is the gossipsub topic of a nube topic ID.
func gossipTopic(id string) string { return gossipPrefix + id }

// payload is what travels in a gossipsub message: the publisher's signed
// envelope, and beside it the message's offset in a durable topic's log
// (zero on a live topic), which only a holder of the topic may send.
type payload struct {
	Offset uint64 `cbor:"1,keyasint,omitempty"`
	Env    []byte `cbor:"2,keyasint"`
}

func encodePayload(offset uint64, env []byte) ([]byte, error) {
	return wire.Marshal(payload{Offset: offset, Env: env})
}

// decodePayload decodes a gossip payload, capped at maxPayload.
func decodePayload(b []byte) (payload, error) {
	var p payload
	if len(b) > maxPayload {
		return p, fmt.Errorf("%w: a payload of %d bytes, over %d", ErrTooLarge, len(b), maxPayload)
	}
	if err := wire.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("%w: payload: %v", ErrBadMessage, err)
	}
	if len(p.Env) == 0 {
		return p, fmt.Errorf("%w: payload without a message", ErrBadMessage)
	}
	return p, nil
}

// live is the layer's gossipsub side: live fan-out, the validators, grants
// and sealing.
type live struct {
	m      *Manager
	log    *slog.Logger
	self   peer.ID // this node
	user   peer.ID // this node's user
	ps     *pubsub.PubSub
	ctx    context.Context // ends at close; pubsub and the pumps run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	topics  map[string]*liveTopic // joined, by topic ID
	configs map[string]cachedConfig
	closed  bool

	auth *auth     // grants.go
	keys topicKeys // seal.go

	scoreMu sync.Mutex
	scores  map[peer.ID]float64 // the router's peer scores, as last inspected
}

// liveTopic is a joined gossipsub topic.
type liveTopic struct {
	id string
	pt *pubsub.Topic

	mu   sync.Mutex
	sub  *pubsub.Subscription // while there are local subscribers
	subs map[*liveSub]struct{}

	published, delivered, dropped atomic.Uint64
}

// delivery is a validated message, as the validator hands it to the pump.
type delivery struct {
	r      *record
	offset uint64
	size   int
}

func newLive(ctx context.Context, m *Manager) (*live, error) {
	l := &live{m: m, log: m.cfg.Logger, topics: map[string]*liveTopic{}, configs: map[string]cachedConfig{},
		scores: map[peer.ID]float64{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.log = l.log.With("layer", "topic")
	if m.cfg.Host == nil {
		return nil, errors.New("topic: Config.Host is required")
	}
	l.self = m.cfg.Host.ID()
	if m.cfg.Spaces != nil {
		l.user = m.cfg.Spaces.User()
	}
	l.auth = newAuth(l)
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	params, thresholds := scoreParams()
	ps, err := pubsub.NewGossipSub(l.ctx, m.cfg.Host,
		pubsub.WithMessageIdFn(messageID),
		// A publisher sends to every peer on the topic, not only to its
		// mesh: the first messages are not lost while the mesh forms, and
		// subscribers are one hop away.
		pubsub.WithFloodPublish(true),
		// Validate one message at a time, so that the messages a
		// publisher sends straight to this node keep their order.
		pubsub.WithValidateWorkers(1),
		pubsub.WithValidateQueueSize(validateQueue),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(l.inspect), time.Second),
		pubsub.WithMaxMessageSize(maxPayload+16<<10),
		pubsub.WithSeenMessagesTTL(seenTTL),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithLogger(l.log),
	)
	if err != nil {
		l.cancel()
		return nil, fmt.Errorf("topic: start gossipsub: %w", err)
	}
	l.ps = ps
	return l, nil
}

// messageID names a gossip message by its payload's hash, so a replay of
// the same bytes is a duplicate whoever sends it.
func messageID(m *pb.Message) string {
	h := sha256.Sum256(m.Data)
	return string(h[:])
}

func (l *live) inspect(scores map[peer.ID]float64) {
	l.scoreMu.Lock()
	defer l.scoreMu.Unlock()
	clear(l.scores)
	for p, s := range scores {
		l.scores[p] = s
	}
}

// score is the router's score of p at its last inspection.
func (l *live) score(p peer.ID) (float64, bool) {
	l.scoreMu.Lock()
	defer l.scoreMu.Unlock()
	s, ok := l.scores[p]
	return s, ok
}

func (l *live) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	topics := l.topics
	l.topics = map[string]*liveTopic{}
	l.mu.Unlock()
	for _, lt := range topics {
		lt.mu.Lock()
		for s := range lt.subs {
			s.end()
		}
		if lt.sub != nil {
			lt.sub.Cancel()
		}
		lt.mu.Unlock()
	}
	l.cancel()
	l.wg.Wait()
	return nil
}

// join returns the joined gossipsub topic of id, joining it (and
// registering its validator) the first time.
func (l *live) join(id string) (*liveTopic, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("topic %s: the layer is closed", id)
	}
	if lt := l.topics[id]; lt != nil {
		return lt, nil
	}
	gt := gossipTopic(id)
	lt := &liveTopic{id: id, subs: map[*liveSub]struct{}{}}
	if err := l.ps.RegisterTopicValidator(gt, func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		return l.validate(ctx, lt, msg)
	}, pubsub.WithValidatorInline(true)); err != nil {
		return nil, fmt.Errorf("topic %s: %w", id, err)
	}
	pt, err := l.ps.Join(gt)
	if err != nil {
		l.ps.UnregisterTopicValidator(gt)
		return nil, fmt.Errorf("topic %s: join: %w", id, err)
	}
	if err := pt.SetScoreParams(topicScore()); err != nil {
		pt.Close()
		l.ps.UnregisterTopicValidator(gt)
		return nil, fmt.Errorf("topic %s: score: %w", id, err)
	}
	lt.pt = pt
	l.topics[id] = lt
	// Learn the topic's head now, not on the first message, which would
	// wait for it in the validator.
	l.wg.Go(func() {
		ctx, cancel := context.WithTimeout(l.ctx, judgeTimeout)
		defer cancel()
		if ta, err := l.auth.of(id); err == nil {
			l.auth.state(ctx, ta)
		}
	})
	return lt, nil
}

// leave leaves the gossipsub topic of id (the topic was deleted).
func (l *live) leave(id string) {
	l.mu.Lock()
	lt := l.topics[id]
	delete(l.topics, id)
	delete(l.configs, id)
	l.mu.Unlock()
	if lt == nil {
		return
	}
	lt.mu.Lock()
	for s := range lt.subs {
		s.end()
		delete(lt.subs, s)
	}
	if lt.sub != nil {
		lt.sub.Cancel()
		lt.sub = nil
	}
	lt.mu.Unlock()
	// The subscription's cancel goes through gossipsub's loop: Close
	// fails until it has.
	for range 40 {
		if lt.pt.Close() == nil {
			break
		}
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(25 * time.Millisecond):
		}
	}
	l.ps.UnregisterTopicValidator(gossipTopic(id))
}

func (l *live) topic(id string) *liveTopic {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.topics[id]
}

// validate is the gossipsub validator of lt, which every node that
// relays the topic runs on each message before it forwards or delivers
// it: the payload decodes, the envelope is signed by the publisher it
// names, for this topic, within the time window, and the publisher's
// chain gives it the Publish right now; an offset comes from one of the
// topic's holders. Reject makes gossipsub drop the message and count an
// invalid delivery against the peer that sent it, which lowers its score.
func (l *live) validate(ctx context.Context, lt *liveTopic, msg *pubsub.Message) pubsub.ValidationResult {
	if _, ok := msg.ValidatorData.(*delivery); ok && msg.ReceivedFrom == l.self {
		return pubsub.ValidationAccept // publish checked it
	}
	d, err := l.check(ctx, lt.id, msg.GetFrom(), msg.Data)
	res := result(err)
	switch res {
	case pubsub.ValidationAccept:
		msg.ValidatorData = d
	default:
		lt.dropped.Add(1)
		l.log.Debug("topic: dropping a message", "topic", lt.id, "from", msg.ReceivedFrom, "penalised", res == pubsub.ValidationReject, "err", err)
	}
	return res
}

// result is what gossipsub is told of a message check judged: Ignore
// (dropped, unpenalised) for what an honest relay may have passed on,
// Reject for the rest.
func result(err error) pubsub.ValidationResult {
	switch {
	case err == nil:
		return pubsub.ValidationAccept
	case errors.Is(err, errUnknown), errors.Is(err, errStale):
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationReject
}

// errUnknown reports a message that cannot be judged now (the topic's
// head cannot be found): gossipsub ignores it without penalty.
var errUnknown = errors.New("cannot judge the message now")

// errStale reports a message an honest relay may have passed on before
// it learned better: its publisher's grant was revoked or ended after
// the message was signed, or its stamp is just outside the window.
// gossipsub drops it without penalising the peer that sent it, which
// only a message no honest node would pass on (a bad signature, no grant
// at all, another topic's, malformed) does.
var errStale = errors.New("stale")

// check is validate's verdict: the delivery, or why not.
func (l *live) check(ctx context.Context, id string, from peer.ID, data []byte) (*delivery, error) {
	p, err := decodePayload(data)
	if err != nil {
		return nil, err
	}
	env, r, err := peekMessage(p.Env)
	if err != nil {
		return nil, err
	}
	if r.Topic != id {
		return nil, fmt.Errorf("%w: a message of topic %s on %s", ErrBadMessage, r.Topic, id)
	}
	// The cheap checks first, the grant's verdict cached, so that a flood
	// costs no signature check. A stale message (errStale) is dropped
	// without penalty only if its signature holds: else anyone could
	// send garbage under a revoked chain unpunished.
	var stale error
	if p.Offset != 0 {
		if err := l.auth.fromHolder(ctx, id, from); err != nil {
			if !errors.Is(err, errStale) {
				return nil, err
			}
			stale = err
		}
	}
	// A holder broadcasts a message as soon as it is stored, within a
	// publish's retries of its stamp: one with an offset is checked too,
	// else a holder's broadcast replayed after the seen cache forgot it
	// is delivered again.
	if err := checkTime(r, time.Now()); err != nil {
		if !errors.Is(err, errStale) {
			return nil, err
		}
		stale = err
	}
	if err := l.auth.authorise(ctx, r); err != nil {
		if !errors.Is(err, errStale) {
			return nil, err
		}
		stale = err
	}
	if err := env.Verify(messageDomain, r.Publisher); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if stale != nil {
		return nil, stale
	}
	return &delivery{r: r, offset: p.Offset, size: len(r.Data)}, nil
}

// checkTime refuses a live message stamped outside the window around
// now. Just outside it (within the window again) the message may be an
// honest one that a relay with a slightly different clock passed on: it
// is refused without penalty (errStale).
func checkTime(r *record, now time.Time) error {
	t := r.when()
	switch {
	case t.After(now.Add(2 * maxFuture)):
		return fmt.Errorf("%w: stamped %v ahead of this node's clock (more than %v)", ErrBadMessage, t.Sub(now).Round(time.Second), maxFuture)
	case t.After(now.Add(maxFuture)):
		return fmt.Errorf("%w: %w: stamped %v ahead of this node's clock (more than %v)", ErrBadMessage, errStale, t.Sub(now).Round(time.Second), maxFuture)
	case t.Before(now.Add(-2 * maxAge)):
		return fmt.Errorf("%w: stamped %v ago (more than %v): a replay or a late message", ErrBadMessage, now.Sub(t).Round(time.Second), maxAge)
	case t.Before(now.Add(-maxAge)):
		return fmt.Errorf("%w: %w: stamped %v ago (more than %v): a replay or a late message", ErrBadMessage, errStale, now.Sub(t).Round(time.Second), maxAge)
	}
	return nil
}

// publish dispatches: a durable topic's publish goes to t.publishDurable
// (durable.go), a live one's to gossipsub.
func (t *Topic) publish(ctx context.Context, data []byte, opts PublishOptions) (Ack, error) {
	if len(data) > MaxMessage {
		return Ack{}, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(data), MaxMessage)
	}
	if len(opts.ID) > MaxIDLen {
		return Ack{}, fmt.Errorf("%w: an ID of %d bytes, over %d", ErrBadMessage, len(opts.ID), MaxIDLen)
	}
	cfg, err := t.cachedConfig(ctx)
	if err != nil {
		return Ack{}, err
	}
	raw, err := t.sign(ctx, cfg, data, opts.ID)
	if err != nil {
		return Ack{}, err
	}
	if cfg.Retain.Durable() {
		ack, err := t.publishDurable(ctx, cfg, raw, opts)
		if err == nil {
			// Counted where it was published, as a live one is.
			if lt, jerr := t.m.live.join(t.ID()); jerr == nil {
				lt.published.Add(1)
			}
		}
		return ack, err
	}
	l := t.m.live
	lt, err := l.join(t.ID())
	if err != nil {
		return Ack{}, err
	}
	b, err := encodePayload(0, raw)
	if err != nil {
		return Ack{}, err
	}
	// Check it here, for the reason if it is refused; the validator then
	// takes this verdict for the local message (ValidatorData is never
	// set on one from the network).
	d, err := l.check(ctx, t.ID(), l.self, b)
	if err != nil {
		return Ack{}, fmt.Errorf("publish on %s: %w", t.ID(), err)
	}
	if err := lt.pt.Publish(ctx, b, pubsub.WithValidatorData(d)); err != nil {
		return Ack{}, fmt.Errorf("publish on %s: %w", t.ID(), err)
	}
	lt.published.Add(1)
	return Ack{}, nil
}

// broadcast hands a stored (or live) message to gossipsub for the topic's
// live subscribers; offset is its place in a durable log, zero on a live
// topic. The durable part calls it after a publish commits, on a holder.
func (m *Manager) broadcast(ctx context.Context, topicID string, offset uint64, raw []byte) error {
	lt, err := m.live.join(topicID)
	if err != nil {
		return err
	}
	b, err := encodePayload(offset, raw)
	if err != nil {
		return err
	}
	if err := lt.pt.Publish(ctx, b); err != nil {
		return fmt.Errorf("broadcast on %s: %w", topicID, err)
	}
	return nil
}

// subscribe dispatches: from an offset, a time or with a consumer to
// t.subscribeDurable (durable.go), from the newest to gossipsub.
func (t *Topic) subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	cfg, err := t.cachedConfig(ctx)
	if err != nil {
		return nil, err
	}
	if opts.Consumer != "" || opts.From.kind != 0 {
		if !cfg.Retain.Durable() {
			return nil, fmt.Errorf("%w: %s is live-only: subscribe from the newest, without a consumer", ErrNotDurable, t.ID())
		}
		return t.subscribeDurable(ctx, cfg, opts)
	}
	l := t.m.live
	lt, err := l.join(t.ID())
	if err != nil {
		return nil, err
	}
	s := &liveSub{t: t, lt: lt, cfg: cfg, ch: make(chan item, subBuffer), done: make(chan struct{})}
	if err := l.attach(lt, s); err != nil {
		return nil, err
	}
	return &Subscription{next: s.next, close: func() error { l.detach(lt, s); return nil }}, nil
}

// attach adds s to lt's local subscribers, subscribing to the gossipsub
// topic and starting its pump with the first.
func (l *live) attach(lt *liveTopic, s *liveSub) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.sub == nil {
		sub, err := lt.pt.Subscribe(pubsub.WithBufferSize(pumpBuffer))
		if err != nil {
			return fmt.Errorf("subscribe to %s: %w", lt.id, err)
		}
		l.mu.Lock() // close waits for the pumps it lets start
		defer l.mu.Unlock()
		if l.closed {
			sub.Cancel()
			return fmt.Errorf("subscribe to %s: the layer is closed", lt.id)
		}
		lt.sub = sub
		l.wg.Go(func() { l.pump(lt, sub) })
	}
	lt.subs[s] = struct{}{}
	return nil
}

// detach removes s; the last one out unsubscribes from gossipsub.
func (l *live) detach(lt *liveTopic, s *liveSub) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if _, ok := lt.subs[s]; !ok {
		return
	}
	delete(lt.subs, s)
	s.end()
	if len(lt.subs) == 0 && lt.sub != nil {
		lt.sub.Cancel()
		lt.sub = nil
	}
}

// pump hands each validated message of sub to lt's local subscribers,
// never waiting on one: a subscriber whose buffer is full loses the
// message and learns it from its next Next.
func (l *live) pump(lt *liveTopic, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(l.ctx)
		if err != nil {
			return
		}
		d, ok := msg.ValidatorData.(*delivery)
		if !ok {
			continue
		}
		lt.mu.Lock()
		if lt.sub != sub {
			lt.mu.Unlock()
			return
		}
		for s := range lt.subs {
			s.offer(d)
		}
		lt.mu.Unlock()
	}
}

// liveSub is one local subscription to a live feed.
type liveSub struct {
	t   *Topic
	lt  *liveTopic
	cfg config

	ch      chan item
	done    chan struct{}
	ended   bool         // done is closed; lt.mu
	skipped uint64       // lost since the last item queued; lt.mu
	queued  atomic.Int64 // bytes in ch
	pending *item        // an item held back behind a lag error; the reader's
	readMu  sync.Mutex   // one Next at a time
}

// item is a delivery and how many messages were lost just before it.
type item struct {
	d      *delivery
	before uint64
}

// offer queues d, or counts it lost. lt.mu is held.
func (s *liveSub) offer(d *delivery) {
	if s.ended {
		return
	}
	if s.queued.Load()+int64(d.size) > subBytes {
		s.skipped++
		return
	}
	select {
	case s.ch <- item{d: d, before: s.skipped}:
		s.queued.Add(int64(d.size))
		s.skipped = 0
	default:
		s.skipped++
	}
}

// end stops s. lt.mu is held.
func (s *liveSub) end() {
	if !s.ended {
		s.ended = true
		close(s.done)
	}
}

func (s *liveSub) lagged(lost uint64) error {
	return fmt.Errorf("%w: %s: this subscriber fell behind and lost %d messages; it goes on with the next", ErrLagged, s.t.ID(), lost)
}

// errClosed ends a Next on a closed subscription.
var errClosed = errors.New("topic: subscription closed")

func (s *liveSub) next(ctx context.Context) (Message, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	var it item
	if s.pending != nil {
		it, s.pending = *s.pending, nil
	} else {
		select {
		case it = <-s.ch:
		default:
			// Nothing queued: lost messages with none after them yet are
			// reported now, not with the next one to come.
			s.lt.mu.Lock()
			lost := s.skipped
			s.skipped = 0
			s.lt.mu.Unlock()
			if lost > 0 {
				return Message{}, s.lagged(lost)
			}
			select {
			case it = <-s.ch:
			case <-s.done:
				return Message{}, errClosed
			case <-ctx.Done():
				return Message{}, ctx.Err()
			}
		}
		s.queued.Add(-int64(it.d.size))
		if it.before > 0 {
			it2 := it
			it2.before = 0
			s.pending = &it2
			return Message{}, s.lagged(it.before)
		}
	}
	r := it.d.r
	m := Message{Topic: r.Topic, Offset: it.d.offset, ID: r.ID, Publisher: r.Publisher, Time: r.when().UTC(), Data: r.Data}
	if s.cfg.Sealed {
		body, err := s.t.unseal(ctx, r)
		if err != nil {
			return Message{}, err
		}
		m.Data = body
	}
	s.lt.delivered.Add(1)
	return m, nil
}

// info fills what the record and the live side know, then asks
// t.m.durable.fill for a durable topic's offsets and consumers.
func (t *Topic) info(ctx context.Context) (Info, error) {
	cfg, err := t.cachedConfig(ctx)
	if err != nil {
		return Info{}, err
	}
	si, err := t.sp.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	info := Info{ID: t.ID(), Owner: t.owner, Name: t.name, Sealed: cfg.Sealed, Retain: cfg.Retain, Grants: si.Grants}
	for _, h := range si.Holders {
		info.Holders = append(info.Holders, h.Peer)
	}
	if lt := t.m.live.topic(t.ID()); lt != nil {
		info.Rates = lt.rates()
	}
	if cfg.Retain.Durable() {
		if err := t.m.durable.fill(ctx, t, cfg, &info); err != nil {
			return info, err
		}
	}
	return info, nil
}

func (lt *liveTopic) rates() Rates {
	return Rates{Published: lt.published.Load(), Delivered: lt.delivered.Load(), Dropped: lt.dropped.Load()}
}

// list lists the topics whose spaces this node is home of ("owner") or
// holds ("holder"), and those it has joined the gossip of to publish or
// subscribe ("subscriber").
func (m *Manager) list() []Summary {
	l := m.live
	seen := map[string]int{}
	var out []Summary
	if m.cfg.Spaces != nil {
		for _, s := range m.cfg.Spaces.Spaces() {
			name, ok := strings.CutPrefix(s.Name, "topic.")
			if !ok {
				continue
			}
			role := "holder"
			if s.Role == "home" {
				role = "owner"
				// The home keeps a deleted space's head; its state is
				// local, no I/O.
				if sp, err := m.cfg.Spaces.Open(s.Owner, s.Name); err == nil {
					if st, err := sp.State(context.Background(), false); err == nil && st.Deleted {
						continue
					}
				}
			}
			id := s.Owner.String() + "/" + name
			seen[id] = len(out)
			out = append(out, Summary{ID: id, Role: role})
		}
	}
	l.mu.Lock()
	for id, lt := range l.topics {
		i, ok := seen[id]
		if !ok {
			i = len(out)
			out = append(out, Summary{ID: id, Role: "subscriber"})
		}
		out[i].Rates = lt.rates()
	}
	for i := range out {
		if c, ok := l.configs[out[i].ID]; ok {
			out[i].Durable = c.cfg.Retain.Durable()
		}
	}
	l.mu.Unlock()
	return out
}

// delete deletes the topic's space, and asks the durable part to drop its
// log (t.m.durable.drop).
func (t *Topic) delete(ctx context.Context) error {
	if err := t.sp.Destroy(ctx); err != nil {
		return fmt.Errorf("delete topic %s: %w", t.ID(), mapSpaceErr(err))
	}
	t.m.live.leave(t.ID())
	t.m.live.auth.forget(t.ID())
	return t.m.durable.drop(ctx, t)
}

// configTTL is how long a node trusts a topic's config it read: a
// topic's config does not change, but a deleted topic's goes.
const configTTL = time.Minute

type cachedConfig struct {
	cfg config
	at  time.Time
}

// cachedConfig reads the topic's config, or takes it from the cache. A
// user that may not read the topic's space gets ErrNotAuthorised.
func (t *Topic) cachedConfig(ctx context.Context) (config, error) {
	l := t.m.live
	l.mu.Lock()
	c, ok := l.configs[t.ID()]
	l.mu.Unlock()
	if ok && time.Since(c.at) < configTTL {
		return c.cfg, nil
	}
	cfg, err := t.config(ctx)
	if err != nil {
		return config{}, fmt.Errorf("topic %s: %w", t.ID(), mapSpaceErr(err))
	}
	l.mu.Lock()
	l.configs[t.ID()] = cachedConfig{cfg: cfg, at: time.Now()}
	l.mu.Unlock()
	return cfg, nil
}

// mapSpaceErr adds the topic's sentinel to a space's error.
func mapSpaceErr(err error) error {
	switch {
	case errors.Is(err, ErrNotAuthorised), errors.Is(err, ErrNotFound):
		return err
	case errors.Is(err, space.ErrNotAuthorised):
		return fmt.Errorf("%w: %w", ErrNotAuthorised, err)
	case errors.Is(err, space.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
