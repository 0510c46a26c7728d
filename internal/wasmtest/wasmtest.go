// Package wasmtest builds the WebAssembly modules that tests run. Their Go
// sources live in wasm/testdata/modules/<name>; Module compiles one with
// GOOS=wasip1 GOARCH=wasm the first time a test asks for it, so the
// repository holds no binaries and the modules always match their sources.
//
// A source with a //go:wasmexport function is built as a reactor
// (-buildmode=c-shared); any other as a command. Built modules are kept in
// the system temp dir under a name derived from the source and the Go
// version, so the test binaries of several packages build each only once.
package wasmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "wasm", "testdata", "modules")
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
	out := filepath.Join(os.TempDir(), "nube-wasmtest", name+"-"+hex.EncodeToString(sum[:8])+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		return b, nil
	}
	goCmd, err := goCommand()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), "build")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, name+".wasm")
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", tmp}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command(goCmd, append(args, ".")...)
	cmd.Dir = filepath.Dir(src)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build module %q: %v\n%s", name, err, msg)
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
