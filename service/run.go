package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/nodecert"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/wasm"
)

// Error kinds on the wire. A kind the caller does not know is kept as
// text; kindFailed is an error of no known kind.
const (
	kindFailed        = "failed"
	kindTimeout       = "timeout"
	kindMemory        = "memory"
	kindInput         = "input"
	kindOutput        = "output"
	kindExit          = "exit"
	kindTrap          = "trap"
	kindInvalid       = "invalid"
	kindCID           = "cid"
	kindNoCompute     = "no-compute"
	kindBusy          = "busy"
	kindFetch         = "fetch"
	kindBadDescriptor = "descriptor"
	kindSignature     = "signature"
	kindCanceled      = "canceled"
	kindNotAllowed    = "not-allowed"
	kindCapability    = "capability"
	kindLimit         = "limit"
)

// kinds is the one table of run errors on the wire: each kind with the
// sentinel it stands for. Classification tries them in this order, so an
// error that matches two kinds always gets the first: the most specific
// (a bad signature is a bad descriptor too; a deadline is a timeout
// whatever else it broke).
var kinds = errcode.Table[string]{
	{Key: kindSignature, Err: ErrBadSignature},
	{Key: kindBadDescriptor, Err: ErrBadDescriptor},
	{Key: kindCID, Err: wasm.ErrCIDMismatch},
	{Key: kindInvalid, Err: wasm.ErrInvalidModule},
	{Key: kindTimeout, Err: wasm.ErrTimeout},
	{Key: kindTimeout, Err: context.DeadlineExceeded},
	{Key: kindMemory, Err: wasm.ErrMemoryLimit},
	{Key: kindInput, Err: wasm.ErrInputTooLarge},
	{Key: kindOutput, Err: wasm.ErrOutputTooLarge},
	{Key: kindExit, Err: wasm.ErrExit},
	{Key: kindTrap, Err: wasm.ErrTrap},
	{Key: kindNoCompute, Err: ErrNoCompute},
	{Key: kindBusy, Err: ErrBusy},
	{Key: kindFetch, Err: ErrModuleUnavailable},
	{Key: kindCanceled, Err: context.Canceled},
	{Key: kindUnsettled, Err: ErrUnsettled},
	{Key: kindPayment, Err: ErrPayment},
	{Key: kindNotOffered, Err: ErrNotOffered},
	{Key: kindNotAllowed, Err: ErrNotAllowed},
	{Key: kindCapability, Err: ErrBadCapability},
	{Key: kindLimit, Err: errLimit},
}

// kindOf classifies err by the first kind it matches, or kindFailed.
func kindOf(err error) string {
	if k, ok := kinds.KeyOf(err); ok {
		return k
	}
	return kindFailed
}

// kindError returns the sentinel of kind, or nil for one unknown.
func kindError(kind string) error { return kinds.ErrOf(kind) }

// RunError is a run that another node (or this one) could not finish.
// errors.Is matches it against the wasm package's errors and this
// package's, and for a module that exited with an error, errors.As finds
// the *wasm.ExitError with its code and stderr.
type RunError struct {
	Peer    peer.ID
	Service string
	Kind    string
	Message string
	Usage   wasm.Usage
	// Exit is set when the module exited with a non-zero code.
	Exit *wasm.ExitError
}

func (e *RunError) Error() string {
	return fmt.Sprintf("service %s on %s: %s", e.Service, e.Peer, e.Message)
}

// Unwrap gives the sentinel of the error's kind and, for an exit, the
// *wasm.ExitError.
func (e *RunError) Unwrap() []error {
	var out []error
	if k := kindError(e.Kind); k != nil {
		out = append(out, k)
	}
	if e.Exit != nil {
		out = append(out, e.Exit)
	}
	return out
}

type runRequest struct {
	Descriptor []byte      `cbor:"1,keyasint"`
	Input      []byte      `cbor:"2,keyasint,omitempty"`
	Limits     *limitsWire `cbor:"3,keyasint,omitempty"`
	// Cert makes the caller's node its user's, for nodes that serve
	// some users only.
	Cert *nodecert.Cert `cbor:"4,keyasint,omitempty"`
	// Reserve is the caller's signed reserve for a priced run.
	Reserve []byte `cbor:"5,keyasint,omitempty"`
	// Call is the caller's name for the call, kept in the run's Record.
	Call uint64 `cbor:"6,keyasint,omitempty"`
	// Cap is the run's capability, signed by the caller's user.
	Cap []byte `cbor:"7,keyasint,omitempty"`
	// Depth is how deep in nested runs this call is (0 for a caller's).
	Depth int `cbor:"8,keyasint,omitempty"`
	// InputCID names the input as content, in place of Input.
	InputCID []byte `cbor:"9,keyasint,omitempty"`
	// OutCID asks for the output as content: the runner keeps it and
	// sends its CID.
	OutCID bool `cbor:"10,keyasint,omitempty"`
	// Seed seeds a deterministic run's randomness.
	Seed []byte `cbor:"11,keyasint,omitempty"`
	// Verdict says the caller compares this run with others' (Verify):
	// the runner signs a Proof of it, and a priced run is settled only
	// when the caller says it agreed.
	Verdict bool `cbor:"12,keyasint,omitempty"`
	// Memo asks the runner of a deterministic run that is lent no space
	// to keep its output as content and sign a memo record of it.
	Memo bool `cbor:"13,keyasint,omitempty"`
}

type usageWire struct {
	CPU    int64 `cbor:"1,keyasint,omitempty"` // ns
	Wall   int64 `cbor:"2,keyasint,omitempty"` // ns
	Memory int64 `cbor:"3,keyasint,omitempty"`
	In     int64 `cbor:"4,keyasint,omitempty"`
	Out    int64 `cbor:"5,keyasint,omitempty"`
}

func (u usageWire) usage() wasm.Usage {
	return wasm.Usage{CPU: time.Duration(u.CPU), Wall: time.Duration(u.Wall), Memory: u.Memory, In: u.In, Out: u.Out}
}

func toUsageWire(u wasm.Usage) usageWire {
	return usageWire{CPU: int64(u.CPU), Wall: int64(u.Wall), Memory: u.Memory, In: u.In, Out: u.Out}
}

type runReply struct {
	Output  []byte    `cbor:"1,keyasint,omitempty"`
	Usage   usageWire `cbor:"2,keyasint"`
	Kind    string    `cbor:"3,keyasint,omitempty"` // set when the run failed
	Message string    `cbor:"4,keyasint,omitempty"`
	Cold    bool      `cbor:"5,keyasint,omitempty"` // the module was fetched or compiled for this run
	// For kind "exit": the module's exit code and the start of its stderr.
	ExitCode uint32 `cbor:"6,keyasint,omitempty"`
	Stderr   string `cbor:"7,keyasint,omitempty"`
	// For a priced run: the provider's signed receipt and what it asks.
	Receipt []byte `cbor:"8,keyasint,omitempty"`
	Cost    int64  `cbor:"9,keyasint,omitempty"`
	// OutputCID is the output kept as content, when asked for.
	OutputCID []byte `cbor:"10,keyasint,omitempty"`
	// Proof is the runner's signed record of the run (see Proof).
	Proof []byte `cbor:"11,keyasint,omitempty"`
	// Memo is the runner's signed memo record of the run (see Memo).
	Memo []byte `cbor:"12,keyasint,omitempty"`
}

// runFn runs one module for a peer. Failures of the run itself come back
// in the reply, with their kind; the call's error is left for failures of
// the call (unreachable, refused…).
// Each node's Manager serves it.
var runFn = remote.Declare[runRequest, runReply]("nube.service.run")

// Record is one run this node did, with what it cost. The credit ledger
// charges for work from these.
type Record struct {
	At         time.Time `json:"at"`
	Service    string    `json:"service"`
	Descriptor cid.Cid   `json:"descriptor"`
	Module     cid.Cid   `json:"module"`
	Caller     peer.ID   `json:"caller"`
	// Call is the caller's name for the call (its CallRecord.Call).
	Call  string     `json:"call,omitempty"`
	Usage wasm.Usage `json:"usage"`
	Cold  bool       `json:"cold,omitempty"`
	Error string     `json:"error,omitempty"`
	// Earned is what the run was billed, in millicredits (zero for a
	// free run, or one for this node's own user).
	Earned int64 `json:"earned,omitempty"`
	// Allowed are the rights the run's capability gave, as --allow
	// takes them.
	Allowed []string `json:"allowed,omitempty"`
	// Depth is how deep in nested calls the run was.
	Depth int `json:"depth,omitempty"`
	// Touched is what the run did through the host API.
	Touched *Touched `json:"touched,omitempty"`
}

// CallRecord is one call this node made of a service on a node (itself
// included): what it cost there and how long it took here.
type CallRecord struct {
	At      time.Time     `json:"at"`
	Service string        `json:"service"` // the service or pipeline called
	Peer    peer.ID       `json:"peer"`    // the node that ran it
	Call    string        `json:"call"`    // the call's name in the Records of Peer
	Usage   wasm.Usage    `json:"usage"`
	Elapsed time.Duration `json:"elapsed"`
	Error   string        `json:"error,omitempty"`
	// Cost is what the run cost this node's user, in millicredits.
	Cost int64 `json:"cost,omitempty"`
}

// Calls returns the latest calls this node made, oldest first.
func (m *Manager) Calls() []CallRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CallRecord(nil), m.calls...)
}

func (m *Manager) recordCall(c CallRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = appendLatest(m.calls, c)
}

// appendLatest appends v to the latest records s, dropping the oldest
// beyond maxRecords.
func appendLatest[T any](s []T, v T) []T {
	if len(s) == maxRecords {
		copy(s, s[1:])
		s = s[:maxRecords-1]
	}
	return append(s, v)
}

// callName is how records show a call's ID.
func callName(id uint64) string {
	if id == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", id)
}

// maxRecords is how many runs Runs (and calls Calls) remembers.
const maxRecords = 256

// Runs returns the latest runs on this node, oldest first.
func (m *Manager) Runs() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.runs...)
}

func (m *Manager) serveRun(ctx context.Context, from peer.ID, req runRequest) runReply {
	if m.cfg.NoCompute {
		return runReply{Kind: kindNoCompute, Message: ErrNoCompute.Error()}
	}
	d, err := m.parse(req.Descriptor)
	if err != nil {
		return failed(err)
	}
	if d.IsPipeline() {
		return runReply{Kind: kindInvalid, Message: fmt.Sprintf("%s is a pipeline: the caller runs its stages", d.Label())}
	}
	asked, err := req.Limits.limits()
	if err != nil {
		return runReply{Kind: kindBadDescriptor, Message: "limits: " + err.Error()}
	}
	pay, err := m.admit(from, req, d)
	if err != nil {
		return failed(err)
	}
	host, err := m.hostFor(from, pay.user, req, d)
	if err != nil {
		return failed(err)
	}
	defer host.close()
	// A priced run is open in the payers' book from here until its
	// receipt is settled, or until it ends with nothing to settle.
	open := pay.priced
	if open {
		if err := m.payers.admit(pay.user); err != nil {
			return failed(err)
		}
		defer func() {
			if open {
				m.payers.end(pay.user, nil)
			}
		}()
	}
	if pay.other && m.others != nil {
		// Other users' runs stay within the budget the owner gives
		// them: they wait for one of its places.
		select {
		case m.others <- struct{}{}:
			defer func() { <-m.others }()
		case <-ctx.Done():
			return failed(ctx.Err())
		}
	}
	// A place in line, or busy: a node never queues without bound.
	select {
	case m.waiting <- struct{}{}:
	default:
		return runReply{Kind: kindBusy, Message: fmt.Sprintf("%v: %d jobs running, %d waiting", ErrBusy, cap(m.slots), cap(m.waiting))}
	}
	// Fetching is I/O and waits outside the slots; compiling and running
	// are CPU work and take one. A priced run's reserve goes to the ledger
	// meanwhile. A payer whose reserves held lately runs before the ledger
	// answers (the answer is awaited before the output goes back); others
	// wait for the ledger first.
	job := wasmJob(d, asked, m.cfg.MaxLimits, req.Input, from)
	job.Host, job.Deterministic, job.Seed = host, d.Deterministic, req.Seed
	host.limits, host.seed = job.Limits, req.Seed
	if len(req.InputCID) > 0 {
		if job.Input, err = m.fetchInput(ctx, req.InputCID, job.Limits.MaxInput); err != nil {
			<-m.waiting
			return failed(err)
		}
	}
	held := pay.hold(ctx, req.Reserve, d.Price, job.Limits.Timeout)
	first := pay.priced && !m.payers.paying(pay.user)
	mod, ready := m.rt.Cached(d.Module)
	cold := !ready
	var code []byte
	if cold {
		if code, err = m.fetchModule(ctx, d); err != nil {
			<-m.waiting
			return pay.abandon(held, failed(err))
		}
	}
	select {
	case m.slots <- struct{}{}:
		<-m.waiting
	case <-ctx.Done():
		<-m.waiting
		return pay.abandon(held, failed(ctx.Err()))
	}
	if cold {
		if mod, err = m.rt.Compile(ctx, d.Module, code); err != nil {
			<-m.slots
			return pay.abandon(held, failed(err))
		}
	}
	var h *Hold
	if first {
		h, err = pay.wait(ctx, held)
		m.payers.held(pay.user, err == nil)
		if err != nil {
			<-m.slots
			return failed(err)
		}
	}
	m.metrics.running.Inc()
	host.slot = true
	res, err := mod.Run(ctx, job)
	m.metrics.running.Dec()
	host.close()
	m.mu.Lock()
	tamper := m.tamper
	m.mu.Unlock()
	if err == nil && tamper != nil {
		res.Output = tamper(res.Output)
	}
	if pay.priced && !first {
		var perr error
		h, perr = pay.wait(ctx, held)
		m.payers.held(pay.user, perr == nil)
		if perr != nil {
			res.Output, err = nil, perr
		}
	}
	// Record the run while it still holds its slot: the records then
	// follow the slot's order, and each ends before the next begins.
	rec := Record{At: time.Now(), Service: d.Label(), Descriptor: d.id, Module: d.Module, Caller: from, Call: callName(req.Call), Usage: res.Usage, Cold: cold, Depth: req.Depth}
	if host.cap != nil {
		for _, a := range host.cap.Allows {
			rec.Allowed = append(rec.Allowed, a.String())
		}
	}
	if !host.touch.empty() {
		t := host.touch
		rec.Touched = &t
	}
	if err != nil {
		rec.Error = err.Error()
	}
	// A run that failed still used what it used: it is billed too. The
	// receipt goes back with the output and is settled in the background:
	// the output never waits for the ledger.
	var receipt []byte
	if h != nil {
		var berr error
		if receipt, rec.Earned, berr = m.cfg.Payments.Bill(*h, res.Usage); berr != nil {
			m.log.Warn("could not bill a run", "service", d.Label(), "caller", from, "err", berr)
			m.cfg.Payments.Release(*h)
			receipt, rec.Earned = nil, 0
		} else {
			if req.Verdict {
				m.awaitVerdict(from, req.Call, pay.user, *h, receipt)
			} else {
				m.collect(pay.user, *h, receipt)
			}
			open = false
		}
	}
	m.record(rec)
	if host.slot {
		<-m.slots
	}

	reply := runReply{Output: res.Output, Usage: toUsageWire(res.Usage), Cold: cold, Receipt: receipt, Cost: rec.Earned}
	if err == nil {
		outCID := cid.Undef
		if req.OutCID {
			// Unpinned: it stays until the node's next garbage
			// collection, for the caller to fetch or pin.
			c, aerr := m.cfg.Content.Add(ctx, bytes.NewReader(res.Output), content.AddOptions{NoPin: true})
			if aerr != nil {
				err = fmt.Errorf("keep the output as content: %w", aerr)
			} else {
				outCID = c
				reply.OutputCID = c.Bytes()
			}
		}
		if req.Verdict {
			// Only a run that is compared with others needs signing.
			reply.Proof = m.prove(d, from, req, job.Input, res.Output, outCID)
		}
		if req.Memo && d.Deterministic && !host.lent() {
			reply.Memo = m.memoize(ctx, d, job.Input, req.Seed, res.Output)
		}
		if outCID.Defined() {
			reply.Output = nil
		}
	}
	if err != nil {
		f := failed(err)
		reply.Kind, reply.Message, reply.ExitCode, reply.Stderr = f.Kind, f.Message, f.ExitCode, f.Stderr
	}
	return reply
}

// parse remembers at most maxVerified descriptors of at most
// maxVerifiedSize bytes each: 4 MiB at worst, whatever peers send.
const (
	maxVerified     = 1024
	maxVerifiedSize = 4 << 10
)

// parse is Parse with a memory of descriptors already verified, keyed by
// their exact bytes: a warm call skips the signature check and hashing,
// which cost more than running a small reactor.
func (m *Manager) parse(raw []byte) (*Descriptor, error) {
	m.mu.Lock()
	d, ok := m.verified[string(raw)]
	m.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := Parse(raw)
	if err != nil || len(raw) > maxVerifiedSize {
		return d, err
	}
	m.mu.Lock()
	if len(m.verified) >= maxVerified {
		clear(m.verified)
	}
	m.verified[string(raw)] = d
	m.mu.Unlock()
	return d, nil
}

// wasmJob is the run a request asks for, within the node's maximum: the
// caller's limits where set, else the descriptor's, else the defaults.
func wasmJob(d *Descriptor, asked, most wasm.Limits, in []byte, from peer.ID) wasm.Job {
	pick := func(a, b int64) int64 {
		if a > 0 {
			return a
		}
		return b
	}
	lim := wasm.Limits{
		Memory:    pick(asked.Memory, d.Limits.Memory),
		Timeout:   time.Duration(pick(int64(asked.Timeout), int64(d.Limits.Timeout))),
		MaxInput:  pick(asked.MaxInput, d.Limits.MaxInput),
		MaxOutput: pick(asked.MaxOutput, d.Limits.MaxOutput),
	}.WithDefaults().Min(most)
	return wasm.Job{Input: in, Limits: lim, Owner: from.String(), Args: []string{d.Name}}
}

func failed(err error) runReply {
	r := runReply{Kind: kindOf(err), Message: err.Error()}
	var exit *wasm.ExitError
	if errors.As(err, &exit) {
		r.ExitCode, r.Stderr = exit.Code, exit.Stderr
	}
	return r
}

// fetchModule fetches d's module, checking its size before anything but
// the root block is fetched, and pins it so that it stays installed.
func (m *Manager) fetchModule(ctx context.Context, d *Descriptor) ([]byte, error) {
	c := d.Module.String()
	e, err := m.cfg.Content.Stat(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModuleUnavailable, c, err)
	}
	if e.Size > wasm.DefaultMaxModuleSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", wasm.ErrModuleTooLarge, e.Size, wasm.DefaultMaxModuleSize)
	}
	if err := m.cfg.Content.Pin(ctx, d.Module, "service module "+d.Label(), nil); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModuleUnavailable, c, err)
	}
	f, err := m.cfg.Content.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModuleUnavailable, c, err)
	}
	defer f.Close()
	code, err := io.ReadAll(io.LimitReader(f, wasm.DefaultMaxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrModuleUnavailable, c, err)
	}
	return code, nil
}

func (m *Manager) record(r Record) {
	m.metrics.observe(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = appendLatest(m.runs, r)
}

type metrics struct {
	runs     *prometheus.CounterVec
	cpu      prometheus.Counter
	wall     prometheus.Counter
	in, out  prometheus.Counter
	running  prometheus.Gauge
	memPeaks prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nube_service_runs_total", Help: "Module runs done for callers, by result (ok or the error kind)."}, []string{"result"}),
		cpu:      prometheus.NewCounter(prometheus.CounterOpts{Name: "nube_service_cpu_seconds_total", Help: "CPU time spent running modules."}),
		wall:     prometheus.NewCounter(prometheus.CounterOpts{Name: "nube_service_wall_seconds_total", Help: "Wall time spent running modules."}),
		in:       prometheus.NewCounter(prometheus.CounterOpts{Name: "nube_service_input_bytes_total", Help: "Bytes of input given to modules."}),
		out:      prometheus.NewCounter(prometheus.CounterOpts{Name: "nube_service_output_bytes_total", Help: "Bytes of output modules returned."}),
		running:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "nube_service_jobs_running", Help: "Module runs in progress."}),
		memPeaks: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "nube_service_memory_peak_bytes", Help: "Peak linear memory of each run.", Buckets: prometheus.ExponentialBuckets(1<<20, 2, 10)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.runs, m.cpu, m.wall, m.in, m.out, m.running, m.memPeaks} {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) observe(r Record) {
	result := "ok"
	if r.Error != "" {
		result = "error"
	}
	m.runs.WithLabelValues(result).Inc()
	m.cpu.Add(r.Usage.CPU.Seconds())
	m.wall.Add(r.Usage.Wall.Seconds())
	m.in.Add(float64(r.Usage.In))
	m.out.Add(float64(r.Usage.Out))
	m.memPeaks.Observe(float64(r.Usage.Memory))
}

// hostFor checks the run's capability, if it carries one, and makes the
// run's side of the host API: refused before anything runs if the
// capability is not for this caller, node and module, has expired, or
// gives less than the descriptor wants.
func (m *Manager) hostFor(from, user peer.ID, req runRequest, d *Descriptor) (*runHost, error) {
	if req.Depth < 0 || req.Depth > MaxDepth {
		return nil, fmt.Errorf("%w: a call at depth %d, the most is %d", errLimit, req.Depth, MaxDepth)
	}
	var c *Capability
	if len(req.Cap) > 0 {
		var err error
		if c, err = m.checkedCapability(req.Cap); err != nil {
			return nil, err
		}
		if user == "" && from == m.self {
			user = m.user
		}
		if err := c.checkFor(user, m.self, d.Module, time.Now()); err != nil {
			return nil, err
		}
	}
	var allows []Allow
	if c != nil {
		allows = c.Allows
	}
	if err := checkWants(d, allows); err != nil {
		return nil, err
	}
	return m.newHost(c, d.Deterministic, req.Depth), nil
}

// fetchInput reads an input sent by its CID, up to limit bytes.
func (m *Manager) fetchInput(ctx context.Context, raw []byte, limit int64) ([]byte, error) {
	c, err := cid.Cast(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: input CID: %v", ErrBadCapability, err)
	}
	f, err := m.cfg.Content.Get(ctx, c.String())
	if err != nil {
		return nil, fmt.Errorf("fetch the input %s: %w", c, err)
	}
	defer f.Close()
	if int64(f.Size()) > limit {
		return nil, fmt.Errorf("%w: the input is %d bytes, the limit is %d", wasm.ErrInputTooLarge, f.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// checkedCapability parses a capability and checks each loan it carries
// against its right: the parts of the check that do not depend on the
// time or the caller, remembered by the capability's bytes until it ends.
func (m *Manager) checkedCapability(raw []byte) (*Capability, error) {
	if e, ok := m.checked.entry(string(raw), 0); ok {
		return e.cap, nil
	}
	c, err := ParseCapability(raw)
	if err != nil {
		return nil, err
	}
	for i, a := range c.Allows {
		if a.Space == "" {
			continue
		}
		if m.cfg.Spaces == nil {
			return nil, fmt.Errorf("%w: this node has no space layer for %s", ErrNotAllowed, a.Space)
		}
		terms, err := m.cfg.Spaces.Inspect(c.loans[i])
		if err != nil {
			return nil, fmt.Errorf("%w: the loan of %s: %v", ErrNotAllowed, a.Space, err)
		}
		if err := c.checkLoan(a, terms); err != nil {
			return nil, err
		}
	}
	if len(raw) <= maxVerifiedSize {
		m.checked.keep(string(raw), cachedCap{cap: c, until: c.Until})
	}
	return c, nil
}
