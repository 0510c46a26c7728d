package wasmtest_test

// A harness for the guest side of nube_v1 alone: the example modules run
// on wazero against a fake nube_v1 that serves one fixed value, so their
// use of the host API (package guest, nube_v1.h) is tested before, and
// apart from, the real host in package wasm.

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/nubecloud/nube/internal/wasmtest"
)

// fake is one run's view of the host: a single space key and its value.
type fake struct {
	space, key string // what the run may get
	value      []byte
	chunk      int    // the most one read returns; 0 for no limit but cap
	deny       string // if set, space_get fails with E_DENIED and this message

	gotSpace, gotKey string
	handles          map[int32]int // open handle → offset into value
	next             int32
	lastErr          string
	reads            int
	logs             []string
}

type fakeKey struct{}

func host(ctx context.Context) *fake { return ctx.Value(fakeKey{}).(*fake) }

const (
	eDenied    = -1
	eNotFound  = -2
	eInvalid   = -3
	eBadHandle = -5
	eFailed    = -8
)

func (f *fake) fail(code int64, msg string) int64 {
	f.lastErr = msg
	return code
}

func str(m api.Module, ptr, n uint32) (string, bool) {
	b, ok := m.Memory().Read(ptr, n)
	return string(b), ok
}

// instantiateFake instantiates the fake nube_v1 in rt: every function of
// HOSTAPI.md, those this harness does not serve failing with E_FAILED.
func instantiateFake(t *testing.T, ctx context.Context, rt wazero.Runtime) {
	t.Helper()
	b := rt.NewHostModuleBuilder("nube_v1")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, sp, sn, kp, kn uint32) int64 {
		f := host(ctx)
		space, ok1 := str(m, sp, sn)
		key, ok2 := str(m, kp, kn)
		if !ok1 || !ok2 {
			return f.fail(eInvalid, "pointer outside memory")
		}
		f.gotSpace, f.gotKey = space, key
		switch {
		case f.deny != "":
			return f.fail(eDenied, f.deny)
		case space != f.space || key != f.key:
			return f.fail(eNotFound, "no key "+key+" in "+space)
		}
		f.next++
		f.handles[f.next] = 0
		return int64(f.next)
	}).Export("space_get")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, h int32, buf, bufCap uint32) int64 {
		f := host(ctx)
		off, ok := f.handles[h]
		if !ok {
			return f.fail(eBadHandle, "no handle "+strconv.Itoa(int(h)))
		}
		n := min(int(bufCap), len(f.value)-off)
		if f.chunk > 0 {
			n = min(n, f.chunk)
		}
		if !m.Memory().Write(buf, f.value[off:off+n]) {
			return f.fail(eInvalid, "buffer outside memory")
		}
		f.handles[h] = off + n
		f.reads++
		return int64(n)
	}).Export("read")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, h int32) int32 {
		f := host(ctx)
		if _, ok := f.handles[h]; !ok {
			return int32(f.fail(eBadHandle, "no handle "+strconv.Itoa(int(h))))
		}
		delete(f.handles, h)
		return 0
	}).Export("close")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, buf, bufCap uint32) int32 {
		msg := host(ctx).lastErr
		m.Memory().Write(buf, []byte(msg)[:min(len(msg), int(bufCap))])
		return int32(len(msg))
	}).Export("error_message")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, p, n uint32) int32 {
		line, _ := str(m, p, n)
		host(ctx).logs = append(host(ctx).logs, line)
		return 0
	}).Export("log")
	unserved := func(name string, params int, result api.ValueType) {
		in := make([]api.ValueType, params)
		for i := range in {
			in[i] = api.ValueTypeI32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			host(ctx).lastErr = name + " is not in this harness"
			stack[0] = api.EncodeI64(eFailed)
		}), in, []api.ValueType{result}).Export(name)
	}
	unserved("open", 2, api.ValueTypeI64)
	unserved("add", 4, api.ValueTypeI32)
	unserved("space_put", 6, api.ValueTypeI32)
	unserved("space_delete", 4, api.ValueTypeI32)
	unserved("space_list", 4, api.ValueTypeI64)
	unserved("call", 4, api.ValueTypeI64)
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
}

// runWith runs the command module on stdin against f and returns its exit
// code, stdout and stderr.
func runWith(t *testing.T, ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule, f *fake, stdin string) (int, string, string) {
	t.Helper()
	f.handles = map[int32]int{}
	var stdout, stderr bytes.Buffer
	cfg := wazero.NewModuleConfig().WithName("").
		WithStdin(strings.NewReader(stdin)).WithStdout(&stdout).WithStderr(&stderr)
	m, err := rt.InstantiateModule(context.WithValue(ctx, fakeKey{}, f), mod, cfg)
	code := 0
	var exit *sys.ExitError
	switch {
	case errors.As(err, &exit):
		code = int(exit.ExitCode())
	case err != nil:
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	if m != nil {
		m.Close(ctx)
	}
	if len(f.handles) != 0 {
		t.Errorf("the module left %d handles open", len(f.handles))
	}
	return code, stdout.String(), stderr.String()
}

// words builds an ASCII value of about n bytes: words of 1 to 20 bytes
// between runs of every kind of whitespace wc -w knows.
func words(r *rand.Rand, n int) []byte {
	var b []byte
	for len(b) < n {
		for range 1 + r.IntN(3) {
			b = append(b, " \t\n\r\v\f"[r.IntN(6)])
		}
		for range 1 + r.IntN(20) {
			b = append(b, byte('!'+r.IntN('~'-'!'+1)))
		}
	}
	return b
}

func TestSpaceWC(t *testing.T) {
	modules := []struct {
		name  string
		build func(testing.TB, string) []byte
		src   string
	}{
		{"go", wasmtest.Example, "space-wc"},
		{"c", wasmtest.C, "space-wc-c"},
	}
	r := rand.New(rand.NewPCG(1, 2))
	big := words(r, 300<<10)
	long := append(bytes.Repeat([]byte("x"), 64<<10+10), " y\n"...) // a word across the first 64 KiB read
	// A word straddles every 64 KiB boundary of split.
	split := words(r, 200<<10)
	for _, at := range []int{64 << 10, 128 << 10} {
		copy(split[at-3:], "abcdef")
	}
	values := []struct {
		name  string
		value []byte
		chunk int
		want  int
	}{
		{"small", []byte("the quick  brown\tfox\n"), 0, 4},
		{"empty", nil, 0, 0},
		{"spaces", []byte(" \n\t \r\v\f"), 0, 0},
		{"no trailing space", []byte("one two"), 0, 2},
		{"long word", long, 0, 2},
		{"split", split, 0, len(bytes.Fields(split))},
		{"big", big, 0, len(bytes.Fields(big))},
		{"big, short reads", big, 4093, len(bytes.Fields(big))},
		{"big, byte reads", big[:5000], 1, len(bytes.Fields(big[:5000]))},
	}
	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) {
			bin := m.build(t, m.src)
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			instantiateFake(t, ctx, rt)
			mod, err := rt.CompileModule(ctx, bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				t.Run(v.name, func(t *testing.T) {
					f := &fake{space: "alice/notes", key: "todo", value: v.value, chunk: v.chunk}
					code, out, errOut := runWith(t, ctx, rt, mod, f, "alice/notes todo\n")
					if code != 0 {
						t.Fatalf("exit %d, stderr %q", code, errOut)
					}
					if want := strconv.Itoa(v.want) + "\n"; out != want {
						t.Errorf("stdout %q, want %q", out, want)
					}
					if f.gotSpace != "alice/notes" || f.gotKey != "todo" {
						t.Errorf("space_get(%q, %q), want alice/notes todo", f.gotSpace, f.gotKey)
					}
					if len(v.value) > 64<<10 && v.chunk == 0 && f.reads > len(v.value)/(64<<10)+2 {
						t.Errorf("%d reads of a %d-byte value: want reads of 64 KiB", f.reads, len(v.value))
					}
				})
			}
			t.Run("denied", func(t *testing.T) {
				f := &fake{space: "alice/notes", key: "todo", value: []byte("secret"), deny: "not granted"}
				code, out, errOut := runWith(t, ctx, rt, mod, f, "alice/notes todo")
				if code != 1 || out != "" || !strings.Contains(errOut, "not granted") {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and \"not granted\" on stderr", code, out, errOut)
				}
				if testing.Verbose() {
					t.Logf("stderr: %s", errOut)
				}
			})
			t.Run("not found", func(t *testing.T) {
				f := &fake{space: "alice/notes", key: "todo"}
				code, _, errOut := runWith(t, ctx, rt, mod, f, "alice/notes nothing")
				if code != 1 || !strings.Contains(errOut, "no key nothing in alice/notes") {
					t.Errorf("exit %d, stderr %q; want exit 1 and the host's message", code, errOut)
				}
			})
			t.Run("bad input", func(t *testing.T) {
				f := &fake{space: "alice/notes", key: "todo"}
				code, _, errOut := runWith(t, ctx, rt, mod, f, "alice/notes")
				if code != 1 || !strings.Contains(errOut, "OWNER/SPACE KEY") || f.gotSpace != "" {
					t.Errorf("exit %d, stderr %q, asked for %q; want exit 1, a usage message, no space_get", code, errOut, f.gotSpace)
				}
			})
		})
	}
}
