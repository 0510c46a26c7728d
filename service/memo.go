package service

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/wasm"
)

// Memoized calls (Pipeline.Cached) reuse the result of a deterministic
// run instead of running it again. The node that ran it keeps the output
// as content and signs a memo record under memoDomain: the memo key, the
// output's CID and hash, and its user's cert of the node. The key is the
// hash of the descriptor's CID, the input and the seed: what a
// deterministic run's output depends on, as long as it reads no space.
// Runs lent a space are never memoized (the versions they read are not
// tracked yet), so no record outlives a write.

// memoDomain is what a runner's node key signs its memo records under.
const memoDomain = "nube service memo v1\n"

// MaxMemoSize caps an encoded memo record.
const MaxMemoSize = 4 << 10

// maxMemos caps the records one node keeps; the oldest go first.
const maxMemos = 4096

// memoAsk is how many peers a cached call asks for a record.
const memoAsk = 8

// memoFetch bounds the fetch of a record's output.
const memoFetch = 30 * time.Second

// Memo is a runner's signed word that a run with Key gave Output.
type Memo struct {
	Key    []byte  // the memo key: see Pipeline.Cached
	Runner peer.ID // the node that ran it, and signed this
	// User is the runner's user, from its cert in the record; empty if
	// the record carries none.
	User   peer.ID
	Output cid.Cid // the output, kept as content by the runner
	Hash   []byte  // SHA-256 of the output's bytes
	At     time.Time
}

type memoBody struct {
	Key    []byte         `cbor:"1,keyasint"`
	Output []byte         `cbor:"2,keyasint"`
	Hash   []byte         `cbor:"3,keyasint"`
	Runner []byte         `cbor:"4,keyasint"` // ed25519 public key
	Cert   *nodecert.Cert `cbor:"5,keyasint,omitempty"`
	At     int64          `cbor:"6,keyasint"`
}

func (b *memoBody) Signer() (peer.ID, error) {
	if len(b.Runner) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: memo runner key is %d bytes", ErrBadCapability, len(b.Runner))
	}
	return identity.ID(ed25519.PublicKey(b.Runner))
}

// memoKey is the key of a run of descriptor d on in with seed.
func memoKey(d cid.Cid, in, seed []byte) []byte {
	h := sha256.New()
	h.Write([]byte("nube memo key v1\n"))
	h.Write(d.Bytes())
	h.Write(sum(in))
	h.Write(sum(seed))
	return h.Sum(nil)
}

// ParseMemo decodes a memo record and checks its runner's signature and,
// if it carries one, that its cert is of the runner.
func ParseMemo(raw []byte) (*Memo, error) {
	if len(raw) > MaxMemoSize {
		return nil, fmt.Errorf("%w: a memo of %d bytes, the limit is %d", ErrBadCapability, len(raw), MaxMemoSize)
	}
	var e identity.Envelope
	if err := wire.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("%w: memo: %v", ErrBadCapability, err)
	}
	var b memoBody
	runner, err := e.Open(memoDomain, &b)
	if err != nil {
		return nil, fmt.Errorf("%w: memo: %v", ErrBadCapability, err)
	}
	if len(b.Key) != sha256.Size || len(b.Hash) != sha256.Size {
		return nil, fmt.Errorf("%w: memo: key or hash of the wrong size", ErrBadCapability)
	}
	mm := &Memo{Key: b.Key, Runner: runner, Hash: b.Hash, At: time.Unix(b.At, 0).UTC()}
	if mm.Output, err = cid.Cast(b.Output); err != nil {
		return nil, fmt.Errorf("%w: memo: output CID: %v", ErrBadCapability, err)
	}
	if b.Cert != nil {
		if err := b.Cert.Check(runner); err != nil {
			return nil, fmt.Errorf("%w: memo: cert: %v", ErrBadCapability, err)
		}
		mm.User = b.Cert.User
	}
	return mm, nil
}

// memoize keeps out as content and signs this node's memo record of a run
// of d on in with seed; nil if the node has no key or the output could
// not be kept.
func (m *Manager) memoize(ctx context.Context, d *Descriptor, in, seed, out []byte) []byte {
	if m.cfg.NodeKey == nil {
		return nil
	}
	pub, ok := m.cfg.NodeKey.Public().(ed25519.PublicKey)
	if !ok {
		return nil
	}
	// Unpinned: the output lasts until the node's next garbage
	// collection; a record whose output is gone is run again.
	c, err := m.cfg.Content.Add(ctx, bytes.NewReader(out), content.AddOptions{NoPin: true})
	if err != nil {
		m.log.Info("could not keep a memoized output", "err", err)
		return nil
	}
	cert := m.cert
	b := memoBody{Key: memoKey(d.id, in, seed), Output: c.Bytes(), Hash: sum(out), Runner: pub, Cert: &cert, At: time.Now().Unix()}
	e, err := identity.Seal(m.cfg.NodeKey, memoDomain, &b)
	if err != nil {
		m.log.Warn("could not sign a memo record", "err", err)
		return nil
	}
	raw, _ := wire.Marshal(e)
	m.memos.put(b.Key, raw)
	return raw
}

// memoTable is the memo records a node keeps, by key: its own runs' and
// those it accepted as a caller. The oldest go first past maxMemos.
type memoTable struct {
	mu    sync.Mutex
	byKey map[string][]byte
	order []string
	// verified are the keys whose record this node checked by re-running
	// (CachedVerify): trusted whoever signed them.
	verified map[string]bool
}

func (t *memoTable) put(key, raw []byte) { t.keep(key, raw, false) }

func (t *memoTable) keep(key, raw []byte, verified bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byKey == nil {
		t.byKey = map[string][]byte{}
	}
	k := string(key)
	if _, ok := t.byKey[k]; !ok {
		t.order = append(t.order, k)
	}
	t.byKey[k] = raw
	delete(t.verified, k)
	if verified {
		if t.verified == nil {
			t.verified = map[string]bool{}
		}
		t.verified[k] = true
	}
	for len(t.order) > maxMemos {
		delete(t.byKey, t.order[0])
		delete(t.verified, t.order[0])
		t.order = t.order[1:]
	}
}

func (t *memoTable) get(key []byte) []byte {
	raw, _ := t.lookup(key)
	return raw
}

// lookup returns key's record, and whether this node verified it.
func (t *memoTable) lookup(key []byte) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byKey[string(key)], t.verified[string(key)]
}

type memoReq struct {
	Key []byte `cbor:"1,keyasint"`
}

type memoReply struct {
	Record []byte `cbor:"1,keyasint,omitempty"`
}

// memoFn asks a node for its memo record of a key.
var memoFn = remote.Declare[memoReq, memoReply]("nube.service.memo")

func (m *Manager) serveMemo(_ context.Context, req memoReq) (memoReply, error) {
	if len(req.Key) != sha256.Size {
		return memoReply{}, fmt.Errorf("%w: a memo key of %d bytes", ErrBadCapability, len(req.Key))
	}
	return memoReply{Record: m.memos.get(req.Key)}, nil
}

// trusts reports whether this node takes a memo record on its runner's
// word: this node's own, or one of its user's nodes not removed.
func (m *Manager) trusts(mm *Memo) bool {
	if mm.Runner == m.self {
		return true
	}
	if mm.User != m.user {
		return false
	}
	return m.cfg.Revoked == nil || !m.cfg.Revoked(mm.Runner)
}

// Cached returns p memoized: a call of a deterministic single-stage
// pipeline that lends no space first looks for a signed record of the
// same run (same descriptor, input and seed) on this node and on the
// peers it would call, and returns the recorded output instead of
// running; Result.Memo is then set. Records are taken from this node and
// its user's nodes; another node's record is used only through
// CachedVerify. A call that finds none runs, and its runner signs a
// record of it for the next. Other pipelines run as without Cached.
func (p *Pipeline) Cached() *Pipeline {
	q := *p
	q.cached = true
	return &q
}

// CachedVerify is Cached that, when no record of this node's user is
// found, runs Verify on k nodes, and takes a record signed by a node of
// another user if the verified output is the one it names (Result.Memo
// is then that record); the record, or the verified run's own, is then
// kept as this node's.
func (p *Pipeline) CachedVerify(k int) *Pipeline {
	q := p.Cached()
	q.memoVerify = k
	return q
}

// memoizable reports whether a call of stages may be memoized.
func (p *Pipeline) memoizable(stages []*Descriptor) bool {
	return p.cached && len(stages) == 1 && stages[0].Deterministic &&
		!slices.ContainsFunc(p.allows, func(a Allow) bool { return a.Space != "" })
}

// callCached is a call of a memoizable pipeline: a record's output, or a
// run that leaves a record.
func (p *Pipeline) callCached(ctx context.Context, stages []*Descriptor, in []byte) Result {
	d := stages[0]
	key := memoKey(d.id, in, p.seed)
	trusted, others := p.m.findMemo(ctx, key, d)
	for _, mm := range trusted {
		if r, ok := p.fromMemo(ctx, mm); ok {
			return r
		}
	}
	if p.memoVerify >= 2 {
		// Verified: K runs, whose output counts as this node's record
		// (and confirms another user's, if one agrees).
		q := *p
		q.cached, q.memo = false, true
		if q.seed == nil {
			// The seed the key names (none), not Verify's random one.
			q.seed = []byte{}
		}
		r, err := q.Verify(ctx, p.memoVerify, in)
		if err != nil {
			return Result{Err: err}
		}
		for _, raw := range others {
			mm, _ := ParseMemo(raw)
			if bytes.Equal(mm.Hash, sum(r.Output)) {
				p.m.memos.keep(key, raw, true)
				r.Memo = mm
				return r
			}
		}
		if len(others) > 0 {
			p.m.log.Info("a memo record of another user's node disagrees with the verified run; not used", "service", d.Label())
		}
		if mm, err := ParseMemo(r.memoRaw); err == nil && mm.Runner == r.Peer && bytes.Equal(mm.Key, key) && bytes.Equal(mm.Hash, sum(r.Output)) {
			p.m.memos.keep(key, r.memoRaw, true)
		}
		return r
	}
	q := *p
	q.cached, q.memo = false, true
	var r Result
	for _, res := range q.callN(ctx, 1, stages, in) {
		r = res
	}
	if r.Err == nil && len(r.memoRaw) > 0 {
		mm, err := ParseMemo(r.memoRaw)
		if err == nil && mm.Runner == r.Peer && bytes.Equal(mm.Key, key) && bytes.Equal(mm.Hash, sum(r.Output)) {
			p.m.memos.put(key, r.memoRaw)
		}
	}
	return r
}

// fromMemo returns the output mm records, fetched as content.
func (p *Pipeline) fromMemo(ctx context.Context, mm *Memo) (Result, bool) {
	start := time.Now()
	r := Result{Peer: mm.Runner, Memo: mm}
	if p.outCID {
		r.OutputCID = mm.Output
	} else {
		// A record whose output is gone everywhere is worth a run, not
		// a wait: the fetch has memoFetch.
		ctx, cancel := context.WithTimeout(ctx, memoFetch)
		defer cancel()
		f, err := p.m.cfg.Content.Get(ctx, mm.Output.String())
		if err != nil {
			p.m.log.Info("the output of a memo record could not be fetched; running", "cid", mm.Output, "err", err)
			return r, false
		}
		out, err := io.ReadAll(io.LimitReader(f, wasm.DefaultMaxOutput+1))
		f.Close()
		if err != nil || !bytes.Equal(sum(out), mm.Hash) {
			p.m.log.Info("the output of a memo record is not what it says; running", "cid", mm.Output, "err", err)
			return r, false
		}
		r.Output = out
	}
	r.Elapsed = time.Since(start)
	p.m.recordCall(CallRecord{At: start, Service: p.String() + " (memo)", Peer: mm.Runner, Elapsed: r.Elapsed})
	return r, true
}

// findMemo looks for records of key: this node's, else those of the peers
// it would call. It returns the records it trusts, and the raw valid
// records of others' nodes.
func (m *Manager) findMemo(ctx context.Context, key []byte, d *Descriptor) ([]*Memo, [][]byte) {
	var trusted []*Memo
	var others [][]byte
	check := func(raw []byte, verified bool) {
		mm, err := ParseMemo(raw)
		if err != nil || !bytes.Equal(mm.Key, key) {
			return
		}
		if verified || m.trusts(mm) {
			trusted = append(trusted, mm)
		} else {
			others = append(others, raw)
		}
	}
	if raw, verified := m.memos.lookup(key); raw != nil {
		check(raw, verified)
		if len(trusted) > 0 {
			return trusted, nil
		}
	}
	var peers []peer.ID
	for _, c := range m.candidates(d) {
		if c != m.self && len(peers) < memoAsk {
			peers = append(peers, c)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, r := range memoFn.OnAll(ctx, m.cfg.Remote, peers, memoReq{Key: key}) {
		if r.Err == nil && len(r.Value.Record) > 0 {
			check(r.Value.Record, false)
		}
	}
	return trusted, others
}

// lent reports whether the run was lent a space: such runs read what the
// memo key does not name, and are not memoized.
func (h *runHost) lent() bool {
	return h.cap != nil && slices.ContainsFunc(h.cap.Allows, func(a Allow) bool { return a.Space != "" })
}
