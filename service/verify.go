package service

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/atomicfile"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/remote"
)

// proofDomain is what a runner's node key signs its run records under.
const proofDomain = "nube service run proof v1\n"

// MaxProofSize caps an encoded run proof.
const MaxProofSize = 4 << 10

// Proof is a runner's signed record of one run: which descriptor it ran,
// for whom, on what input and seed, and the hash of what it gave. A
// caller that compares runs keeps these as evidence of what each node
// said.
type Proof struct {
	Runner     peer.ID `json:"runner"`
	Descriptor cid.Cid `json:"descriptor"`
	Caller     peer.ID `json:"caller"`
	Call       string  `json:"call,omitempty"`
	Input      string  `json:"input"`  // hex SHA-256 of the input
	Seed       string  `json:"seed"`   // hex SHA-256 of the seed
	Output     string  `json:"output"` // hex SHA-256 of the output
	// OutputCID is the output as content, when the caller asked for it
	// so (OutCID): what it gets, and what callers compare.
	OutputCID cid.Cid   `json:"output_cid,omitzero"`
	At        time.Time `json:"at"`
}

type proofBody struct {
	Runner     []byte `cbor:"1,keyasint"` // ed25519 public key
	Descriptor []byte `cbor:"2,keyasint"`
	Caller     string `cbor:"3,keyasint"`
	Call       uint64 `cbor:"4,keyasint,omitempty"`
	Input      []byte `cbor:"5,keyasint"`
	Seed       []byte `cbor:"6,keyasint"`
	Output     []byte `cbor:"7,keyasint"`
	At         int64  `cbor:"8,keyasint"`
	OutputCID  []byte `cbor:"9,keyasint,omitempty"`
}

func (b *proofBody) Signer() (peer.ID, error) {
	if len(b.Runner) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: runner key is %d bytes", ErrBadCapability, len(b.Runner))
	}
	return identity.ID(ed25519.PublicKey(b.Runner))
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// prove signs this node's record of a run of d on in, which gave out
// (kept as content under outCID, if defined); nil if the node has no key.
func (m *Manager) prove(d *Descriptor, from peer.ID, req runRequest, in, out []byte, outCID cid.Cid) []byte {
	if m.cfg.NodeKey == nil {
		return nil
	}
	pub, ok := m.cfg.NodeKey.Public().(ed25519.PublicKey)
	if !ok {
		return nil
	}
	b := proofBody{Runner: pub, Descriptor: d.id.Bytes(), Caller: from.String(), Call: req.Call,
		Input: sum(in), Seed: sum(req.Seed), Output: sum(out), At: time.Now().Unix()}
	if outCID.Defined() {
		b.OutputCID = outCID.Bytes()
	}
	e, err := identity.Seal(m.cfg.NodeKey, proofDomain, &b)
	if err != nil {
		m.log.Warn("could not sign a run proof", "err", err)
		return nil
	}
	raw, _ := wire.Marshal(e)
	return raw
}

// ParseProof decodes a run proof and checks its runner's signature.
func ParseProof(raw []byte) (*Proof, error) {
	if len(raw) > MaxProofSize {
		return nil, fmt.Errorf("%w: a proof of %d bytes, the limit is %d", ErrBadCapability, len(raw), MaxProofSize)
	}
	var e identity.Envelope
	if err := wire.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("%w: proof: %v", ErrBadCapability, err)
	}
	var b proofBody
	runner, err := e.Open(proofDomain, &b)
	if err != nil {
		return nil, fmt.Errorf("%w: proof: %v", ErrBadCapability, err)
	}
	p := &Proof{Runner: runner, Call: callName(b.Call), Input: hex.EncodeToString(b.Input), Seed: hex.EncodeToString(b.Seed),
		Output: hex.EncodeToString(b.Output), At: time.Unix(b.At, 0).UTC()}
	if p.Descriptor, err = cid.Cast(b.Descriptor); err != nil {
		return nil, fmt.Errorf("%w: proof: descriptor: %v", ErrBadCapability, err)
	}
	if len(b.OutputCID) > 0 {
		if p.OutputCID, err = cid.Cast(b.OutputCID); err != nil {
			return nil, fmt.Errorf("%w: proof: output CID: %v", ErrBadCapability, err)
		}
	}
	if p.Caller, err = peer.Decode(b.Caller); err != nil {
		return nil, fmt.Errorf("%w: proof: caller: %v", ErrBadCapability, err)
	}
	return p, nil
}

// VerifyRun is one node's answer in a Verify.
type VerifyRun struct {
	Peer peer.ID `json:"peer"`
	// Hash is the hex SHA-256 of the node's output.
	Hash string `json:"hash,omitempty"`
	// Proof is the node's signed record of its run.
	Proof []byte `json:"proof,omitempty"`
	Err   string `json:"error,omitempty"`
}

// VerifyError is a Verify whose runs disagreed, or could not all run.
type VerifyError struct {
	Service string
	Runs    []VerifyRun
	// Minority are the nodes whose output differs from the most common
	// one (all of them, if no output has a majority).
	Minority []peer.ID
	// Evidence is the file the proofs were kept in, if the node has a
	// data directory.
	Evidence string
}

func (e *VerifyError) Error() string {
	var parts []string
	for _, r := range e.Runs {
		if r.Err != "" {
			parts = append(parts, fmt.Sprintf("%s failed (%s)", r.Peer, r.Err))
		} else {
			parts = append(parts, fmt.Sprintf("%s gave %s", r.Peer, r.Hash[:16]))
		}
	}
	s := fmt.Sprintf("verify %s: the runs disagree: %s", e.Service, strings.Join(parts, "; "))
	if len(e.Minority) > 0 {
		s += fmt.Sprintf("; in the minority: %v", e.Minority)
	}
	if e.Evidence != "" {
		s += "; proofs kept in " + e.Evidence
	}
	return s
}

func (e *VerifyError) Unwrap() error { return ErrDisagree }

// Verify runs the pipeline on k different nodes with one seed and
// compares their outputs' hashes: if all agree, it returns the output;
// if not, a *VerifyError (matching ErrDisagree) names each node and its
// hash, and the nodes in the minority. Every stage must be declared
// Deterministic. Each node's signed proof of its run is kept as evidence.
func (p *Pipeline) Verify(ctx context.Context, k int, in []byte) (Result, error) {
	if k < 2 {
		return Result{}, fmt.Errorf("%w: verify needs 2 or more runs, not %d", ErrBadCapability, k)
	}
	stages, err := p.Resolve(ctx)
	if err != nil {
		return Result{}, err
	}
	for _, d := range stages {
		if !d.Deterministic {
			return Result{}, fmt.Errorf("%w: %s is not declared deterministic, so runs of it may differ honestly; only deterministic services can be verified", ErrBadCapability, d.Label())
		}
	}
	q := *p
	q.verdict = true
	if q.seed == nil {
		q.seed = make([]byte, 32)
		rand.Read(q.seed)
	}
	var results []Result
	for _, r := range q.CallN(ctx, k, in) {
		results = append(results, r)
	}
	runs := make([]VerifyRun, len(results))
	count := map[string]int{}
	failed := false
	last := stages[len(stages)-1]
	for i, r := range results {
		runs[i] = VerifyRun{Peer: r.Peer, Proof: r.Proof}
		if r.Err == nil {
			// A run counts on its signed word only: its proof must say
			// what it sent.
			r.Err = q.checkProof(r, last)
			results[i].Err = r.Err
		}
		if r.Err != nil {
			runs[i].Err, failed = r.Err.Error(), true
			continue
		}
		h := sum(r.Output)
		if r.OutputCID.Defined() {
			h = sum(r.OutputCID.Bytes())
		}
		runs[i].Hash = hex.EncodeToString(h)
		count[runs[i].Hash]++
	}
	if len(count) == 1 && !failed {
		p.sendVerdicts(ctx, results, func(Result) bool { return true })
		return results[0], nil
	}
	e := &VerifyError{Service: p.String(), Runs: runs}
	best, bestN, tie := "", 0, false
	for h, n := range count {
		switch {
		case n > bestN:
			best, bestN, tie = h, n, false
		case n == bestN:
			tie = true
		}
	}
	for _, r := range runs {
		if r.Err == "" && (tie || r.Hash != best) || errors.Is(errOf(results, r.Peer), errBadProof) {
			e.Minority = append(e.Minority, r.Peer)
		}
	}
	slices.Sort(e.Minority)
	p.sendVerdicts(ctx, results, func(r Result) bool {
		return r.Err == nil && !slices.Contains(e.Minority, r.Peer)
	})
	e.Evidence = p.m.keepEvidence(e)
	return Result{}, e
}

// keepEvidence writes a disagreement's proofs under the data dir.
func (m *Manager) keepEvidence(e *VerifyError) string {
	if m.cfg.Dir == "" {
		return ""
	}
	name := filepath.Join(m.cfg.Dir, "evidence", time.Now().UTC().Format("20060102T150405.000000000")+".json")
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return ""
	}
	if err := atomicfile.WriteJSON(name, e.Runs, 0o600); err != nil {
		m.log.Warn("could not keep the evidence of a disagreement", "err", err)
		return ""
	}
	return name
}

// A verified run that was priced waits for its caller's verdict before
// the provider settles it: paid if its output agreed with the majority,
// given back if not. A verdict that never comes leaves the reserve to
// expire, back to its payer.

type verdictKey struct {
	caller peer.ID
	call   uint64
}

type pending struct {
	user    peer.ID
	hold    Hold
	receipt []byte
	timer   *time.Timer
}

type verdictReq struct {
	Call uint64 `cbor:"1,keyasint"`
	Pay  bool   `cbor:"2,keyasint,omitempty"`
}

// verdictFn tells a runner whether a verified run agreed.
var verdictFn = remote.Declare[verdictReq, struct{}]("nube.service.verdict")

// maxVerdicts caps the runs awaiting a verdict on a node.
const maxVerdicts = 4096

func (m *Manager) awaitVerdict(caller peer.ID, call uint64, user peer.ID, h Hold, receipt []byte) {
	k := verdictKey{caller, call}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.verdicts) >= maxVerdicts || m.verdicts[k] != nil || call == 0 {
		// No room to wait (or a call with no name to judge it by):
		// settled as an ordinary run.
		go m.collect(user, h, receipt)
		return
	}
	p := &pending{user: user, hold: h, receipt: receipt}
	p.timer = time.AfterFunc(time.Until(h.Expires), func() { m.judge(k, false) })
	m.verdicts[k] = p
}

// judge settles (pay) or gives back the run k awaits; false if none.
func (m *Manager) judge(k verdictKey, pay bool) bool {
	m.mu.Lock()
	p := m.verdicts[k]
	delete(m.verdicts, k)
	m.mu.Unlock()
	if p == nil {
		return false
	}
	p.timer.Stop()
	if pay {
		m.collect(p.user, p.hold, p.receipt)
		return true
	}
	m.log.Info("a verified run disagreed, or was not judged in time: not settled", "payer", p.user, "call", callName(k.call))
	m.cfg.Payments.Release(p.hold)
	m.payers.end(p.user, nil)
	return true
}

func (m *Manager) serveVerdict(from peer.ID, req verdictReq) error {
	m.judge(verdictKey{from, req.Call}, req.Pay)
	return nil
}

// sendVerdicts tells each runner of a Verify whether its run is paid.
func (p *Pipeline) sendVerdicts(ctx context.Context, results []Result, paid func(Result) bool) {
	for _, r := range results {
		if r.Peer == "" || r.id == 0 || r.Peer == p.m.self {
			continue
		}
		if _, err := verdictFn.At(p.m.cfg.Remote, r.Peer).Call(ctx, verdictReq{Call: r.id, Pay: paid(r)}); err != nil {
			p.m.log.Info("could not tell a runner its verdict; its reserve expires unpaid", "peer", r.Peer, "err", err)
		}
	}
}

// errBadProof is a run whose signed proof does not say what it sent.
var errBadProof = errors.New("its proof does not match what it sent")

func errOf(results []Result, p peer.ID) error {
	for _, r := range results {
		if r.Peer == p {
			return r.Err
		}
	}
	return nil
}

// checkProof checks that r's proof is its runner's, of a run of d for
// this node on the input its last stage was given, with the pipeline's
// seed, and that it attests the output r carried.
func (p *Pipeline) checkProof(r Result, d *Descriptor) error {
	pr, err := ParseProof(r.Proof)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadProof, err)
	}
	want := hex.EncodeToString(sum(r.lastIn))
	switch {
	case pr.Runner != r.Peer:
		return fmt.Errorf("%w: signed by %s", errBadProof, pr.Runner)
	case pr.Caller != p.m.self:
		return fmt.Errorf("%w: made for %s", errBadProof, pr.Caller)
	case !pr.Descriptor.Equals(d.id):
		return fmt.Errorf("%w: of %s", errBadProof, pr.Descriptor)
	case pr.Input != want:
		return fmt.Errorf("%w: of another input", errBadProof)
	case pr.Seed != hex.EncodeToString(sum(p.seed)):
		return fmt.Errorf("%w: with another seed", errBadProof)
	case r.OutputCID.Defined() && !pr.OutputCID.Equals(r.OutputCID):
		return fmt.Errorf("%w: it attests output %s", errBadProof, pr.OutputCID)
	case !r.OutputCID.Defined() && pr.Output != hex.EncodeToString(sum(r.Output)):
		return fmt.Errorf("%w: it attests another output", errBadProof)
	}
	return nil
}
