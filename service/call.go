package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/wasm"
)

// Pipeline is one or more services run one after the other, each
// stage's output being the next one's input. A single service is a
// pipeline of one stage. Pipelines are values: Then builds a longer one
// without changing either part.
type Pipeline struct {
	m      *Manager
	refs   []string
	limits wasm.Limits
	on     []peer.ID // if set, the only nodes to run on, in this order
	allows []Allow   // what each run may touch: a capability per run
	near   string    // a CID or OWNER/NAME to run beside
	outCID bool      // the last stage's output comes back as a CID
	depth  int       // how deep this call is nested in runs
	seed   []byte    // the seed of deterministic runs
	// maxDepth is how deep its runs' calls may nest; nil: DefaultDepth.
	maxDepth *int
	verdict  bool   // priced runs wait for the caller's verdict (Verify)
	budget   uint64 // what its runs' own calls may spend, in millicredits
	// cached calls look for a memo record first (Cached); memoVerify
	// is the runs that must agree with another user's record.
	cached     bool
	memoVerify int
	memo       bool // the last stage's runner signs a memo record
}

// Service returns the pipeline ref names: a service name, name@version,
// a descriptor CID, or stages joined by '|' ("resize | thumbnail").
// Nothing is looked up until the pipeline is called.
func (m *Manager) Service(ref string) *Pipeline {
	p := &Pipeline{m: m}
	for _, s := range strings.Split(ref, "|") {
		p.refs = append(p.refs, strings.TrimSpace(s))
	}
	return p
}

// Then returns the pipeline that runs p, then q on p's output.
func (p *Pipeline) Then(q *Pipeline) *Pipeline {
	r := *p
	r.refs = append(append([]string(nil), p.refs...), q.refs...)
	return &r
}

// Allow returns p with rights its runs get: each run is given a
// capability, signed by this node's user, for its module on its node,
// naming these spaces and services and nothing else. A run without one
// may read content and nothing more. ParseAllow reads them as `nube
// call --allow` takes them.
func (p *Pipeline) Allow(rights ...Allow) *Pipeline {
	q := *p
	q.allows = slices.Clone(p.allows)
	for _, a := range rights {
		if a.Space != "" && !strings.Contains(a.Space, "/") {
			a.Space = p.m.user.String() + "/" + a.Space
		}
		q.allows = append(q.allows, a)
	}
	return &q
}

// Near returns p run beside ref, a CID or a space (OWNER/NAME): on a
// node that holds it and runs code for this caller, where one does, so
// that the data does not cross the network. Where none does, the call
// runs elsewhere; Result.Near says which.
func (p *Pipeline) Near(ref string) *Pipeline {
	q := *p
	q.near = ref
	if _, err := cid.Decode(ref); err != nil && ref != "" && !strings.Contains(ref, "/") {
		q.near = p.m.user.String() + "/" + ref // a space of this user's
	}
	return &q
}

// Depth returns p whose runs' own calls may nest n deep: 0 lets a run
// call nothing. The default is DefaultDepth; at most MaxDepth.
func (p *Pipeline) Depth(n int) *Pipeline {
	q := *p
	q.maxDepth = &n
	return &q
}

// Budget returns p whose runs' own calls of priced services may spend
// at most mc millicredits each run. The default is none.
func (p *Pipeline) Budget(mc uint64) *Pipeline {
	q := *p
	q.budget = mc
	return &q
}

// OutCID returns p with its output left as content on the node that ran
// the last stage: Result.OutputCID names it, and Result.Output is empty.
// The caller fetches the bytes when it wants them.
func (p *Pipeline) OutCID() *Pipeline {
	q := *p
	q.outCID = true
	return &q
}

// On returns p restricted to run on the given nodes, tried in the order
// given: where data must stay, or to compare nodes.
func (p *Pipeline) On(nodes ...peer.ID) *Pipeline {
	q := *p
	q.on = append([]peer.ID(nil), nodes...)
	return &q
}

// WithLimits returns p with the limits the caller asks for each run;
// zero fields leave the descriptor's. A node never gives more than its
// own maximum.
func (p *Pipeline) WithLimits(l wasm.Limits) *Pipeline {
	q := *p
	q.limits = l
	return &q
}

// String returns the pipeline as "a | b".
func (p *Pipeline) String() string { return strings.Join(p.refs, " | ") }

// Resolve looks up every stage, expanding published pipelines into their
// stages.
func (p *Pipeline) Resolve(ctx context.Context) ([]*Descriptor, error) {
	var out []*Descriptor
	var expand func(d *Descriptor, depth int) error
	expand = func(d *Descriptor, depth int) error {
		if !d.IsPipeline() {
			if len(out) == MaxStages {
				return fmt.Errorf("pipeline %s has more than %d stages", p, MaxStages)
			}
			out = append(out, d)
			return nil
		}
		if depth > 4 {
			return fmt.Errorf("pipeline %s nests pipelines more than 4 deep", p)
		}
		for _, c := range d.Stages {
			sd, err := p.m.byID(ctx, c)
			if err != nil {
				return fmt.Errorf("stage of %s: %w", d.Label(), err)
			}
			if err := expand(sd, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, ref := range p.refs {
		if ref == "" {
			return nil, fmt.Errorf("pipeline %q has an empty stage", p.String())
		}
		d, err := p.m.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := expand(d, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Publish publishes the pipeline as a service of its own: a descriptor
// signed by this node's user that lists the stages' descriptors. Calling
// it by name or CID runs the stages.
func (p *Pipeline) Publish(ctx context.Context, opt PublishOptions) (*Descriptor, error) {
	if err := CheckName(opt.Name); err != nil {
		return nil, err
	}
	d := opt.descriptor()
	for _, ref := range p.refs {
		sd, err := p.m.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		d.Stages = append(d.Stages, sd.id)
	}
	return p.m.publish(ctx, d)
}

// Result is one node's run of a pipeline.
type Result struct {
	// Peer is the node that ran every stage.
	Peer   peer.ID
	Output []byte
	// Usage adds up the stages' usage.
	Usage wasm.Usage
	// Elapsed is the time from the first stage's call to the last
	// stage's answer, as the caller saw it.
	Elapsed time.Duration
	// Cold is set if any stage had to fetch or compile its module.
	Cold bool
	// Cost is what the stages cost, in millicredits.
	Cost int64
	// Call names the call in this node's CallRecord and in the
	// Records of the node that ran it.
	Call string
	// OutputCID is the output, left as content on Peer, for a pipeline
	// made with OutCID.
	OutputCID cid.Cid
	// Near is set when the pipeline was to run near its data and Peer
	// holds it.
	Near bool
	// Proof is Peer's signed record of the last stage's run: what it
	// ran, on which input, and the hash of what it gave (for Verify).
	Proof []byte
	// Memo is the record a Cached call's output came from (Peer is
	// then its runner, and nothing ran), or that verified it.
	Memo *Memo
	Err  error

	id      uint64 // the call's ID, as Call names it
	lastIn  []byte // the last stage's input, which its proof attests
	memoRaw []byte // the runner's memo record of the run, if asked for
}

// Call runs the pipeline on one node and returns its output. It picks a
// node with the modules ready where it knows one, and moves on to another
// node if the first cannot run it (unreachable, busy, runs no code).
func (p *Pipeline) Call(ctx context.Context, in []byte) ([]byte, error) {
	for _, r := range p.CallN(ctx, 1, in) {
		return r.Output, r.Err
	}
	return nil, errors.New("no result") // CallN always yields
}

// Any runs the pipeline on two nodes at once and returns the first
// success, cancelling the other: a hedge against a slow node.
func (p *Pipeline) Any(ctx context.Context, in []byte) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs []error
	for _, r := range p.CallN(ctx, 2, in) {
		if r.Err == nil {
			return r, nil
		}
		errs = append(errs, r.Err)
	}
	return Result{}, errors.Join(errs...)
}

// CallN runs the pipeline on n different nodes at once (this one among
// them, if it runs code) and yields each node's result as it arrives.
// A node that cannot run it is replaced by another while there are
// others; if fewer than n nodes can, the missing results are errors.
// Stop the loop early to cancel the runs still under way.
func (p *Pipeline) CallN(ctx context.Context, n int, in []byte) iter.Seq2[peer.ID, Result] {
	return func(yield func(peer.ID, Result) bool) {
		stages, err := p.Resolve(ctx)
		if err != nil {
			yield("", Result{Err: err})
			return
		}
		if n <= 1 && p.memoizable(stages) {
			r := p.callCached(ctx, stages, in)
			yield(r.Peer, r)
			return
		}
		p.callN(ctx, n, stages, in)(yield)
	}
}

// callN is CallN of stages already resolved.
func (p *Pipeline) callN(ctx context.Context, n int, stages []*Descriptor, in []byte) iter.Seq2[peer.ID, Result] {
	return func(yield func(peer.ID, Result) bool) {
		if n < 1 {
			n = 1
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cands := p.on
		var holders map[peer.ID]bool
		if cands == nil {
			cands = p.m.candidates(stages[0])
			if p.near != "" {
				cands, holders = p.m.nearFirst(ctx, p.near, cands)
			}
		} else {
			cands = append([]peer.ID(nil), cands...)
		}
		var mu sync.Mutex
		next := func() (peer.ID, bool) {
			mu.Lock()
			defer mu.Unlock()
			if len(cands) == 0 {
				return "", false
			}
			c := cands[0]
			cands = cands[1:]
			return c, true
		}
		results := make(chan Result)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One ID for the call, whichever node runs it: a node
				// that records it twice ran it twice.
				id := rand.Uint64()
				r := Result{Err: fmt.Errorf("pipeline %s: no node left to run it (%d asked for)", p, n)}
				for {
					pid, ok := next()
					if !ok {
						break
					}
					r = p.runOn(ctx, pid, stages, in, id)
					r.Near = holders[pid]
					if r.Err == nil || !retryable(r.Err) || ctx.Err() != nil {
						break
					}
					p.m.log.Debug("node could not run the pipeline; trying another", "peer", pid, "err", r.Err)
				}
				select {
				case results <- r:
				case <-ctx.Done():
				}
			}()
		}
		go func() {
			wg.Wait()
			close(results)
		}()
		defer func() {
			cancel()
			for range results {
			}
		}()
		for r := range results {
			if !yield(r.Peer, r) {
				return
			}
		}
	}
}

// retryable reports whether err says the node could not run the job at
// all, so another node may. A node cut off after the request reached it
// may have run it (and billed it): that call ends in its error rather
// than run twice.
func retryable(err error) bool {
	if re := (*remote.Error)(nil); errors.As(err, &re) && re.Code == remote.CodeUnreachable {
		return !re.MayHaveRun()
	}
	for _, e := range []error{remote.ErrRefused, remote.ErrNoSuchFunction, ErrNoCompute, ErrNotOffered, ErrUnsettled, ErrBusy, ErrModuleUnavailable} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// runOn runs every stage on node pid, feeding each output on.
func (p *Pipeline) runOn(ctx context.Context, pid peer.ID, stages []*Descriptor, in []byte, id uint64) Result {
	r := Result{Peer: pid, Call: callName(id), id: id}
	start := time.Now()
	lim := limitsToWire(p.limits)
	for i, d := range stages {
		r.lastIn = in
		reply, cost, err := p.callStage(ctx, pid, d, in, lim, id, i == len(stages)-1)
		r.Cost += cost
		if err != nil {
			r.Err = err
			break
		}
		u := reply.Usage.usage()
		r.Usage.CPU += u.CPU
		r.Usage.Wall += u.Wall
		r.Usage.Memory = max(r.Usage.Memory, u.Memory)
		r.Usage.In += u.In
		r.Usage.Out += u.Out
		r.Cold = r.Cold || reply.Cold
		if reply.Kind != "" {
			name := d.Label()
			if len(stages) > 1 {
				name = fmt.Sprintf("%s (stage %d of %s)", d.Label(), i+1, p)
			}
			r.Err = &RunError{Peer: pid, Service: name, Kind: reply.Kind, Message: reply.Message, Usage: u}
			if reply.Kind == kindExit {
				r.Err.(*RunError).Exit = &wasm.ExitError{Code: reply.ExitCode, Stderr: reply.Stderr}
			}
			break
		}
		p.m.learn(d, pid, true)
		in = reply.Output
		r.Proof = reply.Proof
		r.memoRaw = reply.Memo
		if len(reply.OutputCID) > 0 {
			if r.OutputCID, err = cid.Cast(reply.OutputCID); err != nil {
				r.Err = fmt.Errorf("%s on %s answered a bad output CID: %w", d.Label(), pid, err)
				break
			}
		}
	}
	r.Elapsed = time.Since(start)
	if r.Err == nil {
		r.Output = in
	}
	c := CallRecord{At: start, Service: p.String(), Peer: pid, Call: r.Call, Usage: r.Usage, Elapsed: r.Elapsed, Cost: r.Cost}
	if r.Err != nil {
		c.Error = r.Err.Error()
	}
	p.m.recordCall(c)
	return r
}

// fetchAllowance is how long a stage may take beyond its run limit, for
// the node to fetch and compile the module, when the caller set no
// deadline of its own.
const fetchAllowance = 2 * time.Minute

// callStage runs one stage on pid. A caller with no deadline still gets
// an answer: the stage's run limit plus time to fetch and compile. A
// priced stage on another node carries a reserve of the most it may cost,
// which the provider settles; its receipt is checked here and the cost
// comes back.
func (p *Pipeline) callStage(ctx context.Context, pid peer.ID, d *Descriptor, in []byte, lim *limitsWire, id uint64, last bool) (runReply, int64, error) {
	run := p.limits.Timeout
	if run <= 0 {
		run = d.Limits.Timeout
	}
	if run <= 0 {
		run = wasm.DefaultTimeout
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, run+fetchAllowance)
		defer cancel()
	}
	m := p.m
	req := runRequest{Descriptor: d.raw, Input: in, Limits: lim, Cert: &m.cert, Call: id, Depth: p.depth, Seed: p.seed, OutCID: last && p.outCID, Verdict: p.verdict, Memo: last && p.memo}
	if err := checkWants(d, p.allows); err != nil {
		return runReply{}, 0, err
	}
	if len(p.allows) > 0 {
		var err error
		if req.Cap, err = p.capability(ctx, pid, d, run+fetchAllowance); err != nil {
			return runReply{}, 0, err
		}
	}
	if len(in) > inlineInput {
		// A large input goes as content: the runner fetches it.
		c, err := m.cfg.Content.Add(ctx, bytes.NewReader(in), content.AddOptions{NoPin: true})
		if err != nil {
			return runReply{}, 0, fmt.Errorf("add the input of %s as content: %w", d.Label(), err)
		}
		req.Input, req.InputCID = nil, c.Bytes()
	}
	if !d.Price.IsZero() && pid != m.self && m.cfg.Payments != nil {
		var err error
		if req.Reserve, err = m.cfg.Payments.Reserve(pid, d.Price, d.Price.Most(run), reserveTTL(run)); err != nil {
			return runReply{}, 0, fmt.Errorf("%w: reserve for %s: %v", ErrPayment, d.Label(), err)
		}
	}
	start := time.Now()
	reply, err := runFn.At(m.cfg.Remote, pid).Call(ctx, req)
	elapsed := time.Since(start)
	if err != nil || len(reply.Receipt) == 0 {
		return reply, 0, err
	}
	if req.Reserve == nil {
		return reply, 0, fmt.Errorf("%w: %s sent a receipt for a run this node did not reserve", ErrPayment, pid)
	}
	// The provider settles the receipt itself; the caller checks it and
	// says so if it overbilled (never past the reserve).
	cost, err := m.cfg.Payments.Check(req.Reserve, pid, reply.Receipt, reply.Usage.usage(), elapsed)
	if err != nil {
		return reply, cost, fmt.Errorf("%w: %s on %s: %w", ErrPayment, d.Label(), pid, err)
	}
	return reply, cost, nil
}

// candidates lists the nodes to run d on, best first: nodes known to
// have its module ready, then this node, then other connected peers in
// random order. Peers known to run no code are left out.
func (m *Manager) candidates(d *Descriptor) []peer.ID {
	var ready, self, rest []peer.ID
	m.mu.Lock()
	now := time.Now()
	skip := map[peer.ID]bool{m.self: true}
	for p, until := range m.noRun {
		if now.Before(until) {
			skip[p] = true
		} else {
			delete(m.noRun, p)
		}
	}
	if e, ok := m.catalog[d.id]; ok {
		for p := range e.runners {
			if !skip[p] && m.cfg.Host.Network().Connectedness(p) == network.Connected {
				ready = append(ready, p)
				skip[p] = true
			}
		}
	}
	m.mu.Unlock()
	for _, p := range m.cfg.Host.Network().Peers() {
		if !skip[p] {
			rest = append(rest, p)
		}
	}
	rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	if !m.cfg.NoCompute {
		if _, ok := m.rt.Cached(d.Module); ok {
			ready = append([]peer.ID{m.self}, ready...)
		} else {
			self = []peer.ID{m.self}
		}
	}
	return append(append(ready, self...), rest...)
}

// inlineInput is the largest input sent with the call; a larger one is
// added as content and sent by its CID.
const inlineInput = wasm.DefaultMaxInput

// capability signs the capability of one run of d on pid: the pipeline's
// rights, each space lent to that run alone.
func (p *Pipeline) capability(ctx context.Context, pid peer.ID, d *Descriptor, life time.Duration) ([]byte, error) {
	m := p.m
	depth := DefaultDepth
	if p.maxDepth != nil {
		depth = *p.maxDepth
	}
	life = min(life, MaxCapabilityLife)
	// A capability that lends no space is kept and given again to the
	// runs of the same module on the same node while it has half its
	// life left: signing (and checking, on the runner) costs more than
	// a warm run. One that lends a space is made anew each time, with
	// the space's keys as they are.
	key := ""
	if !slices.ContainsFunc(p.allows, func(a Allow) bool { return a.Space != "" }) {
		var b strings.Builder
		b.WriteString(string(pid))
		b.WriteString(d.Module.KeyString())
		b.WriteString(strconv.Itoa(depth))
		b.WriteByte('|')
		b.WriteString(strconv.FormatUint(p.budget, 10))
		for _, a := range p.allows {
			b.WriteByte('|')
			b.WriteString(a.Call)
		}
		key = b.String()
		if raw, ok := m.caps.get(key, life/2); ok {
			return raw, nil
		}
	}
	c := &Capability{Runner: pid, Module: d.Module, Allows: p.allows, Depth: depth, Budget: p.budget, Until: time.Now().Add(life).Truncate(time.Second)}
	c.loans = make([][]byte, len(p.allows))
	for i, a := range p.allows {
		if a.Space == "" {
			continue
		}
		if m.cfg.Spaces == nil {
			return nil, fmt.Errorf("%w: this node has no space layer to lend %s from", ErrNotAllowed, a.Space)
		}
		loan, err := m.cfg.Spaces.Lend(ctx, a.Space, pid, a.Access == Write, a.Prefix, d.Module.String(), c.Until)
		if err != nil {
			return nil, fmt.Errorf("lend %s to the run of %s on %s: %w", a.Space, d.Label(), pid, err)
		}
		c.loans[i] = loan
	}
	raw, err := c.sign(m.cfg.UserKey)
	if err == nil && key != "" {
		m.caps.put(key, raw, c.Until)
	}
	return raw, err
}

// nearFirst puts first among cands the nodes that hold ref (this one
// too, if it does and runs code), and returns which those are.
func (m *Manager) nearFirst(ctx context.Context, ref string, cands []peer.ID) ([]peer.ID, map[peer.ID]bool) {
	if m.cfg.Locate == nil {
		return cands, nil
	}
	found, err := m.cfg.Locate(ctx, ref)
	if err != nil {
		m.log.Info("could not find the nodes that hold the data; running anywhere", "near", ref, "err", err)
		return cands, nil
	}
	holders := map[peer.ID]bool{}
	for _, h := range found {
		holders[h] = true
	}
	var first, rest []peer.ID
	for _, c := range cands {
		if holders[c] {
			first = append(first, c)
		} else {
			rest = append(rest, c)
		}
	}
	// A holder this node knows no way to run on yet is still worth
	// asking: it may run code for this caller.
	for _, h := range found {
		if !slices.Contains(cands, h) && h != m.self {
			first = append(first, h)
		}
	}
	return append(first, rest...), holders
}
