package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// Node is a local node that makes remote calls: *nube.Node is one, and so
// is *Endpoint (which Local returns inside a function).
type Node interface {
	Remote() *Endpoint
}

// inlineWrite is the largest call frame written before the caller starts
// reading. Larger ones are written while the caller reads, so that a callee
// that refuses the input early (too large) is heard instead of leaving the
// write stuck on a full flow-control window.
const inlineWrite = 64 << 10

// maxFanOut bounds the calls OnAll and Any have under way at once.
const maxFanOut = 64

// Target is a function bound to a peer, ready to call.
type Target[In, Out any] struct {
	f *Function[In, Out]
	e *Endpoint
	p peer.ID
}

// At binds f to peer p, to be called from node n. p may be n itself: the
// call then runs in this process, through the same encoding.
func (f *Function[In, Out]) At(n Node, p peer.ID) Target[In, Out] {
	return Target[In, Out]{f: f, e: endpointOf(n), p: p}
}

// Call runs the function on the target peer and returns its result. ctx's
// deadline bounds the call on both sides, and cancelling ctx cancels the
// function's context on the peer. The error, if any, is an *Error.
func (t Target[In, Out]) Call(ctx context.Context, in In) (Out, error) {
	var zero Out
	raw, err := encodeInput(t.f.name, t.p, in)
	if err != nil {
		return zero, err
	}
	b, err := t.e.callRaw(ctx, t.p, t.f.name, raw)
	if err != nil {
		return zero, err
	}
	return decodeResult[Out](t.f.name, t.p, b)
}

// Result is one peer's answer to a fan-out call.
type Result[Out any] struct {
	Value Out
	Err   error // an *Error, or nil
}

// OnAll calls the function on every peer at once (at most 64 under way)
// and yields each peer's result as it arrives. A peer that dies or cannot
// be reached yields an error that Is ErrUnreachable; the others are not
// held up by it. Breaking out of the loop cancels the calls still under
// way, and OnAll returns once they have ended.
func (f *Function[In, Out]) OnAll(ctx context.Context, n Node, peers []peer.ID, in In) iter.Seq2[peer.ID, Result[Out]] {
	return func(yield func(peer.ID, Result[Out]) bool) {
		e := endpointOf(n)
		raw, err := encodeInput(f.name, "", in)
		if err != nil {
			for _, p := range peers {
				if !yield(p, Result[Out]{Err: err}) {
					return
				}
			}
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		type answer struct {
			p peer.ID
			r Result[Out]
		}
		answers := make(chan answer, len(peers))
		slots := make(chan struct{}, maxFanOut)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		for _, p := range peers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var a answer
				a.p = p
				select {
				case slots <- struct{}{}:
					b, err := e.callRaw(ctx, p, f.name, raw)
					<-slots
					if err == nil {
						a.r.Value, err = decodeResult[Out](f.name, p, b)
					}
					a.r.Err = err
				case <-ctx.Done():
					a.r.Err = e.ctxError(ctx, f.name, p, nil)
				}
				answers <- a
			}()
		}
		for range peers {
			a := <-answers
			if !yield(a.p, a.r) {
				return
			}
		}
	}
}

// Any calls the function on the peers at once and returns the first
// success; the calls still under way are cancelled. If every call fails,
// the error joins all their errors (errors.Is finds any of them).
func (f *Function[In, Out]) Any(ctx context.Context, n Node, peers []peer.ID, in In) (Out, error) {
	var zero Out
	if len(peers) == 0 {
		return zero, fmt.Errorf("remote call %s: no peers to call", f.name)
	}
	var errs []error
	for _, r := range f.OnAll(ctx, n, peers, in) {
		if r.Err == nil {
			return r.Value, nil
		}
		errs = append(errs, r.Err)
	}
	return zero, fmt.Errorf("remote call %s: all %d peers failed: %w", f.name, len(peers), errors.Join(errs...))
}

// StreamTarget is a streaming function bound to a peer, ready to call.
type StreamTarget[In, Out any] struct {
	f *StreamFunction[In, Out]
	e *Endpoint
	p peer.ID
}

// At binds f to peer p, to be called from node n.
func (f *StreamFunction[In, Out]) At(n Node, p peer.ID) StreamTarget[In, Out] {
	return StreamTarget[In, Out]{f: f, e: endpointOf(n), p: p}
}

// Call runs the streaming function on the target peer and yields its
// results in order. The callee sends only as far ahead of the loop as the
// caller's window allows, so a slow loop slows the callee and memory stays
// bounded. A failure ends the sequence with one (zero, err) pair. Breaking
// out of the loop cancels the callee.
func (t StreamTarget[In, Out]) Call(ctx context.Context, in In) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		raw, err := encodeInput(t.f.name, t.p, in)
		if err != nil {
			yield(zero, err)
			return
		}
		var stopped bool
		var bad error
		err = t.e.streamRaw(ctx, t.p, t.f.name, raw, func(b []byte) bool {
			v, err := decodeResult[Out](t.f.name, t.p, b)
			if err != nil {
				bad = err
				return false
			}
			if !yield(v, nil) {
				stopped = true
				return false
			}
			return true
		})
		switch {
		case stopped:
		case bad != nil:
			yield(zero, bad)
		case err != nil:
			yield(zero, err)
		}
	}
}

func endpointOf(n Node) *Endpoint {
	if n == nil {
		return nil
	}
	return n.Remote()
}

func encodeInput(fn string, p peer.ID, in any) ([]byte, error) {
	b, err := wire.Marshal(in)
	if err != nil {
		return nil, &Error{Func: fn, Peer: p, Code: CodeBadInput, Message: err.Error(), cause: err}
	}
	return b, nil
}

func decodeResult[Out any](fn string, p peer.ID, b []byte) (Out, error) {
	var v Out
	if err := wire.Unmarshal(b, &v); err != nil {
		return v, &Error{Func: fn, Peer: p, Code: CodeProtocol,
			Message: fmt.Sprintf("result does not decode into %s: %v", reflect.TypeFor[Out](), err), cause: err}
	}
	return v, nil
}

// ctxError is the error of a call that ctx ended.
func (e *Endpoint) ctxError(ctx context.Context, fn string, p peer.ID, cause error) *Error {
	code := CodeCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = CodeDeadline
	}
	return &Error{Func: fn, Peer: p, Code: code, cause: cause}
}

// outCall is a call this node made, on its stream.
type outCall struct {
	e     *Endpoint
	p     peer.ID
	fn    string
	s     network.Stream
	ws    *wire.Stream
	wrote chan error // the write of a large call frame; nil once known done
	// creditFailed: a credit could not be sent; send no more.
	creditFailed bool
}

// open starts a call to p: it opens a stream and sends the call frame.
func (e *Endpoint) open(ctx context.Context, p peer.ID, fn string, in []byte, stream bool) (*outCall, error) {
	if e == nil {
		return nil, &Error{Func: fn, Peer: p, Code: CodeUnreachable, Message: "no local node to call from", unsent: true}
	}
	if len(in) > MaxInput {
		return nil, &Error{Func: fn, Peer: p, Code: CodeInputTooLarge, Message: fmt.Sprintf("%d bytes, over the limit of %d for any call", len(in), MaxInput)}
	}
	m := &callMsg{Fn: fn, In: in, Stream: stream}
	if stream {
		m.Window = uint32(e.window)
	}
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
	// A connection may close between being made and carrying the
	// stream: one more try dials again.
	var s network.Stream
	for try := 0; ; try++ {
		err := e.reach(ctx, p)
		if err == nil {
			if s, err = e.host.NewStream(network.WithAllowLimitedConn(ctx, "remote call"), p, Protocol); err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			return nil, e.ctxError(ctx, fn, p, err)
		}
		if try == 1 {
			return nil, &Error{Func: fn, Peer: p, Code: CodeUnreachable, Message: err.Error(), cause: err, unsent: true}
		}
	}
	c := &outCall{e: e, p: p, fn: fn, s: s,
		ws: wire.NewStream(s, wire.WithMaxFrame(e.maxResult+replyOverhead), wire.WithMaxSend(MaxInput+callOverhead), wire.WithoutRecvTimeout())}
	if len(in) <= inlineWrite {
		if err := c.ws.Send(ctx, m); err != nil {
			_ = s.Reset()
			err = c.fail(ctx, err)
			if re := (*Error)(nil); errors.As(err, &re) {
				re.unsent = true // a frame not wholly sent is never run
			}
			return nil, err
		}
		return c, nil
	}
	c.wrote = make(chan error, 1)
	go func() { c.wrote <- c.ws.Send(ctx, m) }()
	return c, nil
}

// reach connects to p unless it is connected, asking FindPeer for its
// addresses if none is known. (A node's host asks its DHT again when the
// known addresses fail.)
func (e *Endpoint) reach(ctx context.Context, p peer.ID) error {
	if p == "" {
		return errors.New("no peer ID")
	}
	switch e.host.Network().Connectedness(p) {
	case network.Connected, network.Limited:
		return nil
	}
	ai := peer.AddrInfo{ID: p}
	if e.find != nil && len(e.host.Peerstore().Addrs(p)) == 0 {
		var err error
		if ai, err = e.find(ctx, p); err != nil {
			return fmt.Errorf("find peer: %w", err)
		}
	}
	return e.host.Connect(network.WithAllowLimitedConn(ctx, "remote call"), ai)
}

// recv reads the next reply frame.
func (c *outCall) recv(ctx context.Context) (replyMsg, error) {
	m, err := recvReply(ctx, c.ws)
	if err != nil {
		return m, c.fail(ctx, err)
	}
	return m, nil
}

// fail turns a stream error into the call's error.
func (c *outCall) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return c.e.ctxError(ctx, c.fn, c.p, err)
	}
	e := &Error{Func: c.fn, Peer: c.p, Code: CodeUnreachable, Message: err.Error(), cause: err}
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		e.Code, e.Message = CodeResultTooLarge, fmt.Sprintf("this node accepts results of at most %d bytes", c.e.maxResult)
	case errors.Is(err, wire.ErrMalformed):
		e.Code = CodeProtocol
	case errors.Is(err, io.EOF):
		e.Message = "stream closed before the call finished"
	}
	return e
}

// remoteError is the error a callee sent.
func (c *outCall) remoteError(m replyMsg) error {
	return &Error{Func: c.fn, Peer: c.p, Code: m.Code, Message: m.Msg, Kind: m.Err}
}

// end closes the stream after a complete exchange, or resets it (which
// cancels the callee) after anything else.
func (c *outCall) end(complete bool) {
	if complete && c.wrote == nil {
		_ = c.s.Close()
	} else {
		_ = c.s.Reset()
	}
	if c.wrote != nil {
		<-c.wrote
		c.wrote = nil
	}
}

// callRaw makes a plain call with encoded input and returns the encoded
// result.
func (e *Endpoint) callRaw(ctx context.Context, p peer.ID, fn string, in []byte) ([]byte, error) {
	if e != nil && p == e.ID() {
		return e.callSelf(ctx, fn, in)
	}
	if e != nil && len(in) <= laneMaxInput {
		return e.callLane(ctx, p, fn, in)
	}
	c, err := e.open(ctx, p, fn, in, false)
	if err != nil {
		return nil, err
	}
	m, err := c.recv(ctx)
	if err != nil {
		c.end(false)
		return nil, err
	}
	switch m.Kind {
	case kindDone:
		if len(m.Out) == 0 {
			c.end(false)
			return nil, &Error{Func: fn, Peer: p, Code: CodeProtocol, Message: "reply without a result"}
		}
		c.end(true)
		return m.Out, nil
	case kindError:
		c.end(false)
		return nil, c.remoteError(m)
	default:
		c.end(false)
		return nil, &Error{Func: fn, Peer: p, Code: CodeProtocol, Message: "a stream item in reply to a plain call"}
	}
}

// streamRaw makes a streaming call and passes each encoded result to
// yield, which returns false to stop (and so cancel the callee).
func (e *Endpoint) streamRaw(ctx context.Context, p peer.ID, fn string, in []byte, yield func([]byte) bool) error {
	if e != nil && p == e.ID() {
		return e.streamSelf(ctx, fn, in, yield)
	}
	c, err := e.open(ctx, p, fn, in, true)
	if err != nil {
		return err
	}
	consumed := 0
	for {
		m, err := c.recv(ctx)
		if err != nil {
			c.end(false)
			return err
		}
		switch m.Kind {
		case kindItem:
			// Grant credit in batches of half a window: one small frame
			// back per half window of results.
			// A credit that cannot be sent is no failure: the callee
			// may have sent its last result and closed its side. If it
			// is gone, the next read says so.
			if consumed += len(m.Out); consumed >= e.window/2 && !c.creditFailed {
				c.creditFailed = c.credit(ctx, consumed) != nil
				consumed = 0
			}
			if !yield(m.Out) {
				c.end(false)
				return nil
			}
		case kindDone:
			c.end(true)
			return nil
		default:
			c.end(false)
			return c.remoteError(m)
		}
	}
}

// credit tells the callee it may send n more bytes.
func (c *outCall) credit(ctx context.Context, n int) error {
	if c.wrote != nil { // results only follow the whole call frame
		if err := <-c.wrote; err != nil {
			c.wrote = nil
			return c.fail(ctx, err)
		}
		c.wrote = nil
	}
	if err := c.ws.Send(ctx, &creditMsg{Bytes: uint32(n)}); err != nil {
		return c.fail(ctx, err)
	}
	return nil
}

// selfCall runs a call to this very node: the function runs in a goroutine
// the endpoint owns, with the same encoding as a remote call, so that the
// caller still returns at its deadline even if the function ignores it.
func (e *Endpoint) selfCall(ctx context.Context, fn string, in []byte, stream bool, emit func(context.Context, []byte) error) (<-chan error, error) {
	h := e.lookup(fn)
	if h == nil {
		return nil, &Error{Func: fn, Peer: e.ID(), Code: CodeNoSuchFunction, Message: fmt.Sprintf("%q is not served here", fn)}
	}
	if h.info().Stream != stream {
		return nil, &Error{Func: fn, Peer: e.ID(), Code: CodeBadInput, Message: kindMismatch(fn, h.info().Stream)}
	}
	if !e.enter() {
		return nil, &Error{Func: fn, Peer: e.ID(), Code: CodeUnreachable, Message: "this node is shutting down", unsent: true}
	}
	done := make(chan error, 1)
	go func() {
		defer e.wg.Done()
		done <- h.run(withCall(ctx, e.ID(), e), in, func(b []byte) error { return emit(ctx, b) })
	}()
	return done, nil
}

func kindMismatch(fn string, isStream bool) string {
	if isStream {
		return fmt.Sprintf("%q is a streaming function: call it as one", fn)
	}
	return fmt.Sprintf("%q is a plain function, not a streaming one", fn)
}

func (e *Endpoint) selfError(ctx context.Context, fn string, err error) error {
	if ctx.Err() != nil {
		return e.ctxError(ctx, fn, e.ID(), err)
	}
	code, msg := classify(ctx, err)
	return &Error{Func: fn, Peer: e.ID(), Code: code, Message: msg, cause: err}
}

func (e *Endpoint) callSelf(ctx context.Context, fn string, in []byte) ([]byte, error) {
	var out []byte
	done, err := e.selfCall(ctx, fn, in, false, func(_ context.Context, b []byte) error { out = b; return nil })
	if err != nil {
		return nil, err
	}
	select {
	case err := <-done:
		if err != nil {
			return nil, e.selfError(ctx, fn, err)
		}
		return out, nil
	case <-ctx.Done():
		return nil, e.ctxError(ctx, fn, e.ID(), nil)
	}
}

func (e *Endpoint) streamSelf(ctx context.Context, fn string, in []byte, yield func([]byte) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan []byte)
	done, err := e.selfCall(ctx, fn, in, true, func(ctx context.Context, b []byte) error {
		select {
		case items <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		return err
	}
	for {
		select {
		case b := <-items:
			if !yield(b) {
				return nil
			}
		case err := <-done:
			// Every item was handed over before the function returned:
			// the sends are unbuffered.
			if err != nil {
				return e.selfError(ctx, fn, err)
			}
			return nil
		case <-ctx.Done():
			return e.ctxError(ctx, fn, e.ID(), nil)
		}
	}
}
