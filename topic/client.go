package topic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The client side of a durable topic: where a node sends a topic's
// calls, its publishes gathered into calls, readers and consumers.

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
		return Ack{Durable: true, Offset: a.Offset, Duplicate: a.Dup}, nil
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
const maxSenders = 2

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
		req := pubReq{Topic: t.ID(), Config: cfg.raw, Msgs: make([]pubItem, n)}
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
	s := &reader{t: t, d: t.m.durable, sealed: cfg.Sealed, kind: 2, done: make(chan struct{})}
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
	t      *Topic
	d      *durable
	sealed bool
	kind   uint8
	from   uint64 // the next offset to read
	time   int64
	buf    []stored
	lag    *LagError
	mu     sync.Mutex
	done   chan struct{}
	once   sync.Once
}

func (s *reader) fetch(ctx context.Context, wait time.Duration) (readReply, error) {
	who, err := s.d.who(ctx, s.t)
	if err != nil {
		return readReply{}, err
	}
	req := readReq{Topic: s.t.ID(), From: s.from, Kind: s.kind, Time: s.time, Max: maxRead, Wait: int64(wait), Who: who}
	rep, err := call(ctx, s.d, s.t, func(ctx context.Context, p peer.ID) (readReply, bool, error) {
		rep, err := readFn.At(s.d.m.cfg.Endpoint, p).Call(ctx, req)
		return rep, rep.NotHolder, err
	})
	if errors.Is(err, ErrNotAuthorised) {
		s.d.forgetChain(s.t.ID())
	}
	return rep, err
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
			msg, err := s.t.message(ctx, m, s.sealed)
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

// message makes a Message of a stored envelope, opening a sealed topic's
// body.
func (t *Topic) message(ctx context.Context, m stored, sealed bool) (Message, error) {
	r, err := openMessage(m.Raw)
	if err != nil {
		return Message{}, err
	}
	data := r.Data
	if sealed {
		if data, err = t.unseal(ctx, r); err != nil {
			return Message{}, err
		}
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
	config  []byte // the owner's signed config
	sealed  bool
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
		opts: opts, config: cfg.raw, sealed: cfg.Sealed, ackWait: opts.AckWait, held: map[uint64]time.Time{}, done: make(chan struct{})}
	if c.ackWait <= 0 {
		c.ackWait = 30 * time.Second
	}
	c.ackWait = min(c.ackWait, time.Duration(maxAckWait))
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
			msg, err := c.t.message(ctx, m, c.sealed)
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
		who, err := c.d.who(ctx, c.t)
		if err != nil {
			return Message{}, err
		}
		req := fetchReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Max: free, AckWait: int64(c.ackWait), Wait: int64(maxWait), Config: c.config, Who: who}
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
			if errors.Is(err, ErrNotAuthorised) {
				c.d.forgetChain(c.t.ID())
			}
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
	who, err := c.d.who(ctx, c.t)
	if err != nil {
		return err
	}
	req := ackReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Offsets: []uint64{off}, Who: who}
	_, err = call(ctx, c.d, c.t, func(ctx context.Context, p peer.ID) (ackReply, bool, error) {
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
	who, err := c.d.who(ctx, c.t)
	if err != nil {
		c.t.m.logger().Debug("release a consumer's messages", "topic", c.t.ID(), "err", err)
		return nil
	}
	req := ackReq{Topic: c.t.ID(), Consumer: c.name, Worker: c.worker, Release: true, Who: who}
	_, err = call(ctx, c.d, c.t, func(ctx context.Context, p peer.ID) (ackReply, bool, error) {
		rep, err := ackFn.At(c.d.m.cfg.Endpoint, p).Call(ctx, req)
		return rep, rep.NotHolder, err
	})
	if err != nil {
		c.t.m.logger().Debug("release a consumer's messages", "topic", c.t.ID(), "err", err)
	}
	return nil
}
