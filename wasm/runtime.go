package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Defaults for Config.
const (
	DefaultMaxModuleSize = 64 << 20
	DefaultMaxModules    = 64
	DefaultIdleInstances = 32
	DefaultIdleTimeout   = time.Minute
)

// wasiModule is the import module name of WASI preview 1.
const wasiModule = wasi_snapshot_preview1.ModuleName

// Config configures a Runtime. The zero value works: no disk cache.
type Config struct {
	// CacheDir keeps compiled machine code across restarts (wazero's
	// compilation cache). Empty means compiled code lives in memory only.
	CacheDir string
	// MaxModuleSize caps a module's bytes. Zero means
	// DefaultMaxModuleSize.
	MaxModuleSize int64
	// MaxModules caps how many compiled modules are kept loaded. Zero
	// means DefaultMaxModules.
	MaxModules int
	// IdleInstances caps the reactor instances kept between runs, over
	// all modules and owners. Zero means DefaultIdleInstances; negative
	// keeps none.
	IdleInstances int
	// IdleTimeout is how long an unused reactor instance is kept. Zero
	// means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ModuleCID computes the CID a module's bytes must hash to (the
	// content layer's FileCID, as the service layer sets it), so that
	// bytes given under another module's CID are refused with
	// ErrCIDMismatch. Nil means the caller vouches for the bytes, as when
	// it read them by their CID from a content-addressed store.
	ModuleCID func(code []byte) (cid.Cid, error)
	// Interpreter runs modules in wazero's interpreter instead of
	// compiling them to machine code: nothing to compile, but runs are
	// many times slower. Tests under the race detector use it, as the
	// compiler is slow there.
	Interpreter bool
	// Logger receives the runtime's logs. Nil means no logs: a library is silent unless given a logger.
	Logger *slog.Logger
	// Host maps an import module's name (such as "nube_v1") to the
	// functions it offers modules, beside WASI. A module may import any
	// of them, with the same type; any other import is refused when it
	// is compiled.
	Host map[string][]HostFunc
}

// Validate reports a field of c that makes no sense, naming it.
func (c Config) Validate() error {
	switch {
	case c.MaxModuleSize < 0:
		return fmt.Errorf("wasm: Config.MaxModuleSize is negative (%d): want 0 for the default, or more", c.MaxModuleSize)
	case c.MaxModules < 0:
		return fmt.Errorf("wasm: Config.MaxModules is negative (%d): want 0 for the default, or more", c.MaxModules)
	case c.IdleTimeout < 0:
		return fmt.Errorf("wasm: Config.IdleTimeout is negative (%v): want 0 for the default, or more", c.IdleTimeout)
	}
	return validateHost(c.Host)
}

// Runtime compiles and runs modules. It is safe for concurrent use.
type Runtime struct {
	cfg   Config
	log   *slog.Logger
	rt    wazero.Runtime
	cache wazero.CompilationCache
	wasi  map[string]bool               // the functions WASI preview 1 provides
	host  map[string]map[string]hostSig // Config.Host's functions by module and name

	mu      sync.Mutex
	modules map[cid.Cid]*loading
	idle    []*instance // reactor instances between runs, oldest first
	closed  bool
	// runs are the runs under way; closing ends them and the janitor,
	// and Close waits for both before it frees what they use.
	runs    sync.WaitGroup
	closing context.Context
	endRuns context.CancelFunc

	done chan struct{} // closed when the janitor has stopped
}

// loading is a module being compiled, or compiled.
type loading struct {
	ready chan struct{}
	mod   *Module
	err   error
	used  time.Time
}

// New starts a runtime.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxModuleSize <= 0 {
		cfg.MaxModuleSize = DefaultMaxModuleSize
	}
	if cfg.MaxModules <= 0 {
		cfg.MaxModules = DefaultMaxModules
	}
	if cfg.IdleInstances == 0 {
		cfg.IdleInstances = DefaultIdleInstances
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		cfg:     cfg,
		log:     cfg.Logger,
		modules: map[cid.Cid]*loading{},
		done:    make(chan struct{}),
	}
	r.closing, r.endRuns = context.WithCancel(context.Background())
	rc := wazero.NewRuntimeConfig()
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.WithCloseOnContextDone(true)
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("wasm cache dir: %w", err)
		}
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm cache dir %s: %w", cfg.CacheDir, err)
		}
		r.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	r.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("wasi: %w", err)
	}
	r.wasi = map[string]bool{}
	for name := range r.rt.Module(wasiModule).ExportedFunctionDefinitions() {
		r.wasi[name] = true
	}
	if err := r.instantiateHost(ctx); err != nil {
		r.rt.Close(ctx)
		if r.cache != nil {
			r.cache.Close(ctx)
		}
		return nil, err
	}
	go r.janitor()
	return r, nil
}

// Close stops every run and frees every module. Runs in progress fail.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	idle := r.idle
	r.idle = nil
	r.mu.Unlock()
	// The janitor stops; runs under way stop at their next check of
	// their context. wazero must not free a module while it runs.
	r.endRuns()
	<-r.done
	r.runs.Wait()
	for _, in := range idle {
		in.close(ctx)
	}
	err := r.rt.Close(ctx)
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// startRun registers a run, or says the runtime is closed. The run's
// context ends when the runtime closes; call done when the run ends.
func (r *Runtime) startRun(ctx context.Context) (context.Context, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, ErrClosed
	}
	r.runs.Add(1)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.closing, func() { cancel(ErrClosed) })
	return ctx, func() {
		stop()
		cancel(nil)
		r.runs.Done()
	}, nil
}

// Cached returns the compiled module c if it is loaded.
func (r *Runtime) Cached(c cid.Cid) (*Module, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.modules[c]
	if !ok {
		return nil, false
	}
	select {
	case <-l.ready:
		if l.err != nil {
			return nil, false
		}
		l.used = time.Now()
		return l.mod, true
	default:
		return nil, false
	}
}

// Compile checks that code hashes to c (as a file added to nube or IPFS
// would), compiles it and returns the module. A module already compiled
// is returned at once; two callers compiling the same CID share the work.
// Errors wrap ErrModuleTooLarge, ErrCIDMismatch or ErrInvalidModule.
func (r *Runtime) Compile(ctx context.Context, c cid.Cid, code []byte) (*Module, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	l, ok := r.modules[c]
	if !ok {
		l = &loading{ready: make(chan struct{}), used: time.Now()}
		r.modules[c] = l
	}
	r.mu.Unlock()
	if ok {
		select {
		case <-l.ready:
			return l.mod, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l.mod, l.err = r.compile(ctx, c, code)
	close(l.ready)
	r.mu.Lock()
	if l.err != nil {
		delete(r.modules, c) // a later call may bring the right bytes
	}
	evicted := r.evictModules()
	r.mu.Unlock()
	for _, close := range evicted {
		close(ctx)
	}
	return l.mod, l.err
}

func (r *Runtime) compile(ctx context.Context, c cid.Cid, code []byte) (*Module, error) {
	if int64(len(code)) > r.cfg.MaxModuleSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrModuleTooLarge, len(code), r.cfg.MaxModuleSize)
	}
	if r.cfg.ModuleCID != nil {
		got, err := r.cfg.ModuleCID(code)
		if err != nil {
			return nil, fmt.Errorf("hash module: %w", err)
		}
		if !got.Equals(c) {
			return nil, fmt.Errorf("%w: the bytes hash to %s, not %s", ErrCIDMismatch, got, c)
		}
	}
	compiled, err := r.rt.CompileModule(ctx, code)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidModule, firstLine(err.Error()))
	}
	m, err := r.inspect(c, compiled)
	if err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	return m, nil
}

// inspect decides what kind of module compiled is and refuses what the
// sandbox cannot run.
func (r *Runtime) inspect(c cid.Cid, compiled wazero.CompiledModule) (*Module, error) {
	for _, f := range compiled.ImportedFunctions() {
		if err := r.checkImport(f); err != nil {
			return nil, err
		}
	}
	if ms := compiled.ImportedMemories(); len(ms) > 0 {
		mod, name, _ := ms[0].Import()
		return nil, fmt.Errorf("%w: it imports memory %s.%s; modules must define their own", ErrInvalidModule, mod, name)
	}
	m := &Module{rt: r, cid: c, compiled: compiled}
	mems := compiled.ExportedMemories()
	if len(mems) == 0 {
		return nil, fmt.Errorf("%w: it exports no memory (WASI modules export theirs as \"memory\")", ErrInvalidModule)
	}
	for _, d := range mems {
		m.minMemory = max(m.minMemory, uint64(d.Min())*pageSize)
	}
	fns := compiled.ExportedFunctions()
	if f, ok := fns[ReactorExport]; ok {
		if len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
			return nil, fmt.Errorf("%w: its %s takes or returns values; it must take none", ErrInvalidModule, ReactorExport)
		}
		m.kind = Reactor
		if _, ok := fns["_initialize"]; ok {
			m.start = "_initialize"
		}
		return m, nil
	}
	if _, ok := fns["_start"]; ok {
		m.kind = Command
		m.start = "_start"
		return m, nil
	}
	return nil, fmt.Errorf("%w: it exports neither _start (a WASI command) nor %s (a reactor)", ErrInvalidModule, ReactorExport)
}

// evictModules unloads the least recently used modules past MaxModules,
// skipping any with runs in progress, and returns what the caller must
// close once it has released r.mu, which is held.
func (r *Runtime) evictModules() (closers []func(context.Context) error) {
	for len(r.modules) > r.cfg.MaxModules {
		var oldest cid.Cid
		var ol *loading
		for c, l := range r.modules {
			select {
			case <-l.ready:
			default:
				continue
			}
			if l.mod.running.Load() > 0 {
				continue
			}
			if ol == nil || l.used.Before(ol.used) {
				oldest, ol = c, l
			}
		}
		if ol == nil {
			return closers
		}
		delete(r.modules, oldest)
		keep := r.idle[:0]
		for _, in := range r.idle {
			if in.mod == ol.mod {
				closers = append(closers, in.api.Close)
				continue
			}
			keep = append(keep, in)
		}
		r.idle = keep
		closers = append(closers, ol.mod.compiled.Close)
	}
	return closers
}

// janitor closes reactor instances idle for longer than IdleTimeout.
func (r *Runtime) janitor() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.IdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-r.closing.Done():
			return
		case now := <-t.C:
			r.mu.Lock()
			var expired []*instance
			keep := r.idle[:0]
			for _, in := range r.idle {
				if now.Sub(in.idleSince) > r.cfg.IdleTimeout {
					expired = append(expired, in)
					continue
				}
				keep = append(keep, in)
			}
			r.idle = keep
			r.mu.Unlock()
			for _, in := range expired {
				in.close(context.Background())
			}
		}
	}
}

// takeIdle returns an idle instance of m kept for owner, or nil.
func (r *Runtime) takeIdle(m *Module, owner string) *instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.idle) - 1; i >= 0; i-- {
		if in := r.idle[i]; in.mod == m && in.owner == owner {
			r.idle = append(r.idle[:i], r.idle[i+1:]...)
			return in
		}
	}
	return nil
}

// putIdle keeps in for its owner's next run, closing the oldest idle
// instance if there are too many.
func (r *Runtime) putIdle(in *instance) {
	in.idleSince = time.Now()
	r.mu.Lock()
	if r.closed || r.cfg.IdleInstances < 0 {
		r.mu.Unlock()
		in.close(context.Background())
		return
	}
	r.idle = append(r.idle, in)
	var drop *instance
	if len(r.idle) > r.cfg.IdleInstances {
		drop = r.idle[0]
		r.idle = r.idle[1:]
	}
	r.mu.Unlock()
	if drop != nil {
		drop.close(context.Background())
	}
}

// IdleInstances reports how many reactor instances are kept between runs.
func (r *Runtime) IdleInstances() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.idle)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
