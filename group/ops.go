package group

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// Entry is a key with its value and version: the log index of the write
// that last set it.
type Entry struct {
	Key     string
	Value   []byte
	Version uint64
}

func checkKey(key string) error {
	if key == "" || len(key) > MaxKey {
		return fmt.Errorf("%w: key of %d bytes (1 to %d)", ErrBadName, len(key), MaxKey)
	}
	return nil
}

func checkValue(v []byte) error {
	if len(v) > MaxValue {
		return fmt.Errorf("%w: value of %d bytes, over %d", ErrBadName, len(v), MaxValue)
	}
	return nil
}

func marshalCommand(c command) ([]byte, error) {
	b, err := wire.Marshal(c)
	if err != nil {
		return nil, err
	}
	if len(b) > maxEntry {
		return nil, fmt.Errorf("%w: command of %d bytes, over %d", ErrBadName, len(b), maxEntry)
	}
	return b, nil
}

func (g *Group) writeCmd(ctx context.Context, c command) (result, error) {
	c.ID = newID()
	rep, err := g.do(ctx, callRequest{Kind: callWrite, Cmd: c})
	if err != nil {
		return result{}, fmt.Errorf("group %s: %w", g.name, err)
	}
	return rep.Result, nil
}

// Get returns key's value, as of a moment between the call and its return
// (a linearizable read, served by the leader). It returns ErrNotFound if
// the key has no value.
func (g *Group) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := g.GetEntry(ctx, key)
	return e.Value, err
}

// GetEntry is Get with the value's version.
func (g *Group) GetEntry(ctx context.Context, key string) (Entry, error) {
	if err := checkKey(key); err != nil {
		return Entry{}, err
	}
	rep, err := g.do(ctx, callRequest{Kind: callGet, Key: key})
	if err != nil {
		return Entry{}, fmt.Errorf("group %s: get %q: %w", g.name, key, err)
	}
	if !rep.Found || len(rep.Entries) != 1 {
		return Entry{}, fmt.Errorf("group %s: %q: %w", g.name, key, ErrNotFound)
	}
	e := rep.Entries[0]
	return Entry{Key: e.Key, Value: nonNil(e.Value), Version: e.Version}, nil
}

// nonNil makes an empty value read back as the empty, not the nil, slice.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Put sets key to value and returns the write's version.
func (g *Group) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := errors.Join(checkKey(key), checkValue(value)); err != nil {
		return 0, err
	}
	r, err := g.writeCmd(ctx, command{Op: opPut, Key: key, Value: value})
	return r.Version, err
}

// CompareAndSwap sets key to value if its value is old now, and reports
// whether it did. A nil old means the key must have no value; to compare
// with an empty value pass []byte{}.
func (g *Group) CompareAndSwap(ctx context.Context, key string, old, value []byte) (bool, error) {
	if err := errors.Join(checkKey(key), checkValue(value), checkValue(old)); err != nil {
		return false, err
	}
	r, err := g.writeCmd(ctx, command{Op: opCAS, Key: key, Value: value, Old: old, HasOld: old != nil})
	return r.OK, err
}

// Delete removes key and reports whether it had a value.
func (g *Group) Delete(ctx context.Context, key string) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	r, err := g.writeCmd(ctx, command{Op: opDelete, Key: key})
	return r.OK, err
}

// List returns the entries whose keys start with prefix, sorted by key
// (a linearizable read, like Get).
func (g *Group) List(ctx context.Context, prefix string) ([]Entry, error) {
	rep, err := g.do(ctx, callRequest{Kind: callList, Key: prefix})
	if err != nil {
		return nil, fmt.Errorf("group %s: list %q: %w", g.name, prefix, err)
	}
	out := make([]Entry, len(rep.Entries))
	for i, e := range rep.Entries {
		out[i] = Entry{Key: e.Key, Value: nonNil(e.Value), Version: e.Version}
	}
	return out, nil
}

// Watch yields the changes to keys starting with prefix as this member
// applies them, in log order, from the moment of the call (not of the
// loop: a change made between the two is not missed) until ctx ends or the
// loop stops. Range over it once. A reader that falls more than a few
// thousand changes behind gets ErrLagged and the watch ends; List again
// and watch anew.
func (g *Group) Watch(ctx context.Context, prefix string) iter.Seq2[Change, error] {
	w := g.fsm.watch(prefix)
	// A watch nobody ranges over ends with ctx.
	stop := context.AfterFunc(ctx, func() { g.fsm.unwatch(w) })
	return func(yield func(Change, error) bool) {
		defer stop()
		defer g.fsm.unwatch(w)
		for {
			select {
			case c, ok := <-w.ch:
				if !ok {
					if g.fsm.isLagged(w) {
						yield(Change{}, fmt.Errorf("group %s: watch %q: %w", g.name, prefix, ErrLagged))
					}
					return
				}
				if !yield(c, nil) {
					return
				}
			case <-ctx.Done():
				return
			case <-g.trans.ctx.Done():
				yield(Change{}, fmt.Errorf("group %s: %w", g.name, ErrClosed))
				return
			}
		}
	}
}

// Apply applies cmd to the group's StateMachine on every member, once,
// and returns what the machine returned on the leader.
func (g *Group) Apply(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := checkValue(cmd); err != nil {
		return nil, err
	}
	r, err := g.writeCmd(ctx, command{Op: opApply, Data: cmd})
	if err != nil {
		return nil, err
	}
	if r.Err != "" {
		return nil, fmt.Errorf("group %s: %w: %s", g.name, ErrMachine, r.Err)
	}
	return r.Data, nil
}

// Sync returns once this member has applied every write the group
// acknowledged before Sync was called, so that a read of this member's
// own state (its StateMachine's) that follows is linearizable, as Get is.
// It costs one write through the log: an empty one, through the leader.
func (g *Group) Sync(ctx context.Context) error {
	id := newID()
	rep, err := g.do(ctx, callRequest{Kind: callWrite, Cmd: command{Op: opNoop, ID: id}})
	if err != nil {
		return fmt.Errorf("group %s: sync: %w", g.name, err)
	}
	for {
		next := g.fsm.next()
		if g.fsm.synced(id, rep.Result.Version) {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return fmt.Errorf("group %s: sync: waiting to apply entry %d: %w", g.name, rep.Result.Version, ctx.Err())
		case <-g.trans.ctx.Done():
			return fmt.Errorf("group %s: %w", g.name, ErrClosed)
		}
	}
}

// AddMember adds p to the group as a voting member. p then opens the group
// with Options.Join naming any member, and catches up from the leader.
func (g *Group) AddMember(ctx context.Context, p peer.ID) error {
	if _, err := g.do(ctx, callRequest{Kind: callAdd, Peer: p.String()}); err != nil {
		return fmt.Errorf("group %s: add %s: %w", g.name, p, err)
	}
	return nil
}

// RemoveMember takes p out of the group: to retire a member, or to replace
// one that is down for good.
func (g *Group) RemoveMember(ctx context.Context, p peer.ID) error {
	if _, err := g.do(ctx, callRequest{Kind: callRemove, Peer: p.String()}); err != nil {
		return fmt.Errorf("group %s: remove %s: %w", g.name, p, err)
	}
	return nil
}

// Member is one member of a group as its leader sees it.
type Member struct {
	ID    peer.ID
	Voter bool
	// State is "leader", "up" (answered the leader lately), or "down".
	State string
	// LastContact is when the member last answered the leader (zero for
	// the leader itself, or if never).
	LastContact time.Time
}

// Status is a group's state: the leader's view of its members, and this
// node's view of the log.
type Status struct {
	Name      string
	Leader    peer.ID
	Term      uint64
	LastIndex uint64 // last entry in this node's log
	Commit    uint64 // last entry this node knows is committed
	Applied   uint64 // last entry applied on this node
	// Writes counts the writes this node has applied since it opened the
	// group: every entry its state machine took, refused or not. Raft's
	// own entries (barriers, changes of members) are not writes.
	Writes  uint64
	State   string // this node's role: leader, follower, candidate
	Members []Member
}

type wireMember struct {
	ID          string `cbor:"1,keyasint"`
	Voter       bool   `cbor:"2,keyasint,omitempty"`
	State       string `cbor:"3,keyasint"`
	LastContact int64  `cbor:"4,keyasint,omitempty"`
}

type wireStatus struct {
	Term    uint64       `cbor:"1,keyasint"`
	Members []wireMember `cbor:"2,keyasint"`
}

// leaderStatus is what the leader knows of its members.
func (g *Group) leaderStatus() (*wireStatus, error) {
	servers, err := g.configuration()
	if err != nil {
		return nil, err
	}
	st := &wireStatus{Term: g.raft.CurrentTerm()}
	down := 3 * g.m.cfg.HeartbeatTimeout
	for _, s := range servers {
		m := wireMember{ID: string(s.ID), Voter: s.Suffrage == raft.Voter, State: "down"}
		if s.ID == raft.ServerID(g.self.String()) {
			m.State = "leader"
		} else if p, err := peer.Decode(string(s.ID)); err == nil {
			if t := g.trans.lastContact(p); !t.IsZero() {
				m.LastContact = t.UnixNano()
				if time.Since(t) < down {
					m.State = "up"
				}
			}
		}
		st.Members = append(st.Members, m)
	}
	return st, nil
}

// Status returns the group's state, asking the leader about its members;
// if no leader answers soon, the members this node knows, state unknown.
func (g *Group) Status(ctx context.Context) (Status, error) {
	st := Status{Name: g.name, Leader: g.Leader(), Term: g.raft.CurrentTerm(), LastIndex: g.raft.LastIndex(),
		Commit: g.raft.CommitIndex(), Applied: g.raft.AppliedIndex(), Writes: g.fsm.writes.Load(), State: stateName(g.raft.State())}
	// Ask the leader, if there is one, but never wait long: a status is
	// wanted most when the group is in trouble.
	err := ErrNoLeader
	var rep callReply
	if st.Leader != "" {
		sctx, cancel := context.WithTimeout(ctx, 3*g.m.cfg.HeartbeatTimeout)
		rep, err = g.do(sctx, callRequest{Kind: callStatus})
		cancel()
	}
	if err != nil {
		// No leader: report the members this node knows, state unknown.
		servers, cerr := g.configuration()
		if cerr != nil {
			return st, err
		}
		for _, s := range servers {
			p, _ := peer.Decode(string(s.ID))
			st.Members = append(st.Members, Member{ID: p, Voter: s.Suffrage == raft.Voter, State: "unknown"})
		}
		return st, nil
	}
	if rep.Status != nil {
		for _, m := range rep.Status.Members {
			p, err := peer.Decode(m.ID)
			if err != nil {
				continue
			}
			mem := Member{ID: p, Voter: m.Voter, State: m.State}
			if m.LastContact != 0 {
				mem.LastContact = time.Unix(0, m.LastContact)
			}
			st.Members = append(st.Members, mem)
		}
		st.Term = max(st.Term, rep.Status.Term)
	}
	slices.SortFunc(st.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return st, nil
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Shutdown:
		return "shutdown"
	}
	return strconv.Itoa(int(s))
}
