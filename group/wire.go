package group

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wire"
)

// Protocol carries raft's messages between the members of groups: one
// stream per sender and group at a time, a hello frame naming the group,
// then requests and their responses in order.
var Protocol = wire.Protocol("raft", 1)

// Caps on what a member may send. A value is at most MaxValue bytes, so an
// entry is at most a little more; a batch of entries is at most
// maxAppendEntries of them.
const (
	// MaxValue is the largest value (or Apply command) a group stores:
	// 1.5 MiB, so that a topic's raft entry, a batch with one message of
	// topic.MaxMessage (1 MiB) in it, fits.
	MaxValue = 3 << 19
	// MaxKey is the longest key.
	MaxKey           = 1 << 10
	maxAppendEntries = 32
	maxEntry         = MaxValue + MaxKey + 4<<10
	maxFrame         = maxAppendEntries*(maxEntry+64) + 64<<10
	maxHelloFrame    = 1 << 10
	snapshotChunk    = 256 << 10
)

// RPC kinds on the wire.
const (
	rpcAppend = iota + 1
	rpcVote
	rpcPreVote
	rpcSnapshot
	rpcTimeoutNow
)

// hello opens a stream: which group the sender's messages are for.
type hello struct {
	Group string `cbor:"1,keyasint"`
}

// helloReply accepts the stream (Err empty) or says why not.
type helloReply struct {
	Err string `cbor:"1,keyasint,omitempty"`
}

// wireLog is a raft log entry on the wire and on disk.
type wireLog struct {
	Index uint64 `cbor:"1,keyasint"`
	Term  uint64 `cbor:"2,keyasint"`
	Type  uint8  `cbor:"3,keyasint,omitempty"`
	Data  []byte `cbor:"4,keyasint,omitempty"`
	Ext   []byte `cbor:"5,keyasint,omitempty"`
	At    int64  `cbor:"6,keyasint,omitempty"` // when the leader appended it, Unix ns
}

// request is one raft RPC. Who sent it is never read from the message:
// the receiver takes it from the stream's authenticated peer.
type request struct {
	Kind        uint8     `cbor:"1,keyasint"`
	Version     int       `cbor:"2,keyasint,omitempty"`
	Term        uint64    `cbor:"3,keyasint,omitempty"`
	PrevIndex   uint64    `cbor:"4,keyasint,omitempty"`
	PrevTerm    uint64    `cbor:"5,keyasint,omitempty"`
	Entries     []wireLog `cbor:"6,keyasint,omitempty"`
	Commit      uint64    `cbor:"7,keyasint,omitempty"`
	LastIndex   uint64    `cbor:"8,keyasint,omitempty"`
	LastTerm    uint64    `cbor:"9,keyasint,omitempty"`
	Transfer    bool      `cbor:"10,keyasint,omitempty"`
	SnapVersion int       `cbor:"11,keyasint,omitempty"`
	Size        int64     `cbor:"12,keyasint,omitempty"`
	Config      []byte    `cbor:"13,keyasint,omitempty"`
	ConfigIndex uint64    `cbor:"14,keyasint,omitempty"`
}

// response answers one request.
type response struct {
	Err            string `cbor:"1,keyasint,omitempty"`
	Term           uint64 `cbor:"2,keyasint,omitempty"`
	LastLog        uint64 `cbor:"3,keyasint,omitempty"`
	Success        bool   `cbor:"4,keyasint,omitempty"`
	NoRetryBackoff bool   `cbor:"5,keyasint,omitempty"`
	Granted        bool   `cbor:"6,keyasint,omitempty"`
}

func toWireLog(l *raft.Log) wireLog {
	w := wireLog{Index: l.Index, Term: l.Term, Type: uint8(l.Type), Data: l.Data, Ext: l.Extensions}
	if !l.AppendedAt.IsZero() {
		w.At = l.AppendedAt.UnixNano()
	}
	return w
}

// toLog checks an entry and turns it into raft's. Configuration entries are
// decoded here, where a bad one is an error: raft itself panics on them.
func (w *wireLog) toLog() (*raft.Log, error) {
	if w.Type > uint8(raft.LogConfiguration) {
		return nil, fmt.Errorf("%w: entry %d has unknown type %d", ErrMalformed, w.Index, w.Type)
	}
	if len(w.Data)+len(w.Ext) > maxEntry {
		return nil, fmt.Errorf("%w: entry %d is %d bytes, over %d", ErrMalformed, w.Index, len(w.Data)+len(w.Ext), maxEntry)
	}
	t := raft.LogType(w.Type)
	if t == raft.LogConfiguration {
		if _, err := decodeConfiguration(w.Data); err != nil {
			return nil, fmt.Errorf("entry %d: %w", w.Index, err)
		}
	}
	l := &raft.Log{Index: w.Index, Term: w.Term, Type: t, Data: w.Data, Extensions: w.Ext}
	if w.At != 0 {
		l.AppendedAt = time.Unix(0, w.At)
	}
	return l, nil
}

// decodeConfiguration decodes raft's encoding of a configuration and checks
// that every server in it names a peer, without the panic raft's own
// decoder has for bad input.
func decodeConfiguration(b []byte) (c raft.Configuration, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: configuration: %v", ErrMalformed, r)
		}
	}()
	c = raft.DecodeConfiguration(b)
	for _, s := range c.Servers {
		if _, err := peer.Decode(string(s.ID)); err != nil {
			return c, fmt.Errorf("%w: configuration names %q, not a peer", ErrMalformed, s.ID)
		}
	}
	return c, nil
}

// header is raft's header for a message from the member whose address
// (its peer ID, encoded) is addr.
func header(addr []byte, v int) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersion(v), ID: addr, Addr: addr}
}

// command turns a request from the member at address from into the raft
// RPC command it stands for, or says why it cannot.
func (r *request) command(from []byte) (any, error) {
	if r.Version < int(raft.ProtocolVersionMin) || r.Version > int(raft.ProtocolVersionMax) {
		return nil, fmt.Errorf("%w: protocol version %d", ErrMalformed, r.Version)
	}
	h := header(from, r.Version)
	switch r.Kind {
	case rpcAppend:
		if len(r.Entries) > maxAppendEntries {
			return nil, fmt.Errorf("%w: %d entries in one append, over %d", ErrMalformed, len(r.Entries), maxAppendEntries)
		}
		a := &raft.AppendEntriesRequest{RPCHeader: h, Term: r.Term,
			PrevLogEntry: r.PrevIndex, PrevLogTerm: r.PrevTerm, LeaderCommitIndex: r.Commit}
		if len(r.Entries) > 0 {
			a.Entries = make([]*raft.Log, len(r.Entries))
		}
		prev := r.PrevIndex
		for i := range r.Entries {
			l, err := r.Entries[i].toLog()
			if err != nil {
				return nil, err
			}
			if l.Index != prev+1 {
				return nil, fmt.Errorf("%w: entry %d follows %d", ErrMalformed, l.Index, prev)
			}
			prev = l.Index
			a.Entries[i] = l
		}
		return a, nil
	case rpcVote:
		return &raft.RequestVoteRequest{RPCHeader: h, Term: r.Term,
			LastLogIndex: r.LastIndex, LastLogTerm: r.LastTerm, LeadershipTransfer: r.Transfer}, nil
	case rpcPreVote:
		return &raft.RequestPreVoteRequest{RPCHeader: h, Term: r.Term, LastLogIndex: r.LastIndex, LastLogTerm: r.LastTerm}, nil
	case rpcSnapshot:
		if r.Size < 0 {
			return nil, fmt.Errorf("%w: snapshot size %d", ErrMalformed, r.Size)
		}
		if _, err := decodeConfiguration(r.Config); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		return &raft.InstallSnapshotRequest{RPCHeader: h, SnapshotVersion: raft.SnapshotVersion(r.SnapVersion),
			Term: r.Term, Leader: h.Addr, LastLogIndex: r.LastIndex, LastLogTerm: r.LastTerm,
			Configuration: r.Config, ConfigurationIndex: r.ConfigIndex, Size: r.Size}, nil
	case rpcTimeoutNow:
		return &raft.TimeoutNowRequest{RPCHeader: h}, nil
	}
	return nil, fmt.Errorf("%w: unknown request kind %d", ErrMalformed, r.Kind)
}

// isHeartbeat says whether an append carries nothing but the leader's
// claim, like raft's own transport decides, so it can skip the queue
// behind disk writes.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.Term != 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && len(a.Entries) == 0 && a.LeaderCommitIndex == 0
}

// fill fills raft's response value resp from the wire, as sent by the
// member at address to.
func (r *response) fill(to []byte, resp any) error {
	if r.Err != "" {
		return &peerError{msg: r.Err}
	}
	h := header(to, int(raft.ProtocolVersionMax))
	switch v := resp.(type) {
	case *raft.AppendEntriesResponse:
		*v = raft.AppendEntriesResponse{RPCHeader: h, Term: r.Term, LastLog: r.LastLog, Success: r.Success, NoRetryBackoff: r.NoRetryBackoff}
	case *raft.RequestVoteResponse:
		*v = raft.RequestVoteResponse{RPCHeader: h, Term: r.Term, Granted: r.Granted}
	case *raft.RequestPreVoteResponse:
		*v = raft.RequestPreVoteResponse{RPCHeader: h, Term: r.Term, Granted: r.Granted}
	case *raft.InstallSnapshotResponse:
		*v = raft.InstallSnapshotResponse{RPCHeader: h, Term: r.Term, Success: r.Success}
	case *raft.TimeoutNowResponse:
		*v = raft.TimeoutNowResponse{RPCHeader: h}
	}
	return nil
}

// toResponse puts raft's answer on the wire.
func toResponse(resp any, err error) response {
	if err != nil {
		return response{Err: err.Error()}
	}
	switch v := resp.(type) {
	case *raft.AppendEntriesResponse:
		return response{Term: v.Term, LastLog: v.LastLog, Success: v.Success, NoRetryBackoff: v.NoRetryBackoff}
	case *raft.RequestVoteResponse:
		return response{Term: v.Term, Granted: v.Granted}
	case *raft.RequestPreVoteResponse:
		return response{Term: v.Term, Granted: v.Granted}
	case *raft.InstallSnapshotResponse:
		return response{Term: v.Term, Success: v.Success}
	case *raft.TimeoutNowResponse:
		return response{}
	}
	return response{Err: fmt.Sprintf("unexpected response %T", resp)}
}

// peerError is an error the far side reported.
type peerError struct{ msg string }

func (e *peerError) Error() string { return "peer: " + e.msg }
