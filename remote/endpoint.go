package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/wire"
)

// Defaults of Policy and Config.
const (
	// DefaultMaxConcurrent is how many calls from one peer a node runs at
	// once unless its Policy says otherwise.
	DefaultMaxConcurrent = 16
	// DefaultMaxInput is the largest encoded input a node accepts unless
	// its Policy says otherwise.
	DefaultMaxInput = 4 << 20
	// DefaultMaxResult is the largest encoded result (or stream item) a
	// caller accepts unless its Config says otherwise.
	DefaultMaxResult = 64 << 20
	// DefaultWindow is how many bytes of streamed results a callee may
	// send ahead of what the caller has consumed.
	DefaultWindow = 1 << 20
)

// MaxInput is the largest encoded input any call may carry; a node's
// Policy may accept less.
const MaxInput = 64 << 20

// maxResultFrame caps the frames a callee sends: no caller accepts more.
const maxResultFrame = 256 << 20

// queueFactor: a peer may have this many times MaxConcurrent calls waiting
// for a slot before more are refused.
const queueFactor = 4

// callWait bounds how long a callee waits for the call frame after a
// stream opens.
const callWait = 10 * time.Second

// watchDelay is how long a plain call runs before the callee starts
// watching its stream for the caller's cancellation: a bound on how late a
// cancellation is seen, and the time under which a call costs no watcher.
const watchDelay = time.Millisecond

// Policy says which calls a node serves.
type Policy struct {
	// Allow, if not empty, lists the only peers that may call.
	Allow []peer.ID
	// Deny lists peers that may not call, whatever Allow says.
	Deny []peer.ID
	// Expose, if not empty, lists the only functions served: others are
	// "no such function" to callers, and hidden from their listing.
	Expose []string
	// MaxConcurrent is how many calls from one peer run at once; more wait
	// for a slot, and beyond four times as many waiting they are refused.
	// Zero means DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxInput is the largest encoded input accepted, in bytes. Zero means
	// DefaultMaxInput; more than MaxInput means MaxInput.
	MaxInput int
}

// Validate reports a field of p that makes no sense, naming it.
func (p Policy) Validate() error {
	switch {
	case p.MaxConcurrent < 0:
		return fmt.Errorf("remote: Policy.MaxConcurrent is negative (%d): want 0 for the default, or more", p.MaxConcurrent)
	case p.MaxInput < 0:
		return fmt.Errorf("remote: Policy.MaxInput is negative (%d): want 0 for the default, or more", p.MaxInput)
	}
	return nil
}

// Validate reports a missing or nonsensical field of c, naming it.
func (c Config) Validate() error {
	switch {
	case c.Host == nil:
		return errors.New("remote: Config.Host is required")
	case c.MaxResult < 0:
		return fmt.Errorf("remote: Config.MaxResult is negative (%d): want 0 for the default, or more", c.MaxResult)
	case c.Window < 0:
		return fmt.Errorf("remote: Config.Window is negative (%d): want 0 for the default, or more", c.Window)
	}
	return c.Policy.Validate()
}

// Streams returns how many call streams one peer can have open under p:
// those running and those waiting, plus a few in their first moments. A
// node lets the resource manager admit at least that many.
func (p Policy) Streams() int {
	return compile(p).maxConc*(1+queueFactor) + 16
}

// policy is a Policy ready for lookups.
type policy struct {
	allow, deny map[peer.ID]bool
	expose      map[string]bool
	maxConc     int
	maxInput    int
}

func compile(p Policy) *policy {
	c := &policy{maxConc: p.MaxConcurrent, maxInput: p.MaxInput}
	if c.maxConc <= 0 {
		c.maxConc = DefaultMaxConcurrent
	}
	if c.maxInput <= 0 {
		c.maxInput = DefaultMaxInput
	}
	c.maxInput = min(c.maxInput, MaxInput)
	set := func(ids []peer.ID) map[peer.ID]bool {
		m := make(map[peer.ID]bool, len(ids))
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	c.allow, c.deny = set(p.Allow), set(p.Deny)
	if len(p.Expose) > 0 {
		c.expose = map[string]bool{}
		for _, n := range p.Expose {
			c.expose[n] = true
		}
	}
	return c
}

// refuses says why p may not call, or "".
func (c *policy) refuses(p peer.ID) string {
	if c.deny[p] {
		return "this node denies calls from " + p.String()
	}
	if len(c.allow) > 0 && !c.allow[p] {
		return "this node serves calls only from its allowlist"
	}
	return ""
}

func (c *policy) exposes(name string) bool { return c.expose == nil || c.expose[name] }

// Config configures an Endpoint.
type Config struct {
	// Host is the libp2p host calls go out and come in on.
	Host host.Host
	// FindPeer, if set, finds the addresses of a peer we know no address
	// for (a DHT lookup).
	FindPeer func(context.Context, peer.ID) (peer.AddrInfo, error)
	// Policy says which calls this node serves.
	Policy Policy
	// MaxResult is the largest encoded result (or stream item) this node
	// accepts from a callee. Zero means DefaultMaxResult.
	MaxResult int
	// Window is how many bytes of streamed results a callee may send
	// ahead of what the caller has consumed. Zero means DefaultWindow.
	Window int
	// Logger receives the endpoint's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
}

// Endpoint makes and serves remote calls for one node. It serves the
// functions registered in this binary, under its Policy, on Protocol.
type Endpoint struct {
	host      host.Host
	find      func(context.Context, peer.ID) (peer.AddrInfo, error)
	log       *slog.Logger
	maxResult int
	window    int

	mu     sync.Mutex
	pol    *policy
	peers  map[peer.ID]*slots    // calls served, by caller
	pools  map[peer.ID]*lanePool // lanes for calls made, by callee
	closed bool

	ctx      context.Context // ends when the endpoint closes; parent of every served call
	cancel   context.CancelFunc
	handlers sync.Map       // name -> handler served on this endpoint alone (Handle)
	wg       sync.WaitGroup // served calls
}

// slots bounds the calls one peer runs at once. A call that finds them
// all taken waits in line; release hands its slot to the first in line.
type slots struct {
	max     int
	running int
	line    []chan struct{}
}

// New starts an Endpoint: it serves calls on cfg.Host until Close. ctx
// bounds the start only.
func New(ctx context.Context, cfg Config) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := &Endpoint{
		host:      cfg.Host,
		find:      cfg.FindPeer,
		log:       cfg.Logger,
		maxResult: cfg.MaxResult,
		window:    cfg.Window,
		pol:       compile(cfg.Policy),
		peers:     map[peer.ID]*slots{},
		pools:     map[peer.ID]*lanePool{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.maxResult <= 0 {
		e.maxResult = DefaultMaxResult
	}
	e.maxResult = min(e.maxResult, maxResultFrame-replyOverhead)
	if e.window <= 0 {
		e.window = DefaultWindow
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.host.SetStreamHandler(Protocol, e.handle)
	e.host.SetStreamHandler(LaneProtocol, e.handleLane)
	return e, nil
}

// Remote returns e itself, so that an Endpoint can be passed wherever a
// Node is expected (inside a function, Local(ctx) gives one).
func (e *Endpoint) Remote() *Endpoint { return e }

// ID returns the peer ID of the endpoint's node.
func (e *Endpoint) ID() peer.ID { return e.host.ID() }

// SetPolicy replaces the policy for calls that arrive from now on.
func (e *Endpoint) SetPolicy(p Policy) {
	c := compile(p)
	e.mu.Lock()
	e.pol = c
	e.mu.Unlock()
}

func (e *Endpoint) policy() *policy {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pol
}

// Close stops serving: calls under way see their context cancelled, and
// Close waits for them to return. Calls made by this node fail from then on.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var lanes []*lane
	for _, pool := range e.pools {
		lanes = append(lanes, pool.lanes...)
	}
	e.mu.Unlock()
	e.host.RemoveStreamHandler(Protocol)
	e.host.RemoveStreamHandler(LaneProtocol)
	e.cancel()
	for _, l := range lanes {
		l.kill(errors.New("this node is shutting down"))
	}
	e.wg.Wait()
	return nil
}

// enter registers a served call, unless the endpoint is closing.
func (e *Endpoint) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// Functions lists the functions p serves to this node.
func (e *Endpoint) Functions(ctx context.Context, p peer.ID) ([]FuncInfo, error) {
	return listFunctions.At(e, p).Call(ctx, struct{}{})
}

// listFunctions is built into every node, whatever its Policy.Expose: it
// lists what the node serves to the caller.
var listFunctions = Func("nube.functions", func(ctx context.Context, _ struct{}) ([]FuncInfo, error) {
	e, from := Local(ctx), Caller(ctx)
	pol := e.policy()
	var out []FuncInfo
	for _, fi := range e.served() {
		if from == e.ID() || pol.exposes(fi.Name) {
			out = append(out, fi)
		}
	}
	return out, nil
})

type ctxKey struct{}

// callInfo is what a function's context knows of its call.
type callInfo struct {
	from peer.ID
	e    *Endpoint
}

func withCall(ctx context.Context, from peer.ID, e *Endpoint) context.Context {
	return context.WithValue(ctx, ctxKey{}, &callInfo{from, e})
}

// Caller returns the peer that made the call a function is running for,
// from the function's context ("" outside a remote function).
func Caller(ctx context.Context) peer.ID {
	if ci, ok := ctx.Value(ctxKey{}).(*callInfo); ok {
		return ci.from
	}
	return ""
}

// Local returns the endpoint a function is running on, from the function's
// context, so that the function can make calls of its own:
//
//	out, err := Other.At(remote.Local(ctx), p).Call(ctx, in)
//
// Passing ctx on bounds the nested call by the first caller's deadline and
// cancels it with the first call. Outside a remote function Local returns
// nil.
func Local(ctx context.Context) *Endpoint {
	if ci, ok := ctx.Value(ctxKey{}).(*callInfo); ok {
		return ci.e
	}
	return nil
}

// Handle serves f on endpoint e alone, running fn: for a layer whose
// function needs its own node's state (a closure over it), where a
// package-level Func would reach that state only through a global. The
// function runs under e's Policy like any other, and callers call f as
// usual. Handle returns a func that stops serving it. It panics if f's
// name is already served on e or registered in the binary: a mistake of
// the program.
func Handle[In, Out any](e *Endpoint, f *Function[In, Out], fn func(ctx context.Context, in In) (Out, error)) (stop func()) {
	if fn == nil {
		panic(fmt.Sprintf("remote: function %q: nil func", f.name))
	}
	return e.serveOnly(f.name, &Function[In, Out]{name: f.name, fn: fn, fi: f.fi})
}

// HandleStream is Handle for a streaming function.
func HandleStream[In, Out any](e *Endpoint, f *StreamFunction[In, Out], fn func(ctx context.Context, in In, yield func(Out) error) error) (stop func()) {
	if fn == nil {
		panic(fmt.Sprintf("remote: function %q: nil func", f.name))
	}
	return e.serveOnly(f.name, &StreamFunction[In, Out]{name: f.name, fn: fn, fi: f.fi})
}

func (e *Endpoint) serveOnly(name string, h handler) func() {
	if lookup(name) != nil {
		panic(fmt.Sprintf("remote: function %q is registered in the binary already", name))
	}
	if _, dup := e.handlers.LoadOrStore(name, h); dup {
		panic(fmt.Sprintf("remote: function %q is served on this endpoint already", name))
	}
	return func() { e.handlers.CompareAndDelete(name, h) }
}

// lookup finds the function name serves here: one this endpoint handles,
// else one registered in the binary.
func (e *Endpoint) lookup(name string) handler {
	if h, ok := e.handlers.Load(name); ok {
		return h.(handler)
	}
	return lookup(name)
}

// served lists the functions this endpoint serves, sorted by name.
func (e *Endpoint) served() []FuncInfo {
	out := Registered()
	e.handlers.Range(func(_, h any) bool {
		out = append(out, h.(handler).info())
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Calls returns how many calls from p this node is running and how many
// wait for a slot.
func (e *Endpoint) Calls(p peer.ID) (running, waiting int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.peers[p]; s != nil {
		return s.running, len(s.line)
	}
	return 0, 0
}

// acquire takes one of p's call slots, waiting in line for one if all are
// taken, and returns the function that gives it back.
func (e *Endpoint) acquire(ctx context.Context, p peer.ID, pol *policy) (func(), error) {
	e.mu.Lock()
	s := e.peers[p]
	if s == nil {
		s = &slots{max: pol.maxConc}
		e.peers[p] = s
	}
	release := func() { e.release(p, s) }
	if s.running < s.max {
		s.running++
		e.mu.Unlock()
		return release, nil
	}
	if len(s.line) >= s.max*queueFactor {
		e.mu.Unlock()
		return nil, &status{CodeRefused, fmt.Sprintf("too many calls under way (this node runs %d at once per peer)", s.max)}
	}
	turn := make(chan struct{})
	s.line = append(s.line, turn)
	e.mu.Unlock()
	select {
	case <-turn:
		return release, nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	for i, c := range s.line {
		if c == turn {
			s.line = slices.Delete(s.line, i, i+1)
			e.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	e.mu.Unlock()
	release() // our turn came as ctx ended: pass it on
	return nil, ctx.Err()
}

// release gives back a slot of p's: to the first call in line, or to the
// pool, forgetting p once it has nothing under way.
func (e *Endpoint) release(p peer.ID, s *slots) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(s.line) > 0 {
		close(s.line[0])
		s.line = s.line[1:]
		return
	}
	if s.running--; s.running == 0 && e.peers[p] == s {
		delete(e.peers, p)
	}
}

// errCallerGone is the cause of a served call's context when the caller
// cancelled or its stream broke.
var errCallerGone = errors.New("caller cancelled or went away")

// sendError is a failure to send a frame to the caller: nothing more can
// be said to it.
type sendError struct{ err error }

func (e *sendError) Error() string { return "send to caller: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

func (e *Endpoint) handle(s network.Stream) {
	if !e.enter() {
		_ = s.Reset()
		return
	}
	defer e.wg.Done()
	e.serve(s, s.Conn().RemotePeer())
}

// serve runs one call that arrived on s.
func (e *Endpoint) serve(s network.Stream, from peer.ID) {
	pol := e.policy()
	ws := wire.NewStream(s, wire.WithMaxFrame(pol.maxInput+callOverhead), wire.WithMaxSend(maxResultFrame), wire.WithoutRecvTimeout())
	reply := func(ctx context.Context, code Code, msg string, kind errcode.Code) {
		if err := ws.Send(ctx, &replyMsg{Kind: kindError, Code: code, Msg: msg, Err: kind}); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	}
	if why := pol.refuses(from); why != "" { // before reading a byte of input
		reply(e.ctx, CodeRefused, why, "")
		return
	}
	first, cancel := context.WithTimeout(e.ctx, callWait)
	m, err := recvCall(first, ws)
	cancel()
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		reply(e.ctx, CodeInputTooLarge, tooLarge(pol), "")
		return
	case err != nil:
		e.log.Debug("remote: bad call", "peer", from, "err", err)
		_ = s.Reset()
		return
	}
	h, st := e.admit(pol, from, m.Fn, len(m.In), m.Stream)
	if st != nil {
		reply(e.ctx, st.code, st.msg, "")
		return
	}

	ctx, cancelCall := context.WithCancelCause(e.ctx)
	defer cancelCall(nil)
	if t := m.timeout(); t > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, t)
		defer cancelT()
	}
	ctx = withCall(ctx, from, e)

	// The caller's half of the stream carries credits (for a stream), and
	// its end says the caller cancelled or went away. A watcher reads it:
	// from the start for a stream, and for a plain call only once the
	// function has run for watchDelay, so that quick calls cost no extra
	// goroutine.
	var cr *credit
	watched := make(chan struct{})
	watch := func() {
		defer close(watched)
		for {
			var c creditMsg
			if err := ws.Recv(context.Background(), &c); err != nil {
				cancelCall(errCallerGone)
				return
			}
			if cr != nil {
				cr.add(int(c.Bytes))
			}
		}
	}
	var later *time.Timer
	if m.Stream {
		cr = newCredit(int(m.Window))
		go watch()
	} else {
		later = time.AfterFunc(watchDelay, watch)
	}
	defer func() {
		// Every return below closes or resets the stream first, which
		// ends the watcher if it runs.
		if later == nil || !later.Stop() {
			<-watched
		}
	}()

	release, err := e.acquire(ctx, from, pol)
	if err != nil {
		e.finish(ctx, m.Fn, from, err, reply, func() { _ = s.Reset() })
		return
	}
	defer release()

	var emit func([]byte) error
	if h.info().Stream {
		emit = func(out []byte) error {
			if err := cr.wait(ctx, len(out)); err != nil {
				return err
			}
			if err := ws.Send(ctx, &replyMsg{Kind: kindItem, Out: out}); err != nil {
				return &sendError{err}
			}
			return nil
		}
	} else {
		emit = func(out []byte) error {
			if err := ws.Send(ctx, &replyMsg{Kind: kindDone, Out: out}); err != nil {
				return &sendError{err}
			}
			return nil
		}
	}
	err = h.run(ctx, m.In, emit)
	if err == nil && h.info().Stream {
		if serr := ws.Send(ctx, &replyMsg{Kind: kindDone}); serr != nil {
			err = &sendError{serr}
		}
	}
	if err == nil {
		_ = s.Close()
		return
	}
	e.finish(ctx, m.Fn, from, err, reply, func() { _ = s.Reset() })
}

// admit decides whether a call from p to fn, with inLen bytes of input,
// runs here, and returns the function's handler if so.
func (e *Endpoint) admit(pol *policy, p peer.ID, fn string, inLen int, stream bool) (handler, *status) {
	if why := pol.refuses(p); why != "" {
		return nil, &status{CodeRefused, why}
	}
	if inLen > pol.maxInput {
		return nil, &status{CodeInputTooLarge, tooLarge(pol)}
	}
	h := e.lookup(fn)
	if h == nil || !(pol.exposes(fn) || fn == listFunctions.name) {
		return nil, &status{CodeNoSuchFunction, fmt.Sprintf("%q is not served here", fn)}
	}
	if h.info().Stream != stream {
		return nil, &status{CodeBadInput, kindMismatch(fn, h.info().Stream)}
	}
	return h, nil
}

func tooLarge(pol *policy) string {
	return fmt.Sprintf("this node accepts at most %d bytes of input", pol.maxInput)
}

// finish tells the caller how its call failed (reply), or drops the call
// (drop) if the caller is gone or cannot be told.
func (e *Endpoint) finish(ctx context.Context, fn string, from peer.ID, err error, reply func(context.Context, Code, string, errcode.Code), drop func()) {
	var se *sendError
	if errors.As(err, &se) || errors.Is(context.Cause(ctx), errCallerGone) || e.ctx.Err() != nil {
		drop()
		return
	}
	code, msg := classify(ctx, err)
	var kind errcode.Code
	if code == CodeCallee {
		// The kind of the function's own error travels with it, so that
		// the caller's errors.Is finds the sentinels of that kind.
		if kind = errcode.Of(err); kind == errcode.Internal {
			kind = ""
		}
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		e.log.Warn("remote: function panicked", "func", fn, "peer", from, "panic", pe.Value, "stack", string(pe.Stack))
	}
	if len(msg) > maxErrMsg {
		msg = msg[:maxErrMsg]
	}
	// The call's own context may have ended (its deadline): the reply
	// still goes out, bounded by the stream's write timeout.
	reply(e.ctx, code, msg, kind)
}

// classify turns a function's failure into the code and message sent to
// the caller.
func classify(ctx context.Context, err error) (Code, string) {
	var pe *PanicError
	var st *status
	switch {
	case errors.As(err, &pe):
		return CodePanicked, fmt.Sprint(pe.Value)
	case errors.As(err, &st):
		return st.code, st.msg
	case errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return CodeDeadline, err.Error()
	default:
		return CodeCallee, err.Error()
	}
}

// credit is the room a streaming callee has left to send results.
type credit struct {
	mu    sync.Mutex
	avail int
	wake  chan struct{} // signalled when avail grows
}

func newCredit(window int) *credit {
	if window <= 0 {
		window = DefaultWindow
	}
	return &credit{avail: window, wake: make(chan struct{}, 1)}
}

// creditWaitHook, if set (by tests), is called with true when a callee
// starts to wait for credit (flow control holds it back) and with false
// when the wait ends.
var creditWaitHook atomic.Pointer[func(waiting bool)]

// wait returns once there is room to send n bytes (a result larger than
// the window goes out once the caller has consumed everything before it),
// and takes the room.
func (c *credit) wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.avail > 0 {
			c.avail -= n
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		h := creditWaitHook.Load()
		if h != nil {
			(*h)(true)
		}
		select {
		case <-c.wake:
		case <-ctx.Done():
		}
		if h != nil {
			(*h)(false)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (c *credit) add(n int) {
	c.mu.Lock()
	c.avail += n
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
