package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

const (
	// perNode is how many runs of a job one node gets at once.
	perNode = 2
	// runAllowance is how long a run may take beyond its limit: to
	// fetch and compile the module.
	runAllowance = 30 * time.Second
	// checkEvery is how often the loop looks for stragglers when no
	// run ends.
	checkEvery = 200 * time.Millisecond
	// localityWait is how long a map waits for a busy node that holds
	// its split before it runs on another.
	localityWait = 3 * time.Second
	// judgeAgain is when a runner told it is not paid is told again:
	// a run cancelled before it ended may not have been waiting yet.
	judgeAgain = 2 * time.Second
	// judgeWait bounds one word to a runner, and judgeGrace how long
	// it may go on once the node closes: a pay the job counts is one
	// its runner was told of.
	judgeWait  = 10 * time.Second
	judgeGrace = 2 * time.Second
)

// kind is why a run of a task was started.
type kind int

const (
	primary kind = iota // the task's run
	backup              // a copy of a slow run; the first to finish wins
	check               // a run that verifies a finished one
)

func (k kind) String() string { return [...]string{"run", "backup", "verify run"}[k] }

// attempt is one run of a task under way.
type attempt struct {
	t      *task
	reduce bool
	node   peer.ID
	kind   kind
	start  time.Time
	cancel context.CancelFunc
	most   int64
	p      *service.Pipeline
	// from are the mappers a reduce reads its parts from.
	from []peer.ID
}

type outcome struct {
	a   *attempt
	r   service.Result
	out []string
}

// vrun is one node's output of a verified task, and the run's pay while
// it waits for the comparison.
type vrun struct {
	node peer.ID
	out  []string
	p    *service.Pipeline // nil: nothing to judge (a run on this node, or one judged already)
	r    service.Result
	most int64 // held in coord.reserved until the run is judged
}

// sched runs a job's tasks: the loop that starts runs, waits for them
// and decides what each outcome means.
type sched struct {
	c          *coord
	mapD, redD *service.Descriptor
	mapTimeout time.Duration
	redTimeout time.Duration
	holders    map[string]map[peer.ID]bool
	runs       map[*task][]*attempt
	load       map[peer.ID]int
	noCompute  map[peer.ID]bool
	bad        map[peer.ID]bool
	vr         map[*task][]vrun
	waiting    map[*task]time.Time      // since when a map waits for a busy holder
	durs       map[bool][]time.Duration // by reduce
	results    chan outcome
	total      int
}

// execute plans the job (unless a restart finds it planned), runs it and
// makes the result.
func (c *coord) execute() (cid.Cid, error) {
	ctx := c.ctx
	c.setPhase("plan")
	c.mu.Lock()
	planned := c.rec.Planned
	c.mu.Unlock()
	if !planned {
		if err := c.plan(ctx); err != nil {
			return cid.Undef, c.why(ctx, err)
		}
		c.mu.Lock()
		n := len(c.rec.Maps)
		c.mu.Unlock()
		c.logf(nil, "", "planned %d map tasks and %d reduce tasks", n, len(c.rec.Reduces))
	}
	s := &sched{c: c, runs: map[*task][]*attempt{}, load: map[peer.ID]int{}, noCompute: map[peer.ID]bool{},
		bad: map[peer.ID]bool{}, vr: map[*task][]vrun{}, waiting: map[*task]time.Time{}, durs: map[bool][]time.Duration{}, results: make(chan outcome)}
	var err error
	if s.mapD, err = c.m.cfg.Services.Resolve(ctx, c.spec.Map); err != nil {
		return cid.Undef, c.why(ctx, fmt.Errorf("map service %s: %w", c.spec.Map, err))
	}
	s.mapTimeout = c.runTimeout(s.mapD)
	if c.spec.Reduce != "" {
		if s.redD, err = c.m.cfg.Services.Resolve(ctx, c.spec.Reduce); err != nil {
			return cid.Undef, c.why(ctx, fmt.Errorf("reduce service %s: %w", c.spec.Reduce, err))
		}
		s.redTimeout = c.runTimeout(s.redD)
	}
	if c.spec.Budget == 0 && (!s.mapD.Price.IsZero() || s.redD != nil && !s.redD.Price.IsZero()) {
		return cid.Undef, fmt.Errorf("%w: the job's services are priced and it has no budget", ErrBudget)
	}
	if c.spec.VerifyFraction > 0 && !s.mapD.Deterministic {
		return cid.Undef, fmt.Errorf("%w: map service %s is not declared deterministic, so its runs cannot be compared", ErrBadSpec, s.mapD.Label())
	}
	c.mu.Lock()
	for _, p := range c.rec.Bad {
		s.bad[p] = true
	}
	// A winner kept before a restart, whose pay waits for its
	// comparison, is judged as if this coordinator had run it.
	for _, t := range c.rec.Maps {
		if d := t.Pay; d != nil && t.Done && !t.Verified && d.Node == t.Node {
			s.vr[t] = []vrun{{node: d.Node, out: t.Out, p: c.m.cfg.Services.Service(s.mapD.ID().String()),
				r: service.Result{Peer: d.Node, Call: d.Call, Cost: d.Cost}, most: d.Most}}
			c.reserved += d.Most
		} else {
			t.Pay = nil
		}
	}
	c.mu.Unlock()
	s.holders = c.holders(ctx, s.nodes())
	if err := s.loop(ctx); err != nil {
		return cid.Undef, c.why(ctx, err)
	}
	c.setPhase("result")
	res, err := c.makeResult(ctx)
	if err != nil {
		return cid.Undef, c.why(ctx, fmt.Errorf("make the result directory: %w", err))
	}
	c.logf(nil, "", "result %s", res)
	return res, nil
}

// why says why the job stopped when its context did, or passes err on.
func (c *coord) why(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
		if errors.Is(err, ErrInputNotFound) {
			return err
		}
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

func (c *coord) setPhase(p string) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
}

// nodes are the nodes the job may run on now.
func (s *sched) nodes() []peer.ID {
	c := s.c
	var out []peer.ID
	if len(c.spec.Nodes) > 0 {
		out = slices.Clone(c.spec.Nodes)
	} else {
		out = append([]peer.ID{c.m.self}, c.m.cfg.Host.Network().Peers()...)
	}
	out = slices.DeleteFunc(out, func(p peer.ID) bool { return s.bad[p] || s.noCompute[p] })
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return slices.Compact(out)
}

func (s *sched) connected(p peer.ID) bool {
	return p == s.c.m.self || s.c.m.cfg.Host.Network().Connectedness(p) == network.Connected
}

// loop starts runs while there are tasks to run and nodes to run them,
// and handles each run's outcome, until every task is done.
func (s *sched) loop(ctx context.Context) error {
	defer s.drain()
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	for {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		phase, pending := s.pending()
		if phase == "" {
			return nil
		}
		s.c.setPhase(phase)
		blocked := s.launch(ctx, pending)
		if s.total == 0 {
			if blocked == nil {
				blocked = fmt.Errorf("%w: no node is left to run the job's tasks", ErrTaskFailed)
			}
			return blocked
		}
		s.backups(ctx, phase == "reduce")
		select {
		case o := <-s.results:
			if err := s.handle(ctx, o); err != nil {
				return err
			}
		case <-tick.C:
			if phase == "reduce" {
				s.checkMappers(ctx)
			}
		case <-ctx.Done():
		}
	}
}

// want is a run the loop would start.
type want struct {
	t    *task
	kind kind
}

// pending returns the phase the job is in ("" once every task is done)
// and the runs it wants started.
func (s *sched) pending() (string, []want) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []want
	mapsDone := true
	for _, t := range c.rec.Maps {
		switch {
		case !t.Done:
			mapsDone = false
			if len(s.runs[t]) == 0 {
				out = append(out, want{t, primary})
			}
		case s.verifies(t) && !t.Verified:
			mapsDone = false
			if !slices.ContainsFunc(s.runs[t], func(a *attempt) bool { return a.kind == check }) {
				out = append(out, want{t, check})
			}
		}
	}
	if !mapsDone {
		return "map", out
	}
	for _, t := range c.rec.Reduces {
		if !t.Done && len(s.runs[t]) == 0 {
			out = append(out, want{t, primary})
		}
	}
	for _, t := range c.rec.Reduces {
		if !t.Done {
			return "reduce", out
		}
	}
	return "", nil
}

func (s *sched) verifies(t *task) bool { return s.c.verifies(t, s.mapD.Deterministic) }

func (s *sched) isReduce(t *task) bool { return t.Name != "" && strings.HasPrefix(t.Name, "reduce-") }

// launch starts the runs it can; it returns why it could start none
// when it started none.
func (s *sched) launch(ctx context.Context, ws []want) error {
	var why error
	for _, w := range ws {
		node := s.pick(w.t, w.kind)
		if node == "" {
			if why == nil {
				why = fmt.Errorf("%w: no node is left to run %s (failed on %v)", ErrTaskFailed, w.t.Name, w.t.Failed)
			}
			continue
		}
		most := s.most(w.t, node)
		if err := s.afford(w.t, most); err != nil {
			why = err
			continue
		}
		s.start(ctx, w.t, node, w.kind, most)
	}
	return why
}

// most is the most a run of t on node may cost.
func (s *sched) most(t *task, node peer.ID) int64 {
	d, lim := s.mapD, s.mapTimeout
	if s.isReduce(t) {
		d, lim = s.redD, s.redTimeout
	}
	if node == s.c.m.self || d.Price.IsZero() {
		return 0
	}
	return d.Price.Most(lim)
}

// afford says whether a run that may cost most fits the budget.
func (s *sched) afford(t *task, most int64) error {
	if most == 0 {
		return nil
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.spec.Budget; uint64(c.rec.Spent)+uint64(c.reserved)+uint64(most) > b {
		return fmt.Errorf("%w: the job has paid %d of its %d millicredits and has %d reserved; a run of %s may cost %d more",
			ErrBudget, c.rec.Spent, b, c.reserved, t.Name, most)
	}
	return nil
}

// pick chooses the node for a run of t: for a map, a node that holds its
// file where one can take it (waiting for one that is busy), else the
// least loaded. Never a node that failed t, lied, was lost or runs no
// code, nor one running t already.
func (s *sched) pick(t *task, k kind) peer.ID {
	ok := func(p peer.ID) bool {
		if slices.Contains(t.Failed, p) || slices.ContainsFunc(s.runs[t], func(a *attempt) bool { return a.node == p }) {
			return false
		}
		if k == check && slices.ContainsFunc(s.verifyRuns(t), func(v vrun) bool { return v.node == p }) {
			return false
		}
		return true
	}
	var best peer.ID
	bestLoad := perNode
	holderWaiting := false
	nodes := s.nodes()
	if key := placeKey(t); !s.isReduce(t) && key != "" {
		for _, p := range nodes {
			if !s.holders[key][p] || !ok(p) {
				continue
			}
			if s.load[p] < bestLoad {
				best, bestLoad = p, s.load[p]
			} else {
				holderWaiting = true
			}
		}
		if best != "" {
			delete(s.waiting, t)
			return best
		}
		if holderWaiting && k == primary {
			// Wait a while for a busy holder, as Hadoop's delay
			// scheduling does, then read the split from afar.
			since, ok := s.waiting[t]
			if !ok {
				s.waiting[t] = time.Now()
				return ""
			}
			if time.Since(since) < localityWait {
				return ""
			}
			delete(s.waiting, t)
		}
	}
	for _, p := range nodes {
		if ok(p) && s.load[p] < bestLoad {
			best, bestLoad = p, s.load[p]
		}
	}
	return best
}

// verifyRuns returns t's runs compared so far, seeding them with its
// winner's output.
func (s *sched) verifyRuns(t *task) []vrun {
	if len(s.vr[t]) == 0 && t.Done {
		s.vr[t] = []vrun{{node: t.Node, out: t.Out}}
	}
	return s.vr[t]
}

// start starts one run of t on node.
func (s *sched) start(ctx context.Context, t *task, node peer.ID, k kind, most int64) {
	c := s.c
	reduce := s.isReduce(t)
	lim, in := s.mapTimeout, []byte(nil)
	if reduce {
		lim, in = s.redTimeout, c.reduceInput(t)
	} else {
		in = c.mapInput(t)
	}
	// The descriptor's CID, not its name: every run of the job runs the
	// same code, whatever is published meanwhile.
	d := s.mapD
	if reduce {
		d = s.redD
	}
	p := c.m.cfg.Services.Service(d.ID().String()).On(node).Judged().WithLimits(wasm.Limits{Timeout: lim}).Allow(c.spec.Allow...)
	if t.Space != "" {
		p = p.Allow(service.Allow{Space: t.Space, Access: service.Read, Prefix: t.Key})
	}
	if reduce {
		p = p.OutCID()
	}
	actx, cancel := context.WithTimeout(ctx, lim+runAllowance)
	a := &attempt{t: t, reduce: reduce, node: node, kind: k, start: time.Now(), cancel: cancel, most: most, p: p}
	if reduce {
		a.from = s.mappers()
	}
	s.runs[t] = append(s.runs[t], a)
	s.load[node]++
	s.total++
	c.mu.Lock()
	c.running++
	c.reserved += most
	c.mu.Unlock()
	c.logf(t, node, "%s started", k)
	go func() {
		if reduce {
			c.fetchParts(actx, t, node)
		}
		var r service.Result
		for _, x := range p.CallN(actx, 1, in) {
			r = x
		}
		if r.Err == nil && r.Peer == "" {
			// Cancelled before the run gave anything back.
			r.Err = fmt.Errorf("run of %s on %s: %w", t.Name, node, context.Cause(actx))
		}
		cancel()
		var out []string
		if r.Err == nil {
			out, r.Err = s.output(a, r)
		}
		s.results <- outcome{a: a, r: r, out: out}
	}()
}

// output reads what a successful run gave.
func (s *sched) output(a *attempt, r service.Result) ([]string, error) {
	if a.reduce {
		if !r.OutputCID.Defined() {
			return nil, fmt.Errorf("%w: a reduce on %s gave no output CID", ErrBadContract, a.node)
		}
		return []string{r.OutputCID.String()}, nil
	}
	out, err := parseMapOutput(r.Output, s.c.spec.Reducers)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", a.t.Name, a.node, err)
	}
	return out, nil
}

// mappers are the nodes holding the finished maps' outputs.
func (s *sched) mappers() []peer.ID {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []peer.ID
	for _, t := range c.rec.Maps {
		if t.Done && !slices.Contains(out, t.Node) {
			out = append(out, t.Node)
		}
	}
	return out
}

// ended takes a run off the books.
func (s *sched) ended(a *attempt) {
	s.runs[a.t] = slices.DeleteFunc(s.runs[a.t], func(x *attempt) bool { return x == a })
	if len(s.runs[a.t]) == 0 {
		delete(s.runs, a.t)
	}
	s.load[a.node]--
	s.total--
	c := s.c
	c.mu.Lock()
	c.running--
	c.reserved -= a.most
	c.mu.Unlock()
}

// handle decides what one run's outcome means.
func (s *sched) handle(ctx context.Context, o outcome) error {
	a, r := o.a, o.r
	s.ended(a)
	t := a.t
	switch {
	case r.Err != nil:
		return s.failed(ctx, a, r)
	case a.kind == check:
		return s.compare(a, r, o.out)
	case t.Done:
		s.judge(a, r, false)
		s.c.logf(t, a.node, "%s finished after another run won: not paid", a.kind)
		return nil
	default:
		return s.won(a, r, o.out)
	}
}

// won keeps the first run of t to finish.
func (s *sched) won(a *attempt, r service.Result, out []string) error {
	c, t := s.c, a.t
	c.mu.Lock()
	t.Done, t.Node, t.Out = true, a.node, out
	if !slices.Contains(c.rec.Nodes, a.node) {
		c.rec.Nodes = append(c.rec.Nodes, a.node)
	}
	if !a.reduce && t.Root != "" {
		if s.holders[t.Root][a.node] {
			c.rec.BytesLocal += t.Length
		} else {
			c.rec.BytesFetched += t.Length
		}
	}
	d := time.Since(a.start)
	c.durs = append(c.durs, d)
	s.durs[a.reduce] = append(s.durs[a.reduce], d)
	c.mu.Unlock()
	for _, o := range s.runs[t] {
		if o.kind != check {
			o.cancel()
		}
	}
	if !a.reduce && s.verifies(t) && !t.Verified {
		// Paid once the comparison says it agreed; kept on disk so
		// that a coordinator started again can judge it.
		v := s.hold(a, r, out)
		s.vr[t] = []vrun{v}
		if v.p != nil {
			c.mu.Lock()
			t.Pay = &deferredPay{Node: a.node, Call: r.Call, Cost: r.Cost, Most: v.most}
			c.mu.Unlock()
		}
	} else {
		s.pay(a, r)
	}
	c.logf(t, a.node, "done in %v (%s)", d.Round(time.Millisecond), a.kind)
	return s.save()
}

func (s *sched) save() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if err := s.c.saveLocked(); err != nil {
		return fmt.Errorf("keep the job's progress: %w", err)
	}
	return nil
}

// pay judges a run that has ended paid and counts what it cost.
func (s *sched) pay(a *attempt, r service.Result) {
	s.settle(nil, s.hold(a, r, nil), true)
}

// hold keeps a run that has ended (so off the books, see ended) waiting
// for its pay: its most goes back into the job's reserve until settle.
func (s *sched) hold(a *attempt, r service.Result, out []string) vrun {
	v := vrun{node: a.node, out: out}
	if a.node == s.c.m.self || r.Peer == "" {
		return v
	}
	v.p, v.r, v.most = a.p, r, a.most
	s.c.mu.Lock()
	s.c.reserved += v.most
	s.c.mu.Unlock()
	return v
}

// settle judges a run held by hold, paid or not, and takes it off the
// job's reserve; paid, its cost is spent. t, if not nil, is its task,
// whose kept pay it clears. It tells the runner in the background.
func (s *sched) settle(t *task, v vrun, pay bool) {
	if s.unhold(t, v) {
		if pay {
			s.c.mu.Lock()
			s.c.rec.Spent += v.r.Cost
			s.c.mu.Unlock()
		}
		s.judgeRun(v.p, v.node, v.r, pay)
	}
}

// settleNow pays a run held by hold, waiting for the word to reach its
// runner (a little beyond the node's closing): only a pay told is spent,
// and a pay not told stays kept on t for a coordinator started again.
func (s *sched) settleNow(ctx context.Context, t *task, v vrun) {
	if v.p == nil {
		return
	}
	m := s.c.m
	err := v.p.Judge(ctx, v.r, true)
	s.c.mu.Lock()
	s.c.reserved -= v.most
	if err == nil {
		s.c.rec.Spent += v.r.Cost
		if t != nil && t.Pay != nil && t.Pay.Node == v.node {
			t.Pay = nil
		}
	}
	s.c.mu.Unlock()
	if err != nil {
		m.log.Info("could not tell a runner it is paid; the job does not count it", "peer", v.node, "err", err)
	}
}

// unhold takes v off the job's reserve and clears t's kept pay if it is
// v's; false if v has nothing to judge.
func (s *sched) unhold(t *task, v vrun) bool {
	if v.p == nil {
		return false
	}
	c := s.c
	c.mu.Lock()
	c.reserved -= v.most
	if t != nil && t.Pay != nil && t.Pay.Node == v.node {
		t.Pay = nil
	}
	c.mu.Unlock()
	return true
}

// judgeCtx bounds one word to a runner: judgeWait, and no more than
// judgeGrace once the manager closes.
func (m *Manager) judgeCtx() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), judgeWait)
	stop := context.AfterFunc(m.ctx, func() { time.AfterFunc(judgeGrace, cancel) })
	return ctx, func() { stop(); cancel() }
}

// judge tells a run's node that it is not paid, or paid when pay (and
// the caller counted it), in the background; a run not paid is told
// twice (see judgeAgain).
func (s *sched) judge(a *attempt, r service.Result, pay bool) {
	if a == nil {
		return
	}
	s.judgeRun(a.p, a.node, r, pay)
}

func (s *sched) judgeRun(p *service.Pipeline, node peer.ID, r service.Result, pay bool) {
	if p == nil || node == s.c.m.self || r.Peer == "" {
		return
	}
	m := s.c.m
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for i := range 2 {
			ctx, cancel := m.judgeCtx()
			err := p.Judge(ctx, r, pay)
			cancel()
			if err != nil {
				m.log.Info("could not tell a runner whether it is paid; its reserve expires unpaid", "peer", node, "err", err)
			}
			if pay || i == 1 {
				return
			}
			select {
			case <-time.After(judgeAgain):
			case <-m.ctx.Done():
				return
			}
		}
	}()
}

// failed handles a run that failed: the task runs again elsewhere.
func (s *sched) failed(ctx context.Context, a *attempt, r service.Result) error {
	s.judge(a, r, false)
	t, c := a.t, s.c
	if ctx.Err() != nil || t.Done && a.kind != check {
		return nil // cancelled: the job ended, or another run won
	}
	if a.kind == check && !t.Done {
		return nil // cancelled: the task was taken back (lost), not the verifier's fault
	}
	err := r.Err
	switch {
	case errors.Is(err, service.ErrNoCompute) || errors.Is(err, service.ErrNotOffered):
		s.noCompute[a.node] = true
		c.logf(t, a.node, "node runs no code for this job: %v", err)
		return nil
	case errors.Is(err, service.ErrBusy):
		c.logf(t, a.node, "node busy; %s waits for another", t.Name)
		return nil
	}
	if s.cut() {
		c.logf(t, a.node, "%s failed while this node has no connection at all: not held against the node: %v", a.kind, err)
		return nil
	}
	if !s.reach(ctx, a.node) {
		s.lost(a.node)
	}
	lostMapper := false
	if a.reduce {
		s.checkMappers(ctx)
		lostMapper = slices.ContainsFunc(a.from, func(p peer.ID) bool { return s.bad[p] })
	}
	if lostMapper && !s.bad[a.node] {
		c.logf(t, a.node, "%s failed while a mapper was lost; it runs again once the lost maps have: %v", a.kind, err)
		return s.save()
	}
	c.mu.Lock()
	t.Failed = append(t.Failed, a.node)
	c.rec.Failed++
	n := len(t.Failed)
	c.mu.Unlock()
	c.logf(t, a.node, "%s failed (%d of %d): %v", a.kind, n, c.spec.MaxAttempts, err)
	if n >= c.spec.MaxAttempts {
		return fmt.Errorf("%w: %s failed on %v; last: %v", ErrTaskFailed, t.Name, t.Failed, err)
	}
	return s.save()
}

// checkMappers looks for nodes holding map outputs that cannot be
// reached any more, and has their maps run again.
func (s *sched) checkMappers(ctx context.Context) {
	if s.cut() {
		return
	}
	for _, p := range s.mappers() {
		if !s.bad[p] && !s.reach(ctx, p) {
			s.lost(p)
		}
	}
}

// cut reports whether this node has no connection to any other: then
// it, not they, is what failed (its host is going down, or its network
// is).
func (s *sched) cut() bool { return len(s.c.m.cfg.Host.Network().Peers()) == 0 }

// reachWait bounds how long the loop tries to reach a node it lost its
// connection to before it counts the node lost.
const reachWait = 2 * time.Second

// reach reports whether p is connected, or can be connected again
// within reachWait.
func (s *sched) reach(ctx context.Context, p peer.ID) bool {
	if s.connected(p) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, reachWait)
	defer cancel()
	return s.c.m.cfg.Host.Connect(ctx, peer.AddrInfo{ID: p}) == nil
}

// lost gives node p no more tasks and, while reduces still need them,
// runs again the maps whose outputs only it holds.
func (s *sched) lost(p peer.ID) {
	c := s.c
	if s.bad[p] {
		return
	}
	// Only this run of the coordinator forgets it: the node may be back
	// by the next, and a coordinator whose own host went down first
	// would otherwise keep every node out.
	s.bad[p] = true
	c.mu.Lock()
	needed := slices.ContainsFunc(c.rec.Reduces, func(t *task) bool { return !t.Done })
	var again []string
	var back []*task
	for _, t := range c.rec.Maps {
		if needed && t.Done && t.Node == p {
			t.Done, t.Node, t.Out, t.Verified = false, "", nil, false
			again = append(again, t.Name)
			back = append(back, t)
		}
	}
	c.mu.Unlock()
	// A map taken back is compared no more: its verify runs stop, and
	// no run of it is paid (its kept output is gone with p).
	for _, t := range back {
		for _, v := range s.vr[t] {
			s.settle(t, v, false)
		}
		delete(s.vr, t)
		for _, a := range s.runs[t] {
			if a.kind == check {
				a.cancel()
			}
		}
	}
	// A reduce reading from p would wait for its part until its time
	// limit: it stops now, and runs again once the maps have.
	for _, rs := range s.runs {
		for _, a := range rs {
			if slices.Contains(a.from, p) {
				a.cancel()
			}
		}
	}
	c.logf(nil, p, "node lost; %d finished maps whose outputs it held run again %v", len(again), again)
}

// compare handles a verify run of t: the same output as the first agrees;
// a different one calls for a third run, and the majority wins.
func (s *sched) compare(a *attempt, r service.Result, out []string) error {
	c, t := s.c, a.t
	if !t.Done {
		// The task was taken back (its mapper lost) while this ran:
		// there is nothing to compare it with.
		s.judge(a, r, false)
		c.logf(t, a.node, "verify run of a map taken back: not compared, not paid")
		return nil
	}
	vs := append(s.verifyRuns(t), s.hold(a, r, out))
	s.vr[t] = vs
	count := map[string][]int{}
	for i, v := range vs {
		k := strings.Join(v.out, ",")
		count[k] = append(count[k], i)
	}
	if len(vs) == 2 && len(count) == 1 {
		c.mu.Lock()
		t.Verified = true
		c.mu.Unlock()
		for _, v := range vs {
			s.settle(t, v, true)
		}
		delete(s.vr, t)
		c.logf(t, a.node, "verified: the same output as %s", vs[0].node)
		return s.save()
	}
	if len(vs) == 2 {
		c.logf(t, a.node, "verify run differs from %s's; a third node decides", vs[0].node)
		return nil // pending starts another verify run
	}
	var best []int
	for _, idx := range count {
		if len(idx) > len(best) {
			best = idx
		}
	}
	dis := Disagreement{Task: t.Name, Outputs: map[peer.ID]string{}}
	for i, v := range vs {
		h := sha256.Sum256([]byte(strings.Join(v.out, ",")))
		dis.Outputs[v.node] = hex.EncodeToString(h[:8])
		if len(best) < 2 || !slices.Contains(best, i) {
			dis.Minority = append(dis.Minority, v.node)
		}
	}
	slices.Sort(dis.Minority)
	c.mu.Lock()
	c.rec.Disagreements = append(c.rec.Disagreements, dis)
	c.mu.Unlock()
	c.logf(t, "", "runs disagree; in the minority: %v", dis.Minority)
	if len(best) < 2 {
		// No output is kept, so no run is paid.
		for _, v := range vs {
			s.settle(t, v, false)
		}
		delete(s.vr, t)
		return fmt.Errorf("%w: %s: the runs of %v all disagree", ErrTaskFailed, t.Name, dis.Outputs)
	}
	win := vs[best[0]]
	c.mu.Lock()
	t.Node, t.Out, t.Verified = win.node, win.out, true
	c.mu.Unlock()
	for i, v := range vs {
		if slices.Contains(best, i) {
			s.settle(t, v, true)
		} else {
			s.settle(t, v, false)
			s.bad[v.node] = true
			c.mu.Lock()
			if !slices.Contains(c.rec.Bad, v.node) {
				c.rec.Bad = append(c.rec.Bad, v.node)
			}
			c.mu.Unlock()
		}
	}
	delete(s.vr, t)
	return s.save()
}

// backups start a copy of each run that takes far longer than the
// phase's runs took, once the phase has no task left to start.
func (s *sched) backups(ctx context.Context, reduce bool) {
	if s.c.spec.NoBackup {
		return
	}
	durs := s.durs[reduce]
	if len(durs) == 0 {
		return
	}
	sorted := slices.Clone(durs)
	slices.Sort(sorted)
	slow := max(3*sorted[len(sorted)/2], time.Second)
	c := s.c
	c.mu.Lock()
	tasks := c.rec.Maps
	if reduce {
		tasks = c.rec.Reduces
	}
	for _, t := range tasks {
		if !t.Done && len(s.runs[t]) == 0 {
			c.mu.Unlock()
			return // tasks still to start: not the end of the phase
		}
	}
	var slowRuns []*attempt
	for _, t := range tasks {
		if rs := s.runs[t]; !t.Done && len(rs) == 1 && rs[0].kind == primary && time.Since(rs[0].start) > slow {
			slowRuns = append(slowRuns, rs[0])
		}
	}
	c.mu.Unlock()
	for _, a := range slowRuns {
		node := s.pick(a.t, backup)
		if node == "" {
			continue
		}
		most := s.most(a.t, node)
		if s.afford(a.t, most) != nil {
			continue
		}
		s.start(ctx, a.t, node, backup, most)
	}
}

// drain stops the runs still under way and waits for each: none is
// paid. A task awaiting verification whose comparison never happened
// has its winner paid (counted only once the runner is told); a task
// whose two runs differed and awaited a third pays neither.
func (s *sched) drain() {
	for _, rs := range s.runs {
		for _, a := range rs {
			a.cancel()
		}
	}
	for s.total > 0 {
		o := <-s.results
		s.ended(o.a)
		s.judge(o.a, o.r, false)
	}
	ctx, cancel := s.c.m.judgeCtx()
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for t, vs := range s.vr {
		if len(vs) == 1 {
			wg.Go(func() { s.settleNow(ctx, t, vs[0]) })
		} else {
			for _, v := range vs {
				s.settle(t, v, false)
			}
		}
		delete(s.vr, t)
	}
}
