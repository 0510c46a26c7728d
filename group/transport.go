package group

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// rpcTimeout bounds each step of an RPC (a frame written or read); a
// snapshot's steps are its chunks.
const rpcTimeout = 10 * time.Second

// maxPipeline is how many appends may be in flight on one pipeline.
const maxPipeline = 64

// maxIdle is how many idle streams a transport keeps per peer.
const maxIdle = 4

var errClosed = errors.New("transport closed")

// transport is raft's Transport for one group, over libp2p streams that
// speak Protocol. A server address and a server ID are both the member's
// peer ID.
type transport struct {
	host   host.Host
	group  string
	find   func(context.Context, peer.ID) (peer.AddrInfo, error)
	health *health // which members fail to answer

	consumer  chan raft.RPC
	heartbeat atomic.Pointer[func(raft.RPC)]

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	idle    map[peer.ID][]*rconn
	contact map[peer.ID]time.Time // last answer from each peer
	wg      sync.WaitGroup

	addrs sync.Map // peer.ID → its raft address as bytes, encoded once

	snapshots atomic.Int64 // snapshots installed from the leader

	// What a leader knows to tell its followers of the commit (tell):
	// its commit index, and how far each follower's log is known to
	// match its own in its term.
	commit  atomic.Pointer[func() uint64]
	matchMu sync.Mutex
	match   map[peer.ID]matched
}

// matched is how far a follower's log matches the leader's: up to Index,
// as a successful append of the leader's term Term showed.
type matched struct{ Term, Index uint64 }

// matchedBy notes what a successful append to p showed of p's log.
func (t *transport) matchedBy(p peer.ID, args *raft.AppendEntriesRequest) {
	idx := args.PrevLogEntry
	if n := len(args.Entries); n > 0 {
		idx = args.Entries[n-1].Index
	}
	if idx == 0 {
		return
	}
	t.matchMu.Lock()
	defer t.matchMu.Unlock()
	if m := t.match[p]; m.Term < args.Term || m.Term == args.Term && m.Index < idx {
		t.match[p] = matched{args.Term, idx}
	}
}

// heartbeatCommit is the commit index a heartbeat of term to p may carry:
// raft sends none with a heartbeat, which carries no entries and so no
// check that the follower's log matches the leader's; a follower told of
// a commit applies its own entries up to it. It may be told safely of a
// commit up to the entry its log is known to match in this term: the
// entries up to there are the leader's, and no leader of this term
// changes them.
func heartbeatCommit(m matched, term, commit uint64) uint64 {
	if m.Term != term {
		return 0
	}
	return min(m.Index, commit)
}

// addr returns p's raft address: its peer ID in text, encoded once.
func (t *transport) addr(p peer.ID) []byte {
	if a, ok := t.addrs.Load(p); ok {
		return a.([]byte)
	}
	a := []byte(p.String())
	t.addrs.Store(p, a)
	return a
}

func newTransport(h host.Host, group string, find func(context.Context, peer.ID) (peer.AddrInfo, error), health *health) *transport {
	t := &transport{
		host: h, group: group, find: find, health: health,
		consumer: make(chan raft.RPC),
		idle:     map[peer.ID][]*rconn{},
		contact:  map[peer.ID]time.Time{},
		match:    map[peer.ID]matched{},
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

func (t *transport) Consumer() <-chan raft.RPC            { return t.consumer }
func (t *transport) LocalAddr() raft.ServerAddress        { return raft.ServerAddress(t.host.ID().String()) }
func (t *transport) SetHeartbeatHandler(f func(raft.RPC)) { t.heartbeat.Store(&f) }
func (t *transport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte {
	return []byte(a)
}
func (t *transport) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// Close ends the transport's streams; RPCs under way fail.
func (t *transport) Close() error {
	t.cancel()
	t.mu.Lock()
	for p, cs := range t.idle {
		for _, c := range cs {
			c.s.Reset()
		}
		delete(t.idle, p)
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// lastContact returns when p last answered this node, zero if never.
func (t *transport) lastContact(p peer.ID) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.contact[p]
}

func (t *transport) heard(p peer.ID) {
	t.mu.Lock()
	t.contact[p] = time.Now()
	t.mu.Unlock()
	t.health.reached(p)
}

// failed notes an RPC to p that failed, unless the transport is closing.
func (t *transport) failed(p peer.ID, err error) {
	if t.ctx.Err() == nil {
		t.health.failed(p, err)
	}
}

// rconn is one open stream to a member.
type rconn struct {
	p  peer.ID
	s  network.Stream
	ws *wire.Stream
}

func target(a raft.ServerAddress) (peer.ID, error) {
	p, err := peer.Decode(string(a))
	if err != nil {
		return "", fmt.Errorf("raft address %q is not a peer ID: %w", a, err)
	}
	return p, nil
}

// open opens a stream to p for the group and says hello.
func (t *transport) open(p peer.ID) (*rconn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, rpcTimeout)
	defer cancel()
	if t.host.Network().Connectedness(p) != network.Connected && len(t.host.Peerstore().Addrs(p)) == 0 && t.find != nil {
		if _, err := t.find(ctx, p); err != nil {
			return nil, fmt.Errorf("find %s: %w", p, err)
		}
	}
	s, err := t.host.NewStream(ctx, p, Protocol)
	if err != nil {
		if t.ctx.Err() != nil {
			return nil, errClosed
		}
		return nil, err
	}
	c := &rconn{p: p, s: s, ws: wire.NewStream(s, wire.WithMaxFrame(maxFrame), wire.WithMaxSend(maxFrame), wire.WithTimeout(rpcTimeout))}
	if err := c.ws.Send(ctx, hello{Group: t.group}); err != nil {
		s.Reset()
		return nil, err
	}
	var r helloReply
	if err := c.ws.Recv(ctx, &r); err != nil {
		s.Reset()
		return nil, err
	}
	if r.Err != "" {
		s.Reset()
		return nil, fmt.Errorf("%s refused: %s", p, r.Err)
	}
	return c, nil
}

// get returns an idle stream to p or opens one.
func (t *transport) get(p peer.ID) (*rconn, error) {
	t.mu.Lock()
	if cs := t.idle[p]; len(cs) > 0 {
		c := cs[len(cs)-1]
		t.idle[p] = cs[:len(cs)-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	return t.open(p)
}

// put keeps c for the next RPC, or closes it if enough are idle.
func (t *transport) put(c *rconn) {
	t.mu.Lock()
	if t.ctx.Err() == nil && len(t.idle[c.p]) < maxIdle {
		t.idle[c.p] = append(t.idle[c.p], c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	c.s.Close()
}

// call makes one RPC to a: req out, the answer into resp. data, for a
// snapshot, follows the request as chunks.
func (t *transport) call(a raft.ServerAddress, req *request, data io.Reader, resp any) error {
	p, err := target(a)
	if err != nil {
		return err
	}
	c, err := t.get(p)
	if err != nil {
		t.failed(p, err)
		return err
	}
	if err := t.exchange(c, req, data, resp); err != nil {
		c.s.Reset()
		if pe := (*peerError)(nil); errors.As(err, &pe) {
			t.health.refused(p, err) // it answered
		} else {
			t.failed(p, err)
		}
		return err
	}
	t.put(c)
	return nil
}

func (t *transport) exchange(c *rconn, req *request, data io.Reader, resp any) error {
	ctx := t.ctx
	if err := c.ws.Send(ctx, req); err != nil {
		return err
	}
	if data != nil {
		if err := sendChunks(ctx, c.ws, data, req.Size); err != nil {
			return err
		}
	}
	var r response
	if err := c.ws.Recv(ctx, &r); err != nil {
		return err
	}
	t.heard(c.p)
	return r.fill(t.addr(c.p), resp)
}

// sendChunks sends size bytes of data as frames of at most snapshotChunk.
func sendChunks(ctx context.Context, ws *wire.Stream, data io.Reader, size int64) error {
	buf := make([]byte, snapshotChunk)
	for size > 0 {
		n, err := io.ReadFull(data, buf[:min(int64(len(buf)), size)])
		if err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		if err := ws.Send(ctx, buf[:n]); err != nil {
			return err
		}
		size -= int64(n)
	}
	return nil
}

func (t *transport) AppendEntries(_ raft.ServerID, a raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	req := appendRequest(args)
	p, _ := target(a)
	if commit := t.commit.Load(); commit != nil && isHeartbeat(args) {
		t.matchMu.Lock()
		req.Commit = heartbeatCommit(t.match[p], args.Term, (*commit)())
		t.matchMu.Unlock()
	}
	if err := t.call(a, &req, nil, resp); err != nil {
		return err
	}
	if resp.Success {
		t.matchedBy(p, args)
	}
	return nil
}

func appendRequest(args *raft.AppendEntriesRequest) request {
	req := request{Kind: rpcAppend, Version: int(args.ProtocolVersion), Term: args.Term,
		PrevIndex: args.PrevLogEntry, PrevTerm: args.PrevLogTerm, Commit: args.LeaderCommitIndex}
	if len(args.Entries) > 0 {
		req.Entries = make([]wireLog, len(args.Entries))
		for i, l := range args.Entries {
			req.Entries[i] = toWireLog(l)
		}
	}
	return req
}

func (t *transport) RequestVote(_ raft.ServerID, a raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(a, &request{Kind: rpcVote, Version: int(args.ProtocolVersion), Term: args.Term,
		LastIndex: args.LastLogIndex, LastTerm: args.LastLogTerm, Transfer: args.LeadershipTransfer}, nil, resp)
}

func (t *transport) RequestPreVote(_ raft.ServerID, a raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(a, &request{Kind: rpcPreVote, Version: int(args.ProtocolVersion), Term: args.Term,
		LastIndex: args.LastLogIndex, LastTerm: args.LastLogTerm}, nil, resp)
}

func (t *transport) InstallSnapshot(_ raft.ServerID, a raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.call(a, &request{Kind: rpcSnapshot, Version: int(args.ProtocolVersion), SnapVersion: int(args.SnapshotVersion),
		Term: args.Term, LastIndex: args.LastLogIndex, LastTerm: args.LastLogTerm, Size: args.Size,
		Config: args.Configuration, ConfigIndex: args.ConfigurationIndex}, data, resp)
}

func (t *transport) TimeoutNow(_ raft.ServerID, a raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(a, &request{Kind: rpcTimeoutNow, Version: int(args.ProtocolVersion)}, nil, resp)
}

// AppendEntriesPipeline sends appends on a stream of their own, without
// waiting for each answer before the next request.
func (t *transport) AppendEntriesPipeline(_ raft.ServerID, a raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := target(a)
	if err != nil {
		return nil, err
	}
	c, err := t.open(p)
	if err != nil {
		t.failed(p, err)
		return nil, err
	}
	pl := &pipeline{t: t, c: c, inflight: make(chan *appendFuture, maxPipeline), done: make(chan raft.AppendFuture, maxPipeline)}
	pl.ctx, pl.cancel = context.WithCancel(t.ctx)
	t.wg.Add(1)
	go pl.receive()
	return pl, nil
}

type pipeline struct {
	t        *transport
	c        *rconn
	ctx      context.Context
	cancel   context.CancelFunc
	inflight chan *appendFuture
	done     chan raft.AppendFuture
	once     sync.Once
}

func (pl *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	f := &appendFuture{start: time.Now(), req: args, resp: resp, err: make(chan error, 1)}
	req := appendRequest(args)
	// Queue the future first, so that the receiver expects the answer
	// before it can arrive; a full queue holds the sender back.
	select {
	case pl.inflight <- f:
	case <-pl.ctx.Done():
		return nil, raft.ErrPipelineShutdown
	}
	if err := pl.c.ws.Send(pl.ctx, &req); err != nil {
		pl.Close()
		return nil, err
	}
	return f, nil
}

func (pl *pipeline) Consumer() <-chan raft.AppendFuture { return pl.done }

func (pl *pipeline) Close() error {
	pl.once.Do(func() {
		pl.cancel()
		pl.c.s.Reset()
	})
	return nil
}

// receive reads the answers in order and hands each future to raft.
func (pl *pipeline) receive() {
	defer pl.t.wg.Done()
	for {
		var f *appendFuture
		select {
		case f = <-pl.inflight:
		case <-pl.ctx.Done():
			return
		}
		var r response
		err := pl.c.ws.Recv(pl.ctx, &r)
		if err == nil {
			pl.t.heard(pl.c.p)
			err = r.fill(pl.t.addr(pl.c.p), f.resp)
		}
		if err == nil && f.resp.Success {
			pl.t.matchedBy(pl.c.p, f.req)
		}
		f.err <- err
		select {
		case pl.done <- f:
		case <-pl.ctx.Done():
			return
		}
		if err != nil {
			pl.Close()
			return
		}
	}
}

type appendFuture struct {
	start time.Time
	req   *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	err   chan error
	once  sync.Once
	e     error
}

func (f *appendFuture) Error() error {
	f.once.Do(func() { f.e = <-f.err })
	return f.e
}
func (f *appendFuture) Start() time.Time                      { return f.start }
func (f *appendFuture) Request() *raft.AppendEntriesRequest   { return f.req }
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }

// serve answers the requests on a stream from member from, accepted by
// the manager, until the stream ends or the transport closes.
func (t *transport) serve(from peer.ID, ws *wire.Stream) error {
	for {
		var req request
		if err := ws.Recv(t.ctx, &req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		cmd, err := req.command(t.addr(from))
		if err != nil {
			if serr := ws.Send(t.ctx, response{Err: err.Error()}); serr != nil {
				return serr
			}
			return &refusal{err}
		}
		t.heard(from)
		respCh := make(chan raft.RPCResponse, 1)
		rpc := raft.RPC{Command: cmd, RespChan: respCh}
		var snap *chunkReader
		if req.Kind == rpcSnapshot {
			t.snapshots.Add(1)
			snap = &chunkReader{ctx: t.ctx, ws: ws, left: req.Size}
			rpc.Reader = snap
		}
		if !t.dispatch(rpc) {
			return errClosed
		}
		var out raft.RPCResponse
		select {
		case out = <-respCh:
		case <-t.ctx.Done():
			return errClosed
		}
		if snap != nil && snap.left > 0 {
			return fmt.Errorf("snapshot: %d bytes left unread", snap.left)
		}
		if err := ws.Send(t.ctx, toResponse(out.Response, out.Error)); err != nil {
			return err
		}
	}
}

// refusal is a request refused with an answer that says why: the stream
// is then closed, not reset, so that the answer arrives.
type refusal struct{ err error }

func (r *refusal) Error() string { return "refused: " + r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// dispatch hands rpc to raft: a heartbeat to its fast path, anything else
// to its queue. It returns false if the transport closed first.
func (t *transport) dispatch(rpc raft.RPC) bool {
	if a, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && isHeartbeat(a) {
		if hb := t.heartbeat.Load(); hb != nil && *hb != nil {
			(*hb)(rpc)
			return true
		}
	}
	select {
	case t.consumer <- rpc:
		return true
	case <-t.ctx.Done():
		return false
	}
}

// chunkReader reads a snapshot's bytes from the frames after its request.
type chunkReader struct {
	ctx  context.Context
	ws   *wire.Stream
	left int64
	buf  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		var chunk []byte
		if err := r.ws.Recv(r.ctx, &chunk); err != nil {
			return 0, fmt.Errorf("snapshot chunk: %w", err)
		}
		if len(chunk) == 0 || int64(len(chunk)) > r.left || len(chunk) > snapshotChunk {
			return 0, fmt.Errorf("%w: snapshot chunk of %d bytes with %d to come", ErrMalformed, len(chunk), r.left)
		}
		r.buf = chunk
		r.left -= int64(len(chunk))
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
