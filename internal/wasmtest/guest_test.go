package wasmtest_test

// A harness for the guest side of nube_v1 alone: the example modules run
// on wazero against a fake nube_v1 that keeps one space in memory, so their
// use of the host API (package guest, nube_v1.h) is tested before, and
// apart from, the real host in package wasm.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/nubecloud/nube/internal/wasmtest"
)

// fake is one run's view of the host: one granted space, some content
// and one service, all in memory.
type fake struct {
	granted string            // the space the run may read and write
	kv      map[string][]byte // the granted space's keys and values
	deny    string            // if set, space_get fails with E_DENIED and this message
	chunk   int               // the most one read returns; 0 for no limit but cap
	content map[string][]byte // CID → bytes

	gotSpace, gotKey string
	handles          map[int32]*stream
	next             int32
	lastErr          string
	reads            int
	logs             []string
}

// stream is what a handle reads.
type stream struct {
	data []byte
	off  int
}

type fakeKey struct{}

func host(ctx context.Context) *fake { return ctx.Value(fakeKey{}).(*fake) }

// The error codes of HOSTAPI.md that the fake returns.
const (
	eDenied    = -1
	eNotFound  = -2
	eInvalid   = -3
	eTooLarge  = -4
	eBadHandle = -5
)

func (f *fake) fail(code int64, msg string) int64 {
	f.lastErr = msg
	return code
}

func (f *fake) open(data []byte) int64 {
	f.next++
	f.handles[f.next] = &stream{data: data}
	return int64(f.next)
}

// args reads (pointer, length) pairs from m's memory, or reports false
// for one outside it.
func args(m api.Module, pl ...uint32) ([][]byte, bool) {
	var out [][]byte
	for i := 0; i < len(pl); i += 2 {
		b, ok := m.Memory().Read(pl[i], pl[i+1])
		if !ok {
			return nil, false
		}
		out = append(out, bytes.Clone(b))
	}
	return out, true
}

// space checks a space call against the grant.
func (f *fake) space(space string) (int64, bool) {
	if space != f.granted {
		return f.fail(eDenied, "space "+space+" is not granted"), false
	}
	return 0, true
}

// instantiateFake instantiates the fake nube_v1 in rt, with every
// function of HOSTAPI.md.
func instantiateFake(t *testing.T, ctx context.Context, rt wazero.Runtime) {
	t.Helper()
	b := rt.NewHostModuleBuilder("nube_v1")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, sp, sn, kp, kn uint32) int64 {
		f := host(ctx)
		a, ok := args(m, sp, sn, kp, kn)
		if !ok {
			return f.fail(eInvalid, "pointer outside memory")
		}
		space, key := string(a[0]), string(a[1])
		f.gotSpace, f.gotKey = space, key
		if f.deny != "" {
			return f.fail(eDenied, f.deny)
		}
		if r, ok := f.space(space); !ok {
			return r
		}
		v, ok := f.kv[key]
		if !ok {
			return f.fail(eNotFound, "no key "+key+" in "+space)
		}
		return f.open(v)
	}).Export("space_get")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, sp, sn, kp, kn, vp, vn uint32) int32 {
		f := host(ctx)
		a, ok := args(m, sp, sn, kp, kn, vp, vn)
		if !ok {
			return int32(f.fail(eInvalid, "pointer outside memory"))
		}
		if r, ok := f.space(string(a[0])); !ok {
			return int32(r)
		}
		f.kv[string(a[1])] = a[2]
		return 0
	}).Export("space_put")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, sp, sn, kp, kn uint32) int32 {
		f := host(ctx)
		a, ok := args(m, sp, sn, kp, kn)
		if !ok {
			return int32(f.fail(eInvalid, "pointer outside memory"))
		}
		if r, ok := f.space(string(a[0])); !ok {
			return int32(r)
		}
		delete(f.kv, string(a[1]))
		return 0
	}).Export("space_delete")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, sp, sn, pp, pn uint32) int64 {
		f := host(ctx)
		a, ok := args(m, sp, sn, pp, pn)
		if !ok {
			return f.fail(eInvalid, "pointer outside memory")
		}
		if r, ok := f.space(string(a[0])); !ok {
			return r
		}
		var list []byte
		for _, k := range slices.Sorted(maps.Keys(f.kv)) {
			if strings.HasPrefix(k, string(a[1])) {
				list = binary.LittleEndian.AppendUint32(list, uint32(len(k)))
				list = append(list, k...)
			}
		}
		return f.open(list)
	}).Export("space_list")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, pp, pn uint32) int64 {
		f := host(ctx)
		a, ok := args(m, pp, pn)
		if !ok {
			return f.fail(eInvalid, "pointer outside memory")
		}
		c, ok := f.content[string(a[0])]
		if !ok {
			return f.fail(eNotFound, "no content "+string(a[0]))
		}
		return f.open(c)
	}).Export("open")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, dp, dn, op, oc uint32) int32 {
		f := host(ctx)
		a, ok := args(m, dp, dn)
		if !ok {
			return int32(f.fail(eInvalid, "pointer outside memory"))
		}
		sum := sha256.Sum256(a[0])
		cid := "bafk" + hex.EncodeToString(sum[:])
		if int(oc) < len(cid) {
			return int32(f.fail(eTooLarge, "out_cap too small for the CID"))
		}
		if !m.Memory().Write(op, []byte(cid)) {
			return int32(f.fail(eInvalid, "pointer outside memory"))
		}
		f.content[cid] = a[0]
		return int32(len(cid))
	}).Export("add")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, rp, rn, ip, in uint32) int64 {
		f := host(ctx)
		a, ok := args(m, rp, rn, ip, in)
		if !ok {
			return f.fail(eInvalid, "pointer outside memory")
		}
		if string(a[0]) != "upper" {
			return f.fail(eNotFound, "no service "+string(a[0]))
		}
		return f.open(bytes.ToUpper(a[1]))
	}).Export("call")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, m api.Module, h int32, buf, bufCap uint32) int64 {
		f := host(ctx)
		s, ok := f.handles[h]
		if !ok {
			return f.fail(eBadHandle, "no handle "+strconv.Itoa(int(h)))
		}
		n := min(int(bufCap), len(s.data)-s.off)
		if f.chunk > 0 {
			n = min(n, f.chunk)
		}
		if !m.Memory().Write(buf, s.data[s.off:s.off+n]) {
			return f.fail(eInvalid, "buffer outside memory")
		}
		s.off += n
		f.reads++
		return int64(n)
	}).Export("read")
	b.NewFunctionBuilder().WithFunc(func(ctx context.Context, h int32) int64 {
		f := host(ctx)
		s, ok := f.handles[h]
		if !ok {
			return f.fail(eBadHandle, "no handle "+strconv.Itoa(int(h)))
		}
		return int64(len(s.data) - s.off)
	}).Export("size")
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
		a, _ := args(m, p, n)
		if len(a) == 1 {
			host(ctx).logs = append(host(ctx).logs, string(a[0]))
		}
		return 0
	}).Export("log")
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
}

// runWith runs the command module on stdin against f and returns its exit
// code, stdout and stderr.
func runWith(t *testing.T, ctx context.Context, rt wazero.Runtime, mod wazero.CompiledModule, f *fake, stdin string) (int, string, string) {
	t.Helper()
	f.handles = map[int32]*stream{}
	if f.kv == nil {
		f.kv = map[string][]byte{}
	}
	if f.content == nil {
		f.content = map[string][]byte{}
	}
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
					f := &fake{granted: "alice/notes", kv: map[string][]byte{"todo": v.value}, chunk: v.chunk}
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
				f := &fake{granted: "alice/notes", kv: map[string][]byte{"todo": []byte("secret")}, deny: "not granted"}
				code, out, errOut := runWith(t, ctx, rt, mod, f, "alice/notes todo")
				if code != 1 || out != "" || !strings.Contains(errOut, "not granted") {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and \"not granted\" on stderr", code, out, errOut)
				}
				if testing.Verbose() {
					t.Logf("stderr: %s", errOut)
				}
			})
			t.Run("not found", func(t *testing.T) {
				f := &fake{granted: "alice/notes", kv: map[string][]byte{"todo": nil}}
				code, _, errOut := runWith(t, ctx, rt, mod, f, "alice/notes nothing")
				if code != 1 || !strings.Contains(errOut, "no key nothing in alice/notes") {
					t.Errorf("exit %d, stderr %q; want exit 1 and the host's message", code, errOut)
				}
			})
			t.Run("bad input", func(t *testing.T) {
				f := &fake{granted: "alice/notes", kv: map[string][]byte{"todo": nil}}
				code, _, errOut := runWith(t, ctx, rt, mod, f, "alice/notes")
				if code != 1 || !strings.Contains(errOut, "OWNER/SPACE KEY") || f.gotSpace != "" {
					t.Errorf("exit %d, stderr %q, asked for %q; want exit 1, a usage message, no space_get", code, errOut, f.gotSpace)
				}
			})
		})
	}
}

// TestGuestAPI runs every function of package guest, inside a module,
// against the fake host.
func TestGuestAPI(t *testing.T) {
	bin := wasmtest.Guest(t, "guestapi")
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	instantiateFake(t, ctx, rt)
	mod, err := rt.CompileModule(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{granted: "alice/notes", chunk: 5}
	code, out, errOut := runWith(t, ctx, rt, mod, f, "")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	sum := sha256.Sum256([]byte("hello content"))
	cid := "bafk" + hex.EncodeToString(sum[:])
	want := `put a: ok
put b/empty: ok
put b/two: ok
put empty key: ok
list b/: ["b/empty" "b/two"] <nil>
list: ["" "a" "b/empty" "b/two"] <nil>
get a: "one" <nil>
get b/empty: "" <nil>
delete a: ok
get a after delete: not found true: space_get: no key a in alice/notes
get bob/secrets: denied true: space_get: space bob/secrets is not granted
error code -1 op space_get message "space bob/secrets is not granted"
add: ` + cid + ` <nil>
open: ok
read: "hello content" <nil>
close: <nil>, again: <nil>
read after close: closed true
open missing: not found true
call upper: "SHOUT" <nil>
call nope: not found true: call: no service nope
long message: ` + strconv.Itoa(len("no key "+strings.Repeat("k", 300)+" in alice/notes")) + ` bytes
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if !slices.Equal(f.logs, []string{"done with 3 steps"}) {
		t.Errorf("logs %q", f.logs)
	}
	if _, ok := f.kv["a"]; ok || string(f.kv["b/two"]) != "two" {
		t.Errorf("space after the run: %q", f.kv)
	}
}
