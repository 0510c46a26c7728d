// Package wasmtest builds the WebAssembly modules that tests run. Their Go
// sources live in wasm/testdata/modules/<name>; Module compiles one with
// GOOS=wasip1 GOARCH=wasm the first time a test asks for it, so the
// repository holds no binaries and the modules always match their sources.
// Example does the same for the Go modules in examples/modules/<name>,
// which use package guest, and C for the C ones there, with clang.
//
// A source with a //go:wasmexport function is built as a reactor
// (-buildmode=c-shared); any other as a command. Built modules are kept in
// the system temp dir under a name derived from the sources and the
// compiler's version, so the test binaries of several packages build each
// only once.
package wasmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nubecloud/nube/internal/atomicfile"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// Dir returns the directory holding the modules' sources.
func Dir() string {
	return filepath.Join(root(), "wasm", "testdata", "modules")
}

// ExamplesDir returns the directory holding the example modules' sources.
func ExamplesDir() string {
	return filepath.Join(root(), "examples", "modules")
}

// root returns the repository's top directory.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Module returns the bytes of the test module name, building it if need
// be. It fails the test if the module cannot be built, and skips it if no
// Go toolchain is at hand.
func Module(t testing.TB, name string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[name]; ok {
		return b
	}
	b, err := build(name)
	if err == errNoGo {
		t.Skip("wasmtest: no go command to build test modules with (needs the Go toolchain, as go test has)")
	}
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	built[name] = b
	return b
}

var errNoGo = fmt.Errorf("no go command")

// goCommand finds the go command on PATH. Under go test that is the
// toolchain running the tests: go test puts its own GOROOT/bin first on
// the PATH of the test binary.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	return "", errNoGo
}

func build(name string) ([]byte, error) {
	src := filepath.Join(Dir(), name, "main.go")
	code, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", name, err)
	}
	reactor := bytes.Contains(code, []byte("//go:wasmexport"))
	sum := sha256.Sum256(append([]byte(runtime.Version()+"\x00"), code...))
	return cached(name+"-"+hex.EncodeToString(sum[:8]), func(out string) error {
		return goBuild(name, filepath.Dir(src), reactor, out)
	})
}

// Example returns the bytes of the Go module examples/modules/name,
// building it if need be. Its cache key covers the example's sources and
// package guest's, so a change to either builds it again. It fails the
// test if the module cannot be built, and skips it if no Go toolchain is
// at hand.
func Example(t testing.TB, name string) []byte {
	t.Helper()
	return guestModule(t, ExamplesDir(), "example", name)
}

// Guest returns the Go module internal/wasmtest/testdata/name, a test
// module that uses package guest, built as Example builds the examples.
func Guest(t testing.TB, name string) []byte {
	t.Helper()
	return guestModule(t, filepath.Join(root(), "internal", "wasmtest", "testdata"), "testdata", name)
}

// guestModule returns the Go module in dir/name, which may use package
// guest, building it if need be; kind names it in the cache and errors.
func guestModule(t testing.TB, dir, kind, name string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built[kind+"/"+name]; ok {
		return b
	}
	b, err := buildGuest(filepath.Join(dir, name), kind, name)
	if err == errNoGo {
		t.Skipf("wasmtest: no go command to build %s modules with (needs the Go toolchain, as go test has)", kind)
	}
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	built[kind+"/"+name] = b
	return b
}

func buildGuest(dir, kind, name string) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte(runtime.Version() + "\x00"))
	code, err := hashSources(h, dir, ".go")
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	if len(code) == 0 {
		return nil, fmt.Errorf("%s %q: no Go sources in %s", kind, name, dir)
	}
	for _, pkg := range []string{"guest", filepath.Join("guest", "mapreduce")} {
		if _, err := hashSources(h, filepath.Join(root(), pkg), ".go"); err != nil {
			return nil, fmt.Errorf("%s %q: package %s: %w", kind, name, pkg, err)
		}
	}
	reactor := bytes.Contains(code, []byte("//go:wasmexport"))
	return cached(kind+"-"+name+"-"+hex.EncodeToString(h.Sum(nil)[:8]), func(out string) error {
		return goBuild(name, dir, reactor, out)
	})
}

// C returns the bytes of the C module examples/modules/name, built from
// its main.c with clang for wasm32-wasi if need be; the cache key covers
// its .c and .h files and clang's version. It fails the test if the
// module cannot be built, and skips it, saying so, if clang, wasi-libc or
// the wasm32 runtime library is missing.
func C(t testing.TB, name string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if b, ok := built["c/"+name]; ok {
		return b
	}
	b, err := buildC(name)
	var missing *clangMissing
	if errors.As(err, &missing) {
		t.Skipf("wasmtest: clang with wasi-libc is missing (.ci/run installs clang lld wasi-libc libclang-rt-14-dev-wasm32 as root): %v", missing.err)
	}
	if err != nil {
		t.Fatalf("wasmtest: %v", err)
	}
	built["c/"+name] = b
	return b
}

// clangMissing is why this machine cannot build C for wasm32-wasi.
type clangMissing struct{ err error }

func (e *clangMissing) Error() string { return "clang for wasm32-wasi: " + e.err.Error() }

var (
	clangVersion string // clang --version, once clang has built a probe
	clangErr     error
)

// clangTarget is how C modules are built; README.md in examples/modules
// says the same.
var clangTarget = []string{"--target=wasm32-wasi", "-O2"}

// clang finds clang and checks, by building a program that uses libc,
// that it has what wasm32-wasi needs: the target, wasm-ld, wasi-libc and
// the wasm32 builtins. It returns clang's version.
func clang() (string, error) {
	if clangVersion != "" || clangErr != nil {
		return clangVersion, clangErr
	}
	clangVersion, clangErr = probeClang()
	return clangVersion, clangErr
}

func probeClang() (string, error) {
	path, err := exec.LookPath("clang")
	if err != nil {
		return "", &clangMissing{err}
	}
	version, err := exec.Command(path, "--version").Output()
	if err != nil {
		return "", &clangMissing{fmt.Errorf("clang --version: %v", err)}
	}
	dir, err := os.MkdirTemp("", "nube-wasmtest-clang")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	args := append(append([]string{}, clangTarget...), "-o", filepath.Join(dir, "probe.wasm"), "-x", "c", "-")
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader("#include <stdio.h>\nint main(void) { return puts(\"probe\") < 0; }\n")
	if msg, err := cmd.CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(msg)), "\n")
		return "", &clangMissing{fmt.Errorf("%v: %s", err, first)}
	}
	return string(version), nil
}

func buildC(name string) ([]byte, error) {
	version, err := clang()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(ExamplesDir(), name)
	if _, err := os.Stat(filepath.Join(dir, "main.c")); err != nil {
		return nil, fmt.Errorf("C module %q: %w", name, err)
	}
	h := sha256.New()
	h.Write([]byte(version + "\x00" + strings.Join(clangTarget, " ") + "\x00"))
	if _, err := hashSources(h, dir, ".c", ".h"); err != nil {
		return nil, fmt.Errorf("C module %q: %w", name, err)
	}
	return cached("c-"+name+"-"+hex.EncodeToString(h.Sum(nil)[:8]), func(out string) error {
		args := append(append([]string{}, clangTarget...), "-o", out, "main.c")
		cmd := exec.Command("clang", args...)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build C module %q: %v\n%s", name, err, msg)
		}
		return nil
	})
}

// hashSources writes to h the names and contents of the files in dir (not
// its subdirectories) that end in one of exts, tests aside, in name
// order, and returns their contents.
func hashSources(h hash.Hash, dir string, exts ...string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasSuffix(name, "_test.go") || !slices.ContainsFunc(exts, func(ext string) bool {
			return strings.HasSuffix(name, ext)
		}) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
		all = append(all, b...)
	}
	return all, nil
}

// cached returns the module kept in the temp dir under key, or makes it
// with build, which writes it to the path it is given, and keeps it.
func cached(key string, build func(out string) error) ([]byte, error) {
	out := filepath.Join(os.TempDir(), "nube-wasmtest", key+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), "build")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(out))
	if err := build(tmp); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(tmp)
	if err != nil {
		return nil, err
	}
	// Another test process may build the same module at the same time;
	// the atomic write leaves one whole file either way.
	if err := atomicfile.Write(out, b, 0o644); err != nil {
		return nil, err
	}
	return b, nil
}

// goBuild builds the Go package in dir for wasip1 into out.
func goBuild(name, dir string, reactor bool, out string) error {
	goCmd, err := goCommand()
	if err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command(goCmd, append(args, ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build module %q: %v\n%s", name, err, msg)
	}
	return nil
}
