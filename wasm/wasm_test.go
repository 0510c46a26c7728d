package wasm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/wasm"
)

// cacheDir is a compilation cache the tests of this package share, so
// each module is compiled to machine code once per test binary.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nube-wasm-cache")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

func newRuntime(t testing.TB, cfg wasm.Config) *wasm.Runtime {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	// The compiler takes ten times as long under the race detector;
	// the race detector is there for our code, not for wazero's.
	cfg.Interpreter = raceEnabled
	cfg.ModuleCID = func(code []byte) (cid.Cid, error) { return content.FileCID(bytes.NewReader(code)) }
	rt, err := wasm.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func fileCID(t testing.TB, b []byte) cid.Cid {
	t.Helper()
	c, err := content.FileCID(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// load builds (if need be) and compiles the test module name.
func load(t testing.TB, rt *wasm.Runtime, name string) *wasm.Module {
	t.Helper()
	code := wasmtest.Module(t, name)
	m, err := rt.Compile(context.Background(), fileCID(t, code), code)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return m
}

func run(t *testing.T, m *wasm.Module, job wasm.Job) wasm.Result {
	t.Helper()
	res, err := m.Run(context.Background(), job)
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, res.Stderr)
	}
	return res
}

func TestRun(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	upper := load(t, rt, "upper")
	if upper.Kind() != wasm.Command {
		t.Fatalf("upper is a %v, want a command", upper.Kind())
	}
	in := []byte("hello, sandbox")
	res := run(t, upper, wasm.Job{Input: in})
	if got := string(res.Output); got != "HELLO, SANDBOX" {
		t.Fatalf("upper gave %q", got)
	}
	u := res.Usage
	if u.In != int64(len(in)) || u.Out != int64(len(in)) {
		t.Errorf("usage counts %d bytes in, %d out; want %d and %d", u.In, u.Out, len(in), len(in))
	}
	if u.CPU <= 0 || u.Wall <= 0 || u.Memory <= 0 {
		t.Errorf("usage %+v: CPU, wall and memory must all be measured", u)
	}
	if u.Memory > wasm.DefaultMemory {
		t.Errorf("memory peak %d is above the limit %d", u.Memory, wasm.DefaultMemory)
	}

	wc := load(t, rt, "wc")
	res = run(t, wc, wasm.Job{Input: []byte("the cat saw the dog\nthe end")})
	if got, want := string(res.Output), "cat 1\ndog 1\nend 1\nsaw 1\nthe 3\n"; got != want {
		t.Fatalf("wc gave %q, want %q", got, want)
	}
}

// TestLimits hits each limit and checks its error, then checks that the
// runtime still runs modules.
func TestLimits(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	upper := load(t, rt, "upper")
	for _, tc := range []struct {
		name   string
		module string
		job    wasm.Job
		want   error
		says   string
	}{
		{"infinite loop", "loop", wasm.Job{Limits: wasm.Limits{Timeout: 200 * time.Millisecond}}, wasm.ErrTimeout, "ran longer than 200ms"},
		{"memory hog", "hog", wasm.Job{Limits: wasm.Limits{Memory: 32 << 20}}, wasm.ErrMemoryLimit, "needed more than 32 MiB"},
		{"declared memory", "upper", wasm.Job{Limits: wasm.Limits{Memory: 64 << 10}}, wasm.ErrMemoryLimit, "the limit is 64 KiB"},
		{"output", "upper", wasm.Job{Input: bytes.Repeat([]byte("a"), 1000), Limits: wasm.Limits{MaxOutput: 100}}, wasm.ErrOutputTooLarge, "more than 100 bytes"},
		{"input", "upper", wasm.Job{Input: make([]byte, 101), Limits: wasm.Limits{MaxInput: 100}}, wasm.ErrInputTooLarge, "101 bytes, the limit is 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t, rt, tc.module)
			res, err := m.Run(context.Background(), tc.job)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if res.Output != nil {
				t.Errorf("a failed run returned %d bytes of output", len(res.Output))
			}
			t.Logf("%v (usage %+v)", err, res.Usage)
			if got := run(t, upper, wasm.Job{Input: []byte("still here")}); string(got.Output) != "STILL HERE" {
				t.Fatalf("after the failure upper gave %q", got.Output)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	loop := load(t, rt, "loop")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := loop.Run(ctx, wasm.Job{Limits: wasm.Limits{Timeout: time.Hour}})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v, want context.Canceled", err)
	}
}

// TestCloseWhileRunning closes the runtime under a run: the run ends with
// ErrClosed, and Close returns once it has (wazero must not free a module
// while it runs: the race detector saw that once).
func TestCloseWhileRunning(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	loop := load(t, rt, "loop")
	done := make(chan error, 1)
	go func() {
		_, err := loop.Run(context.Background(), wasm.Job{Limits: wasm.Limits{Timeout: time.Hour}})
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); loop.Running() == 0; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the run never started")
		}
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := loop.Running(); n != 0 {
		t.Fatalf("Close returned with %d runs under way", n)
	}
	if err := <-done; !errors.Is(err, wasm.ErrClosed) {
		t.Fatalf("a run under a closed runtime returned %v, want ErrClosed", err)
	}
	if _, err := loop.Run(context.Background(), wasm.Job{}); !errors.Is(err, wasm.ErrClosed) {
		t.Fatalf("a run after Close returned %v, want ErrClosed", err)
	}
}

// TestNoHostFiles runs a module that tries to read the host's files.
func TestNoHostFiles(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	res := run(t, load(t, rt, "openfile"), wasm.Job{})
	out := string(res.Output)
	t.Logf("module saw:\n%s", out)
	for _, p := range []string{"/etc/passwd", "/etc/hostname", ".", "/"} {
		if !strings.Contains(out, "denied "+p+":") {
			t.Errorf("the module was not denied %s", p)
		}
	}
	if strings.Contains(out, "read ") || strings.Contains(out, "listed ") {
		t.Errorf("the module read host files:\n%s", out)
	}
}

func TestRefused(t *testing.T) {
	rt := newRuntime(t, wasm.Config{MaxModuleSize: 8 << 20})
	ctx := context.Background()
	upper := wasmtest.Module(t, "upper")
	wc := wasmtest.Module(t, "wc")

	// Bytes that do not hash to the CID they came under.
	_, err := rt.Compile(ctx, fileCID(t, wc), upper)
	if !errors.Is(err, wasm.ErrCIDMismatch) {
		t.Fatalf("compiling upper under wc's CID: %v, want ErrCIDMismatch", err)
	}
	// And the right bytes are still welcome after the wrong ones.
	if _, err := rt.Compile(ctx, fileCID(t, wc), wc); err != nil {
		t.Fatalf("compile wc after a mismatch: %v", err)
	}

	for _, tc := range []struct {
		name string
		code []byte
		want error
		says string
	}{
		{"not wasm", []byte("#!/bin/sh\nrm -rf /\n"), wasm.ErrInvalidModule, "invalid module"},
		{"truncated", upper[:len(upper)/2], wasm.ErrInvalidModule, "invalid module"},
		{"foreign import", moduleImporting("env", "spawn"), wasm.ErrInvalidModule, "imports env.spawn"},
		{"no entry point", moduleImporting(wasmModuleName(), "fd_write"), wasm.ErrInvalidModule, "exports neither _start"},
		{"too large", make([]byte, 9<<20), wasm.ErrModuleTooLarge, "the limit is 8388608"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.Compile(ctx, fileCID(t, tc.code), tc.code)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line that says %q", msg, tc.says)
			}
		})
	}
}

func wasmModuleName() string { return "wasi_snapshot_preview1" }

// moduleImporting hand-assembles the smallest module that imports one
// function mod.name of type () -> () and exports a memory.
func moduleImporting(mod, name string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, body []byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	var imp []byte
	imp = append(imp, 1)
	imp = append(imp, str(mod)...)
	imp = append(imp, str(name)...)
	imp = append(imp, 0x00, 0x00) // a function of type 0
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	b = append(b, section(1, []byte{1, 0x60, 0, 0})...) // type 0: () -> ()
	b = append(b, section(2, imp)...)
	b = append(b, section(5, []byte{1, 0x00, 1})...) // one memory, min 1 page
	b = append(b, section(7, append(append([]byte{1}, str("memory")...), 0x02, 0))...)
	return b
}

func TestCompileOnce(t *testing.T) {
	dir := t.TempDir()
	rt := newRuntime(t, wasm.Config{CacheDir: dir})
	code := wasmtest.Module(t, "upper")
	c := fileCID(t, code)
	var wg sync.WaitGroup
	mods := make([]*wasm.Module, 4)
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := rt.Compile(context.Background(), c, code)
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("four compiles of one CID gave different modules")
		}
	}
	if m, ok := rt.Cached(c); !ok || m != mods[0] {
		t.Fatal("the compiled module is not cached")
	}
	ents, err := os.ReadDir(dir)
	if err != nil || (len(ents) == 0 && !raceEnabled) { // the interpreter compiles nothing
		t.Fatalf("the compilation cache dir is empty (%v)", err)
	}
	// A new runtime on the same dir (a restarted node) loads the
	// machine code from it and runs it.
	rt2 := newRuntime(t, wasm.Config{CacheDir: dir})
	m, err := rt2.Compile(context.Background(), c, code)
	if err != nil {
		t.Fatal(err)
	}
	if res := run(t, m, wasm.Job{Input: []byte("again")}); string(res.Output) != "AGAIN" {
		t.Fatalf("from the cache, upper gave %q", res.Output)
	}
}

// TestReactor checks that a reactor instance serves its owner's runs one
// after another, that owners never share one, and that an instance whose
// run failed is not reused.
func TestReactor(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	tally := load(t, rt, "tally")
	if tally.Kind() != wasm.Reactor {
		t.Fatalf("tally is a %v, want a reactor", tally.Kind())
	}
	call := func(owner, in string) string {
		t.Helper()
		return string(run(t, tally, wasm.Job{Input: []byte(in), Owner: owner}).Output)
	}
	for i, want := range []string{"1:a", "2:a", "3:a"} {
		if got := call("alice", "a"); got != want {
			t.Fatalf("alice's run %d gave %q, want %q", i+1, got, want)
		}
	}
	if got := call("bob", "b"); got != "1:b" {
		t.Fatalf("bob's first run gave %q: it saw alice's instance", got)
	}
	if n := rt.IdleInstances(); n != 2 {
		t.Fatalf("%d idle instances, want 2 (alice's and bob's)", n)
	}
	// A failed run throws its instance away.
	_, err := tally.Run(context.Background(), wasm.Job{Input: make([]byte, 200), Owner: "alice", Limits: wasm.Limits{MaxOutput: 100}})
	if !errors.Is(err, wasm.ErrOutputTooLarge) {
		t.Fatalf("oversized output: %v", err)
	}
	if got := call("alice", "a"); got != "1:a" {
		t.Fatalf("after a failure alice got %q, want a fresh instance", got)
	}
	big := strings.Repeat("x", 100<<10)
	if got := call("carol", big); got != "1:"+big {
		t.Fatalf("a 100 KiB input came back as %d bytes", len(got))
	}
}

func TestConcurrentRuns(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	upper, tally := load(t, rt, "upper"), load(t, rt, "tally")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, want := upper, "RUN"
			if i%2 == 1 {
				m, want = tally, "1:run"
			}
			res, err := m.Run(context.Background(), wasm.Job{Input: []byte("run"), Owner: string(rune('a' + i))})
			if err != nil || string(res.Output) != want {
				t.Errorf("run %d: %q, %v", i, res.Output, err)
			}
		}()
	}
	wg.Wait()
}

// TestEviction checks that the runtime keeps at most MaxModules compiled
// modules and IdleInstances reactor instances, and works on after
// dropping them.
func TestEviction(t *testing.T) {
	rt := newRuntime(t, wasm.Config{MaxModules: 1, IdleInstances: 1})
	tally := load(t, rt, "tally")
	for _, owner := range []string{"a", "b"} {
		run(t, tally, wasm.Job{Input: []byte("x"), Owner: owner})
	}
	if n := rt.IdleInstances(); n != 1 {
		t.Fatalf("%d idle instances kept, want 1", n)
	}
	upper := load(t, rt, "upper")
	if _, ok := rt.Cached(tally.CID()); ok {
		t.Fatal("tally still loaded past MaxModules 1")
	}
	if n := rt.IdleInstances(); n != 0 {
		t.Fatalf("%d idle instances of an unloaded module", n)
	}
	if got := run(t, upper, wasm.Job{Input: []byte("on")}); string(got.Output) != "ON" {
		t.Fatalf("upper gave %q", got.Output)
	}
	if got := run(t, load(t, rt, "tally"), wasm.Job{Input: []byte("x"), Owner: "a"}); string(got.Output) != "1:x" {
		t.Fatalf("tally reloaded gave %q", got.Output)
	}
}
