package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// ReactorExport is the function a reactor module exports for each run.
const ReactorExport = "nube_run"

const pageSize = 64 << 10

// Defaults for Limits: conservative, for code from strangers.
const (
	DefaultMemory    = 64 << 20
	DefaultTimeout   = 10 * time.Second
	DefaultMaxInput  = 4 << 20
	DefaultMaxOutput = 16 << 20
)

// Kind tells how a module is run.
type Kind uint8

const (
	// Command modules export _start and get a fresh instance per run.
	Command Kind = iota + 1
	// Reactor modules export nube_run; an instance serves many runs.
	Reactor
)

func (k Kind) String() string {
	switch k {
	case Command:
		return "command"
	case Reactor:
		return "reactor"
	}
	return "unknown"
}

// Limits bound one run. Zero fields take the defaults above.
type Limits struct {
	// Memory caps the module's linear memory, in bytes.
	Memory int64
	// Timeout is the wall-clock time the run may take, from the moment
	// it starts (compiling and fetching are not counted).
	Timeout time.Duration
	// MaxInput caps the input, in bytes.
	MaxInput int64
	// MaxOutput caps what the module may write to stdout, in bytes.
	MaxOutput int64
}

// Validate reports a limit that makes no sense (a negative one), naming
// it. Zero fields mean the defaults.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"Memory", l.Memory}, {"Timeout", int64(l.Timeout)}, {"MaxInput", l.MaxInput}, {"MaxOutput", l.MaxOutput}} {
		if f.v < 0 {
			return fmt.Errorf("wasm: Limits.%s is negative (%d): want 0 for the default, or more", f.name, f.v)
		}
	}
	return nil
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxInput <= 0 {
		l.MaxInput = DefaultMaxInput
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	return l
}

// Min returns the tighter of l and o, field by field; a zero field does
// not bound.
func (l Limits) Min(o Limits) Limits {
	pick := func(a, b int64) int64 {
		if a <= 0 || (b > 0 && b < a) {
			return b
		}
		return a
	}
	return Limits{
		Memory:    pick(l.Memory, o.Memory),
		Timeout:   time.Duration(pick(int64(l.Timeout), int64(o.Timeout))),
		MaxInput:  pick(l.MaxInput, o.MaxInput),
		MaxOutput: pick(l.MaxOutput, o.MaxOutput),
	}
}

// Job is one run of a module.
type Job struct {
	// Input is the module's stdin.
	Input []byte
	// Limits bound the run.
	Limits Limits
	// Args are the module's arguments after the program name, which is
	// the module's CID.
	Args []string
	// Owner is who the run is for, such as the caller's peer ID. Reactor
	// instances are reused only for the same owner.
	Owner string
	// Host is this run's value for the host functions it calls
	// (Config.Host), which get it with HostValue: who the run is for,
	// what it may do, its handles. The runtime only carries it.
	Host any
	// Deterministic makes the run's result depend only on the module,
	// its input, args and Seed, and on what host functions return: the
	// module sees a virtual clock and random bytes drawn from Seed (see
	// the package documentation). A reactor's deterministic run gets a
	// fresh instance, used for that run alone, as any state kept from
	// an earlier run would make its result depend on that run.
	Deterministic bool
	// Seed keys the random bytes of a deterministic run. Runs with the
	// same Seed see the same bytes. Ignored unless Deterministic.
	Seed []byte
}

// Usage is what a run cost.
type Usage struct {
	// CPU is the CPU time the run took (its wall time where the platform
	// cannot measure a thread's CPU time).
	CPU time.Duration `json:"cpu"`
	// Wall is the run's elapsed time, instantiation included.
	Wall time.Duration `json:"wall"`
	// Memory is the peak size of the module's linear memory, in bytes.
	Memory int64 `json:"memory"`
	// In and Out are the bytes of input given and output taken.
	In  int64 `json:"in"`
	Out int64 `json:"out"`
}

// Result is a finished run.
type Result struct {
	Output []byte
	// Stderr is the start of what the module wrote to stderr.
	Stderr string
	Usage  Usage
}

// Module is a compiled module, ready to run.
type Module struct {
	rt        *Runtime
	cid       cid.Cid
	compiled  wazero.CompiledModule
	kind      Kind
	start     string // the start function, if any
	minMemory uint64 // the memory the module declares it needs, in bytes
	running   atomic.Int32
}

// CID returns the module's CID.
func (m *Module) CID() cid.Cid { return m.cid }

// Kind returns whether m is a command or a reactor.
func (m *Module) Kind() Kind { return m.kind }

// Run runs the module on job.Input within job.Limits and returns what it
// wrote to stdout. The run ends when the module returns, when a limit is
// passed, or when ctx ends; a failed run still reports its Usage in the
// Result. Errors wrap ErrTimeout, ErrMemoryLimit, ErrInputTooLarge,
// ErrOutputTooLarge, ErrExit (an *ExitError), ErrTrap, or ctx's error.
func (m *Module) Run(ctx context.Context, job Job) (Result, error) {
	lim := job.Limits.WithDefaults()
	if n := int64(len(job.Input)); n > lim.MaxInput {
		return Result{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInputTooLarge, n, lim.MaxInput)
	}
	if m.minMemory > uint64(lim.Memory) {
		return Result{}, fmt.Errorf("%w: the module declares %s of memory, the limit is %s",
			ErrMemoryLimit, Size(int64(m.minMemory)), Size(lim.Memory))
	}
	ctx, done, err := m.rt.startRun(ctx)
	if err != nil {
		return Result{}, err
	}
	defer done()
	m.running.Add(1)
	defer m.running.Add(-1)

	runCtx, cancel := context.WithTimeoutCause(ctx, lim.Timeout, ErrTimeout)
	defer cancel()
	// Always set, so that a run nested in a host call does not see its
	// caller's value.
	runCtx = context.WithValue(runCtx, hostKey{}, job.Host)
	r := &run{
		job:   job,
		lim:   lim,
		input: bytes.NewReader(job.Input),
		out:   &outputBuffer{limit: lim.MaxOutput, stop: cancel},
	}

	// The module runs on this goroutine; holding the thread makes the
	// thread's CPU clock the run's.
	runtime.LockOSThread()
	cpu0, cpuOK := threadCPU()
	start := time.Now()
	var mem *linearMemory
	if m.kind == Reactor {
		mem, err = m.runReactor(runCtx, r)
	} else {
		mem, err = m.runCommand(runCtx, r)
	}
	wall := time.Since(start)
	cpu1, _ := threadCPU()
	runtime.UnlockOSThread()

	res := Result{Output: r.out.buf.Bytes(), Stderr: r.stderr.String()}
	res.Usage = Usage{Wall: wall, CPU: wall, In: int64(len(job.Input)) - int64(r.input.Len()), Out: int64(r.out.buf.Len())}
	if cpuOK {
		res.Usage.CPU = cpu1 - cpu0
	}
	if mem != nil {
		res.Usage.Memory = int64(mem.peak)
	}
	if err = r.classify(ctx, runCtx, mem, err); err != nil {
		res.Output = nil
		return res, err
	}
	return res, nil
}

// run is the state of one Run.
type run struct {
	job    Job
	lim    Limits
	input  *bytes.Reader
	out    *outputBuffer
	stderr headBuffer
}

// moduleConfig is what every instance gets: the module's CID and args as
// its arguments, a real clock, real randomness, and sleeps that end with
// the run; or, for a deterministic job, a virtual clock and randomness
// drawn from its seed. Nothing else; the caller adds stdio.
func (m *Module) moduleConfig(job Job, sleepCtx func() context.Context) wazero.ModuleConfig {
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{m.cid.String()}, job.Args...)...).
		WithStartFunctions(m.start)
	if job.Deterministic {
		c := &virtualClock{}
		return cfg.
			WithWalltime(c.walltime, sys.ClockResolution(clockStep)).
			WithNanotime(c.nanotime, sys.ClockResolution(clockStep)).
			WithNanosleep(c.sleep).
			WithRandSource(seededRand(job.Seed))
	}
	return cfg.
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(func(ns int64) {
			t := time.NewTimer(time.Duration(ns))
			defer t.Stop()
			select {
			case <-t.C:
			case <-sleepCtx().Done():
			}
		}).
		WithRandSource(rand.Reader)
}

func (m *Module) instantiate(ctx context.Context, cfg wazero.ModuleConfig, mem *linearMemory) (api.Module, error) {
	return m.rt.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, allocator{mem}), m.compiled, cfg)
}

func (m *Module) runCommand(ctx context.Context, r *run) (*linearMemory, error) {
	mem := &linearMemory{}
	mem.startRun(uint64(r.lim.Memory))
	cfg := m.moduleConfig(r.job, func() context.Context { return ctx }).
		WithStdin(r.input).
		WithStdout(r.out).
		WithStderr(&r.stderr)
	mod, err := m.instantiate(ctx, cfg, mem)
	if mod != nil {
		mod.Close(context.Background())
	}
	return mem, err
}

// instance is a reactor instance, kept between the runs of one owner.
type instance struct {
	mod       *Module
	owner     string
	api       api.Module
	fn        api.Function
	mem       *linearMemory
	stdin     swapReader
	stdout    swapWriter
	stderr    swapWriter
	ctx       atomic.Pointer[context.Context] // the run in progress, for sleeps
	idleSince time.Time
}

func (in *instance) close(ctx context.Context) { in.api.Close(ctx) }

// idleCtx is the context of an instance between runs.
var idleCtx = context.Background()

func (m *Module) runReactor(ctx context.Context, r *run) (*linearMemory, error) {
	var in *instance
	if !r.job.Deterministic {
		in = m.rt.takeIdle(m, r.job.Owner)
	}
	if in != nil && in.mem.size() > uint64(r.lim.Memory) {
		in.close(context.Background()) // grown past this run's limit
		in = nil
	}
	if in == nil {
		in = &instance{mod: m, owner: r.job.Owner, mem: &linearMemory{}}
		in.ctx.Store(&ctx)
		in.mem.startRun(uint64(r.lim.Memory))
		in.stderr.w = &r.stderr
		cfg := m.moduleConfig(r.job, func() context.Context { return *in.ctx.Load() }).
			WithStdin(&in.stdin).
			WithStdout(&in.stdout).
			WithStderr(&in.stderr)
		mod, err := m.instantiate(ctx, cfg, in.mem)
		if err != nil {
			if mod != nil {
				mod.Close(context.Background())
			}
			return in.mem, err
		}
		in.api = mod
		in.fn = mod.ExportedFunction(ReactorExport)
	}
	in.ctx.Store(&ctx)
	in.mem.startRun(uint64(r.lim.Memory))
	in.stdin.r, in.stdout.w, in.stderr.w = r.input, r.out, &r.stderr
	_, err := in.fn.Call(ctx)
	in.stdin.r, in.stdout.w, in.stderr.w = nil, nil, nil
	in.ctx.Store(&idleCtx) // not to keep the run's Job.Host while idle
	if err != nil || r.out.over || in.mem.exceeded || in.api.IsClosed() || r.job.Deterministic {
		// A deterministic run's instance has its clock and randomness,
		// and state no later run may see.
		in.close(context.Background())
		return in.mem, err
	}
	m.rt.putIdle(in)
	return in.mem, nil
}

// classify turns what wazero returned into the run's error, naming the
// limit that stopped it where one did.
func (r *run) classify(ctx, runCtx context.Context, mem *linearMemory, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	switch {
	case r.out.over:
		return fmt.Errorf("%w: the module wrote more than %d bytes", ErrOutputTooLarge, r.lim.MaxOutput)
	case err == nil:
		return nil
	case mem != nil && mem.exceeded:
		return fmt.Errorf("%w: the module needed more than %s", ErrMemoryLimit, Size(r.lim.Memory))
	case ctx.Err() != nil:
		return fmt.Errorf("run stopped: %w", context.Cause(ctx))
	case runCtx.Err() != nil:
		return fmt.Errorf("%w: the module ran longer than %v and was stopped", ErrTimeout, r.lim.Timeout)
	case exit != nil:
		return &ExitError{Code: exit.ExitCode(), Stderr: r.stderr.String()}
	case strings.Contains(err.Error(), "not instantiated"):
		return fmt.Errorf("%w: %s", ErrInvalidModule, firstLine(err.Error()))
	}
	msg := firstLine(err.Error())
	if s := r.stderr.String(); s != "" {
		msg += " (stderr: " + firstLine(s) + ")"
	}
	return fmt.Errorf("%w: %s", ErrTrap, msg)
}

// Size formats a byte count for messages: "64 MiB".
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
