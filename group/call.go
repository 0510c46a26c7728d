package group

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/remote"
)

// What a forwarded call asks for.
const (
	callWrite = iota + 1
	callGet
	callList
	callStatus
	callJoin
	callAdd
	callRemove
)

// callRequest is a call a member forwards to the leader.
type callRequest struct {
	Group string  `cbor:"1,keyasint"`
	Kind  uint8   `cbor:"2,keyasint"`
	Cmd   command `cbor:"3,keyasint,omitempty"`
	Key   string  `cbor:"4,keyasint,omitempty"` // get's key, list's prefix
	Peer  string  `cbor:"5,keyasint,omitempty"` // add's and remove's member
}

// callReply answers it. NotLeader asks the caller to try the leader (Hint,
// if known) instead.
type callReply struct {
	NotLeader bool        `cbor:"1,keyasint,omitempty"`
	Hint      string      `cbor:"2,keyasint,omitempty"`
	Result    result      `cbor:"3,keyasint,omitempty"`
	Found     bool        `cbor:"4,keyasint,omitempty"`
	Entries   []entry     `cbor:"5,keyasint,omitempty"`
	Status    *wireStatus `cbor:"6,keyasint,omitempty"`
	Members   []string    `cbor:"7,keyasint,omitempty"`
	NotMember bool        `cbor:"8,keyasint,omitempty"` // the caller is not a member
}

var callFn = remote.Declare[callRequest, callReply]("nube.group.call")

// serveCall answers a forwarded call, for members only.
func (m *Manager) serveCall(ctx context.Context, req callRequest) (callReply, error) {
	g := m.group(req.Group)
	if g == nil {
		// Not open here (closed, or never): as good as not leading.
		return callReply{NotLeader: true}, nil
	}
	from := remote.Caller(ctx)
	if !g.isMember(from) || g.admit != nil && !g.admit(from) {
		return callReply{NotMember: true}, nil
	}
	if req.Kind == callJoin {
		return g.members()
	}
	return g.serve(ctx, req)
}

// members lists the group's members as this node knows them.
func (g *Group) members() (callReply, error) {
	servers, err := g.configuration()
	if err != nil {
		return callReply{}, err
	}
	var out []string
	for _, s := range servers {
		out = append(out, string(s.ID))
	}
	return callReply{Members: out}, nil
}

// notLeader is the reply of a node that does not lead.
func (g *Group) notLeader() callReply {
	return callReply{NotLeader: true, Hint: g.Leader().String()}
}

// leaderLost reports whether err means the node stopped leading under a
// call, which the caller retries on the new leader.
func leaderLost(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrAbortedByRestore)
}

// serve carries out req on this node, which must lead.
func (g *Group) serve(ctx context.Context, req callRequest) (callReply, error) {
	if g.raft.State() != raft.Leader {
		return g.notLeader(), nil
	}
	switch req.Kind {
	case callWrite:
		return g.write(ctx, req.Cmd)
	case callGet, callList:
		if err := g.readBarrier(ctx); err != nil {
			if leaderLost(err) {
				return g.notLeader(), nil
			}
			return callReply{}, err
		}
		if req.Kind == callGet {
			e, ok := g.fsm.get(req.Key)
			return callReply{Found: ok, Entries: []entry{e}}, nil
		}
		return callReply{Entries: g.fsm.list(req.Key)}, nil
	case callStatus:
		st, err := g.leaderStatus()
		return callReply{Status: st}, err
	case callJoin:
		return g.members()
	case callAdd, callRemove:
		p, err := peer.Decode(req.Peer)
		if err != nil {
			return callReply{}, fmt.Errorf("%w: member %q: %v", ErrBadName, req.Peer, err)
		}
		return g.changeMembers(ctx, p, req.Kind == callAdd)
	}
	return callReply{}, fmt.Errorf("%w: unknown call kind %d", ErrBadName, req.Kind)
}

// Raft's futures are not waited on here but for VerifyLeader's, which raft
// always answers: a future whose entry committed but was not yet applied
// when raft shut down is never answered, and a goroutine waiting on it would
// never end. A write learns its result from the state machine instead,
// which hands each result to whoever proposed the write (fsm.expect), and
// learns it lost its leader from the leader changing.

// write appends c to the log and returns its result once applied here. A
// write proposed just before this node stopped leading may still commit:
// the caller retries with the same ID, and gets the first result if it did.
func (g *Group) write(ctx context.Context, c command) (callReply, error) {
	c.Time = time.Now().UnixNano()
	data, err := marshalCommand(c)
	if err != nil {
		return callReply{}, err
	}
	changed := g.leaderChanged()
	if g.raft.State() != raft.Leader {
		return g.notLeader(), nil
	}
	res, forget := g.fsm.expect(c.ID)
	defer forget()
	g.writing.Add(1)
	defer g.told()
	g.raft.Apply(data, 0)
	select {
	case r := <-res:
		return callReply{Result: r}, nil
	case <-changed:
		return g.notLeader(), nil
	case <-ctx.Done():
		return callReply{}, ctx.Err()
	case <-g.trans.ctx.Done():
		return callReply{}, ErrClosed
	}
}

// changeMembers adds p to the group or removes it, and returns once the
// change has committed (this member applied it). Raft refuses a change
// while another is under way, so it is asked again every second until the
// configuration says what was wanted.
func (g *Group) changeMembers(ctx context.Context, p peer.ID, add bool) (callReply, error) {
	id := raft.ServerID(p.String())
	for {
		changed := g.leaderChanged()
		applied := g.fsm.next()
		if g.fsm.member(string(id)) == add {
			return callReply{}, nil
		}
		if g.raft.State() != raft.Leader {
			return g.notLeader(), nil
		}
		if add {
			g.raft.AddVoter(id, raft.ServerAddress(id), 0, 0)
		} else {
			g.raft.RemoveServer(id, 0, 0)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-applied:
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return callReply{}, ctx.Err()
		case <-g.trans.ctx.Done():
			t.Stop()
			return callReply{}, ErrClosed
		}
		t.Stop()
	}
}

// verifyLeader confirms with a heartbeat round that a majority still
// follows this node. Raft answers a VerifyLeader within a heartbeat round,
// or when it stops leading (at the latest after its leader lease without a
// majority), but never if it shuts down with the request still queued; so
// Close waits for the verifications under way (inflight) before it stops
// raft, and none starts once Close has begun.
func (g *Group) verifyLeader() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrClosed
	}
	g.inflight.Add(1)
	g.mu.Unlock()
	defer g.inflight.Done()
	return g.raft.VerifyLeader().Error()
}

// readBarrier makes a read here linearizable: once per term the leader
// waits until it has applied everything committed before its term (an
// empty write through the log); then, for each read, it confirms with a
// heartbeat round that a majority still follows it. A write acknowledged
// before the read began was applied by this leader before its
// acknowledgement, or before its term began, so the state read includes it.
func (g *Group) readBarrier(ctx context.Context) error {
	g.mu.Lock()
	gen := g.gen
	g.mu.Unlock()
	if g.readyGen.Load() != gen+1 {
		rep, err := g.write(ctx, command{Op: opNoop, ID: newID()})
		if err != nil {
			return err
		}
		if rep.NotLeader {
			return raft.ErrLeadershipLost
		}
		g.readyGen.CompareAndSwap(g.readyGen.Load(), gen+1)
		g.mu.Lock()
		moved := g.gen != gen
		g.mu.Unlock()
		if moved {
			return raft.ErrLeadershipLost
		}
	}
	return g.verifyLeader()
}

// do runs req on the leader, wherever it is, and retries it there when
// the leader changes or cannot be reached, until ctx ends.
func (g *Group) do(ctx context.Context, req callRequest) (callReply, error) {
	req.Group = g.name
	backoff := 20 * time.Millisecond
	var last error
	for {
		if g.isClosed() {
			return callReply{}, ErrClosed
		}
		changed := g.leaderChanged()
		var rep callReply
		var err error
		switch l := g.Leader(); {
		case l == g.self:
			rep, err = g.serve(ctx, req)
		case l != "":
			rep, err = callFn.At(g.m.cfg.Remote, l).Call(ctx, req)
		default:
			rep.NotLeader = true
		}
		switch {
		case err == nil && rep.NotMember:
			return rep, fmt.Errorf("%w: %s is not in %s", ErrNotMember, g.self, g.name)
		case err == nil && !rep.NotLeader:
			return rep, nil
		case err != nil && !retryable(err):
			return rep, err
		case err != nil:
			last = err
		}
		t := time.NewTimer(backoff)
		select {
		case <-changed:
		case <-t.C:
			backoff = min(2*backoff, 500*time.Millisecond)
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return callReply{}, fmt.Errorf("%w: %w (last: %v)", ErrNoLeader, ctx.Err(), last)
			}
			return callReply{}, fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		}
		t.Stop()
	}
}

// retryable says whether a failed forward may succeed on a retry: the
// leader was unreachable or went away.
func retryable(err error) bool {
	return errors.Is(err, remote.ErrUnreachable) || errors.Is(err, remote.ErrNoSuchFunction) || leaderLost(err) ||
		(errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, remote.ErrCallee))
}

func (g *Group) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// join confirms this node's place in the group through via, and learns the
// members to accept raft messages from.
func (g *Group) join(ctx context.Context, via peer.ID) error {
	if via == "" || via == g.self {
		return nil
	}
	rep, err := callFn.At(g.m.cfg.Remote, via).Call(ctx, callRequest{Group: g.name, Kind: callJoin})
	switch {
	case err != nil:
		return fmt.Errorf("join %s through %s: %w", g.name, via, err)
	case rep.NotMember:
		return fmt.Errorf("join %s through %s: %w: ask a member to add %s first", g.name, via, ErrNotMember, g.self)
	case rep.NotLeader:
		return fmt.Errorf("join %s through %s: %w: it does not keep the group", g.name, via, ErrNotFound)
	}
	g.mu.Lock()
	for _, s := range rep.Members {
		if p, err := peer.Decode(s); err == nil {
			g.seed[p] = true
		}
	}
	g.mu.Unlock()
	return nil
}
