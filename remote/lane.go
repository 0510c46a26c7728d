package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/wire"
)

// LaneProtocol carries many plain calls with small inputs on one
// long-lived stream (a lane), tagged by call ID, so that such a call costs
// one frame each way instead of a stream's opening and closing. Calls with
// larger inputs, and streaming calls, each get a stream of their own on
// Protocol.
//
//	caller → callee  call    (ID, function, input, time left)
//	caller → callee  cancel  (ID)
//	callee → caller  part*   (ID, a piece of the result)
//	callee → caller  done    (ID, the last piece)
//	              or error   (ID, code, message)
//
// Results go back in pieces of at most laneChunk bytes, so that a large
// result does not hold up the small ones behind it.
var LaneProtocol = wire.Protocol("remote-lane", 1)

const (
	// laneMaxInput is the largest input sent on a lane.
	laneMaxInput = 64 << 10
	// laneChunk is the largest piece of a result in one lane frame.
	laneChunk = 64 << 10
	// laneFrameMax caps every lane frame, either way.
	laneFrameMax = laneChunk + callOverhead
	// lanesPerPeer is how many lanes a caller opens to one peer at most.
	lanesPerPeer = 4
	// laneBusy is how many calls every lane carries before another opens.
	laneBusy = 16
	// laneIdle is how long a lane with no call stays open.
	laneIdle = 30 * time.Second
	// kindPart marks a piece of a result with more to follow.
	kindPart = 4
)

// laneCall is every frame a caller sends on a lane.
type laneCall struct {
	ID      uint64 `cbor:"1,keyasint"`
	Fn      string `cbor:"2,keyasint,omitempty"`
	In      []byte `cbor:"3,keyasint,omitempty"` // the encoded input
	Timeout int64  `cbor:"4,keyasint,omitempty"` // nanoseconds left; 0: none
	Cancel  bool   `cbor:"5,keyasint,omitempty"` // cancel call ID
}

// laneReply is every frame a callee sends on a lane.
type laneReply struct {
	ID   uint64 `cbor:"1,keyasint"`
	Kind uint8  `cbor:"2,keyasint"`
	Out  []byte `cbor:"3,keyasint,omitempty"` // a piece of the encoded result
	Code Code   `cbor:"4,keyasint,omitempty"`
	Msg  string `cbor:"5,keyasint,omitempty"`
	// Err is the errcode kind of a callee's own error, if it has one.
	Err errcode.Code `cbor:"6,keyasint,omitempty"`
}

func (m *laneCall) check() error {
	if m.Cancel {
		return nil
	}
	return checkCall(m.Fn, m.In, m.Timeout)
}

// check refuses a lane reply that decoded but makes no sense. An item of a
// stream never comes on a lane.
func (m *laneReply) check() error {
	if m.Kind == kindItem {
		return fmt.Errorf("%w: a stream item on a lane", wire.ErrMalformed)
	}
	return checkReply(m.Kind, len(m.Out), m.Code, kindPart, kindDone)
}

// recvLaneCall and recvLaneReply read and check one lane frame: the paths
// a peer's lane frames take in, and what the fuzz targets drive.
func recvLaneCall(ws *wire.Stream, m *laneCall) error {
	*m = laneCall{}
	if err := ws.Recv(context.Background(), m); err != nil {
		return err
	}
	return m.check()
}

func recvLaneReply(ws *wire.Stream, m *laneReply) error {
	*m = laneReply{}
	if err := ws.Recv(context.Background(), m); err != nil {
		return err
	}
	return m.check()
}

// lane is the caller's end of one lane to a peer.
type lane struct {
	e  *Endpoint
	p  peer.ID
	s  network.Stream
	ws *wire.Stream

	wmu sync.Mutex // one frame written at a time

	mu    sync.Mutex
	calls map[uint64]*laneWait
	next  uint64
	dead  error       // set once the lane is unusable
	idle  *time.Timer // closes the lane after laneIdle with no call
}

// laneWait is a call waiting on a lane for its result.
type laneWait struct {
	buf  []byte // the result so far (only the lane's reader touches it)
	done chan laneResult
}

type laneResult struct {
	out []byte
	err error
}

// lanePool is a caller's lanes to one peer.
type lanePool struct {
	lanes   []*lane
	opening chan struct{} // held while a lane is being opened
}

// laneTo returns a lane to p with room for another call, opening one if
// every lane is busy (or there is none).
func (e *Endpoint) laneTo(ctx context.Context, p peer.ID) (*lane, error) {
	e.mu.Lock()
	pool := e.pools[p]
	if pool == nil {
		pool = &lanePool{opening: make(chan struct{}, 1)}
		e.pools[p] = pool
	}
	best := pool.pick()
	e.mu.Unlock()
	if best != nil {
		return best, nil
	}
	select {
	case pool.opening <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-pool.opening }()
	e.mu.Lock()
	best = pool.pick() // someone else may have opened one meanwhile
	e.mu.Unlock()
	if best != nil {
		return best, nil
	}
	l, err := e.openLane(ctx, p)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	pool.lanes = append(pool.lanes, l)
	e.mu.Unlock()
	return l, nil
}

// pick returns the least busy lane if it has room, or if no more lanes
// may open; nil means open another. Call with e.mu held.
func (pool *lanePool) pick() *lane {
	var best *lane
	least := 0
	for _, l := range pool.lanes {
		if n := l.load(); best == nil || n < least {
			best, least = l, n
		}
	}
	if best != nil && (least < laneBusy || len(pool.lanes) >= lanesPerPeer) {
		return best
	}
	return nil
}

func (l *lane) load() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead != nil {
		return 1 << 30
	}
	return len(l.calls)
}

// openLane opens a lane to p and starts its reader.
func (e *Endpoint) openLane(ctx context.Context, p peer.ID) (*lane, error) {
	if err := e.reach(ctx, p); err != nil {
		return nil, err
	}
	s, err := e.host.NewStream(network.WithAllowLimitedConn(ctx, "remote call"), p, LaneProtocol)
	if err != nil {
		return nil, err
	}
	if !e.enter() {
		_ = s.Reset()
		return nil, errors.New("this node is shutting down")
	}
	l := &lane{e: e, p: p, s: s, calls: map[uint64]*laneWait{},
		ws: wire.NewStream(s, wire.WithMaxFrame(laneFrameMax), wire.WithoutRecvTimeout())}
	go l.read()
	return l, nil
}

// send writes one frame on the lane. It uses no caller's context: a frame
// given up half way would leave the lane unusable for every call on it.
func (l *lane) send(m *laneCall) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.ws.Send(context.Background(), m)
}

// start registers a call on the lane and returns its ID.
func (l *lane) start() (uint64, *laneWait, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead != nil {
		return 0, nil, l.dead
	}
	if l.idle != nil {
		l.idle.Stop()
		l.idle = nil
	}
	l.next++
	w := &laneWait{done: make(chan laneResult, 1)}
	l.calls[l.next] = w
	return l.next, w, nil
}

// finish removes call id and hands it its result, unless it is gone.
func (l *lane) finish(id uint64, r laneResult) {
	l.mu.Lock()
	w := l.calls[id]
	delete(l.calls, id)
	l.idleCheck()
	l.mu.Unlock()
	if w != nil {
		w.done <- r
	}
}

// idleCheck arms the idle timer once the lane has no call. Call with l.mu
// held.
func (l *lane) idleCheck() {
	if len(l.calls) == 0 && l.dead == nil && l.idle == nil {
		l.idle = time.AfterFunc(laneIdle, func() {
			l.mu.Lock()
			idle := len(l.calls) == 0
			l.mu.Unlock()
			if idle {
				l.kill(errLaneIdle)
			}
		})
	}
}

var errLaneIdle = errors.New("lane closed after being idle")

// kill ends the lane: every call on it fails with err (as unreachable),
// the pool forgets it and its stream is reset, which ends its reader.
func (l *lane) kill(err error) {
	l.mu.Lock()
	if l.dead != nil {
		l.mu.Unlock()
		return
	}
	l.dead = err
	calls := l.calls
	l.calls = nil
	if l.idle != nil {
		l.idle.Stop()
	}
	l.mu.Unlock()
	_ = l.s.Reset()
	for _, w := range calls {
		w.done <- laneResult{err: err}
	}
	l.e.mu.Lock()
	if pool := l.e.pools[l.p]; pool != nil {
		for i, x := range pool.lanes {
			if x == l {
				pool.lanes = append(pool.lanes[:i:i], pool.lanes[i+1:]...)
				break
			}
		}
		if len(pool.lanes) == 0 && len(pool.opening) == 0 {
			delete(l.e.pools, l.p)
		}
	}
	l.e.mu.Unlock()
}

// read hands each reply to its call until the lane ends.
func (l *lane) read() {
	defer l.e.wg.Done()
	var m laneReply
	for {
		if err := recvLaneReply(l.ws, &m); err != nil {
			l.kill(err)
			return
		}
		l.mu.Lock()
		w := l.calls[m.ID]
		l.mu.Unlock()
		if w == nil {
			continue // the answer to a call since cancelled
		}
		switch m.Kind {
		case kindError:
			l.finish(m.ID, laneResult{err: &Error{Code: m.Code, Message: m.Msg, Kind: m.Err}})
		case kindPart, kindDone:
			if len(w.buf)+len(m.Out) > l.e.maxResult {
				l.finish(m.ID, laneResult{err: &Error{Code: CodeResultTooLarge,
					Message: fmt.Sprintf("this node accepts results of at most %d bytes", l.e.maxResult)}})
				_ = l.send(&laneCall{ID: m.ID, Cancel: true})
				continue
			}
			if m.Kind == kindDone && w.buf == nil { // the usual: one piece
				l.finish(m.ID, laneResult{out: m.Out})
				continue
			}
			w.buf = append(w.buf, m.Out...)
			if m.Kind == kindDone {
				l.finish(m.ID, laneResult{out: w.buf})
			}
		}
	}
}

// callLane makes a plain call with a small input on a lane to p.
func (e *Endpoint) callLane(ctx context.Context, p peer.ID, fn string, in []byte) ([]byte, error) {
	m := &laneCall{Fn: fn, In: in}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return nil, e.ctxError(ctx, fn, p, ctx.Err())
		}
		m.Timeout = int64(left)
	}
	if err := ctx.Err(); err != nil {
		return nil, e.ctxError(ctx, fn, p, err)
	}
	var l *lane
	var w *laneWait
	// A lane may die between being picked and being used, and a new
	// connection may close before a lane opens on it; one more try then
	// dials again and opens a fresh lane. A call not wholly sent never
	// ran, so trying again cannot run it twice.
	for try := 0; ; try++ {
		var err error
		l, err = e.laneTo(ctx, p)
		if err == nil {
			if m.ID, w, err = l.start(); err == nil {
				if err = l.send(m); err == nil {
					break
				}
				l.kill(err)
			}
		}
		if ctx.Err() != nil {
			return nil, e.ctxError(ctx, fn, p, err)
		}
		if try == 1 {
			return nil, &Error{Func: fn, Peer: p, Code: CodeUnreachable, Message: err.Error(), cause: err, unsent: true}
		}
	}
	select {
	case r := <-w.done:
		return r.out, laneError(r.err, fn, p)
	case <-ctx.Done():
		l.finish(m.ID, laneResult{})
		if l.send(&laneCall{ID: m.ID, Cancel: true}) != nil {
			l.kill(errors.New("cannot send a cancellation"))
		}
		return nil, e.ctxError(ctx, fn, p, nil)
	}
}

// laneError names the call in an error from a lane: a callee's *Error, or
// the cause of the lane's end.
func laneError(err error, fn string, p peer.ID) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		re.Func, re.Peer = fn, p
		return re
	}
	e := &Error{Func: fn, Peer: p, Code: CodeUnreachable, Message: err.Error(), cause: err}
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrMalformed):
		e.Code = CodeProtocol
	case errors.Is(err, io.EOF):
		e.Message = "lane closed before the call finished"
	}
	return e
}

// handleLane serves the calls that come on one lane.
func (e *Endpoint) handleLane(s network.Stream) {
	if !e.enter() {
		_ = s.Reset()
		return
	}
	defer e.wg.Done()
	from := s.Conn().RemotePeer()
	ws := wire.NewStream(s, wire.WithMaxFrame(laneFrameMax), wire.WithoutRecvTimeout())
	// The endpoint's closing ends the lane; so does the caller's.
	stop := context.AfterFunc(e.ctx, func() { _ = s.Reset() })
	defer stop()

	var wmu sync.Mutex
	send := func(m *laneReply) error {
		wmu.Lock()
		defer wmu.Unlock()
		return ws.Send(context.Background(), m)
	}
	var mu sync.Mutex
	calls := map[uint64]context.CancelCauseFunc{}
	var wg sync.WaitGroup
	defer func() {
		_ = s.Reset()
		mu.Lock()
		for _, cancel := range calls {
			cancel(errCallerGone)
		}
		mu.Unlock()
		wg.Wait()
	}()
	limit := e.policy().maxConc*(1+queueFactor) + 16
	for {
		var m laneCall
		if err := recvLaneCall(ws, &m); err != nil {
			if !errors.Is(err, io.EOF) {
				e.log.Debug("remote: lane ended", "peer", from, "err", err)
			}
			return
		}
		mu.Lock()
		if m.Cancel {
			if cancel := calls[m.ID]; cancel != nil {
				cancel(errCallerGone)
			}
			mu.Unlock()
			continue
		}
		if _, dup := calls[m.ID]; dup {
			mu.Unlock()
			e.log.Debug("remote: lane reused a call ID", "peer", from, "id", m.ID)
			return
		}
		if len(calls) >= limit {
			mu.Unlock()
			_ = send(&laneReply{ID: m.ID, Kind: kindError, Code: CodeRefused, Msg: "too many calls under way on one lane"})
			continue
		}
		ctx, cancel := context.WithCancelCause(e.ctx)
		calls[m.ID] = cancel
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.serveLaneCall(ctx, from, &m, send)
			mu.Lock()
			delete(calls, m.ID)
			mu.Unlock()
			cancel(nil)
		}()
	}
}

// serveLaneCall runs one call that came on a lane.
func (e *Endpoint) serveLaneCall(ctx context.Context, from peer.ID, m *laneCall, send func(*laneReply) error) {
	reply := func(_ context.Context, code Code, msg string, kind errcode.Code) {
		_ = send(&laneReply{ID: m.ID, Kind: kindError, Code: code, Msg: msg, Err: kind})
	}
	pol := e.policy()
	h, st := e.admit(pol, from, m.Fn, len(m.In), false)
	if st != nil {
		reply(ctx, st.code, st.msg, "")
		return
	}
	if t := time.Duration(m.Timeout); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	ctx = withCall(ctx, from, e)
	release, err := e.acquire(ctx, from, pol)
	if err != nil {
		e.finish(ctx, m.Fn, from, err, reply, func() {})
		return
	}
	defer release()
	err = h.run(ctx, m.In, func(out []byte) error {
		for len(out) > 0 {
			r := &laneReply{ID: m.ID, Kind: kindDone, Out: out}
			if len(out) > laneChunk {
				r.Kind, r.Out = kindPart, out[:laneChunk]
			}
			if err := send(r); err != nil {
				return &sendError{err}
			}
			out = out[len(r.Out):]
		}
		return nil
	})
	if err != nil {
		e.finish(ctx, m.Fn, from, err, reply, func() {})
	}
}
