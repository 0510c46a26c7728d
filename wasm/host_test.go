package wasm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/wasm"
)

// hostState is what a test run gives its host functions as Job.Host.
type hostState struct {
	t       testing.TB
	prefix  string
	calls   int
	blocked chan struct{} // closed by block once it waits
	probed  bool
}

func state(ctx context.Context) *hostState {
	s, _ := wasm.HostValue(ctx).(*hostState)
	return s
}

// testHost is the nube_v1 the test modules import: echo, probe, block
// and nop (see testdata/modules/host).
func testHost() map[string][]wasm.HostFunc {
	i32, i64 := wasm.I32, wasm.I64
	return map[string][]wasm.HostFunc{"nube_v1": {
		{
			// echo(in, n, out, cap) -> len writes the run's prefix and
			// the input in capitals to out.
			Name: "echo", Params: []wasm.ValueType{i32, i32, i32, i32}, Results: []wasm.ValueType{i32},
			Fn: func(ctx context.Context, mem wasm.Memory, stack []uint64) {
				in, ok := mem.Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
				if !ok {
					stack[0] = api.EncodeI32(-3)
					return
				}
				reply := []byte(strings.ToUpper(string(in)))
				if s := state(ctx); s != nil {
					s.calls++
					reply = append([]byte(s.prefix), reply...)
				}
				if uint32(len(reply)) > api.DecodeU32(stack[3]) || !mem.Write(api.DecodeU32(stack[2]), reply) {
					stack[0] = api.EncodeI32(-4)
					return
				}
				stack[0] = api.EncodeI32(int32(len(reply)))
			},
		},
		{
			// probe(p, n) checks Memory's bounds around the module's
			// buffer and the end of its memory; it returns 1.
			Name: "probe", Params: []wasm.ValueType{i32, i32}, Results: []wasm.ValueType{i32},
			Fn: func(ctx context.Context, mem wasm.Memory, stack []uint64) {
				s := state(ctx)
				probeMemory(s.t, mem, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
				s.probed = true
				stack[0] = 1
			},
		},
		{
			// block waits for the run's context to end.
			Name: "block", Results: []wasm.ValueType{i32},
			Fn: func(ctx context.Context, _ wasm.Memory, stack []uint64) {
				if s := state(ctx); s != nil && s.blocked != nil {
					close(s.blocked)
				}
				<-ctx.Done()
				stack[0] = 0
			},
		},
		{
			// nop(x) -> x+1.
			Name: "nop", Params: []wasm.ValueType{i64}, Results: []wasm.ValueType{i64},
			Fn: func(_ context.Context, _ wasm.Memory, stack []uint64) { stack[0]++ },
		},
	}}
}

func probeMemory(t testing.TB, mem wasm.Memory, p, n uint32) {
	t.Helper()
	if b, ok := mem.Read(p, n); !ok || string(b) != "sixteen bytes!!!" {
		t.Errorf("Read of the module's buffer: %q, %v", b, ok)
	}
	// The memory's size: the largest ptr where an empty read is in range.
	lo, hi := uint64(0), uint64(1)<<32 // Read(lo, 0) holds, Read(hi, 0) does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if _, ok := mem.Read(uint32(mid), 0); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	size := uint32(lo)
	if size == 0 || size%(64<<10) != 0 || p+n > size {
		t.Fatalf("the memory seems to be %d bytes, with the buffer at %d", size, p)
	}
	last, ok := mem.Read(size-1, 1)
	if !ok {
		t.Errorf("Read of the last byte (%d) failed", size-1)
	}
	b := last[0]
	for _, c := range []struct{ p, n uint32 }{
		{size, 1}, {size - 1, 2}, {p, size}, {p, ^uint32(0)}, {^uint32(0), 2}, {^uint32(0), ^uint32(0)},
	} {
		if v, ok := mem.Read(c.p, c.n); ok {
			t.Errorf("Read(%d, %d) past the end of %d bytes gave %d bytes", c.p, c.n, size, len(v))
		}
	}
	if mem.Write(size-1, []byte{b ^ 0xff, 0}) {
		t.Errorf("Write of 2 bytes at %d, past the end of %d bytes, succeeded", size-1, size)
	}
	if mem.Write(^uint32(0), []byte{1, 2}) {
		t.Error("Write at the top of the address space succeeded")
	}
	if last[0] != b {
		t.Errorf("a refused Write changed the last byte")
	}
	if !mem.Write(size-1, []byte{b}) {
		t.Errorf("Write of the last byte failed")
	}
}

func TestHostCall(t *testing.T) {
	rt := newRuntime(t, wasm.Config{Host: testHost()})
	m := load(t, rt, "host")
	if m.Kind() != wasm.Reactor {
		t.Fatalf("host is a %v, want a reactor", m.Kind())
	}
	// One instance serves run after run; each run sees its own Host.
	for i, prefix := range []string{"a-", "b-", ""} {
		s := &hostState{t: t, prefix: prefix}
		res := run(t, m, wasm.Job{Input: []byte("echo hello"), Owner: "alice", Host: s})
		if got, want := string(res.Output), fmt.Sprintf("%d:%sHELLO", i+1, prefix); got != want {
			t.Fatalf("run %d gave %q, want %q", i+1, got, want)
		}
		if s.calls != 1 {
			t.Fatalf("run %d: its host state saw %d calls, want 1", i+1, s.calls)
		}
	}
	// No Host at all.
	if got := string(run(t, m, wasm.Job{Input: []byte("echo x"), Owner: "alice"}).Output); got != "4:X" {
		t.Fatalf("a run with no Host gave %q", got)
	}
	// A reply larger than the module's buffer is refused by echo.
	big := strings.Repeat("x", 5<<10)
	if got := string(run(t, m, wasm.Job{Input: []byte("echo " + big), Owner: "alice"}).Output); got != "5:error -4" {
		t.Fatalf("an oversized reply gave %q", got)
	}

	// Concurrent runs for one owner: several instances, each run still
	// sees its own Host.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := &hostState{t: t, prefix: strconv.Itoa(i) + "-"}
			res, err := m.Run(context.Background(), wasm.Job{Input: []byte("echo run"), Owner: "bob", Host: s})
			_, out, _ := strings.Cut(string(res.Output), ":")
			if err != nil || out != s.prefix+"RUN" || s.calls != 1 {
				t.Errorf("run %d: %q, %d calls, %v", i, res.Output, s.calls, err)
			}
		})
	}
	wg.Wait()
}

// TestHostMemory checks the bounds of the Memory a host function gets,
// from inside a run.
func TestHostMemory(t *testing.T) {
	rt := newRuntime(t, wasm.Config{Host: testHost()})
	m := load(t, rt, "host")
	s := &hostState{t: t}
	res := run(t, m, wasm.Job{Input: []byte("probe"), Host: s, Limits: wasm.Limits{Memory: 32 << 20}})
	if got := string(res.Output); got != "1:1" || !s.probed {
		t.Fatalf("probe gave %q (probed %v)", got, s.probed)
	}
}

func TestHostImports(t *testing.T) {
	ctx := context.Background()
	code := wasmtest.Module(t, "host")
	compile := func(host map[string][]wasm.HostFunc, code []byte) error {
		rt := newRuntime(t, wasm.Config{Host: host})
		_, err := rt.Compile(ctx, fileCID(t, code), code)
		return err
	}
	if err := compile(testHost(), code); err != nil {
		t.Fatalf("a module importing what the node provides: %v", err)
	}
	without := func(name string) map[string][]wasm.HostFunc {
		h := testHost()
		fns := h["nube_v1"][:0]
		for _, f := range h["nube_v1"] {
			if f.Name != name {
				fns = append(fns, f)
			}
		}
		h["nube_v1"] = fns
		return h
	}
	wrongEcho := testHost()
	wrongEcho["nube_v1"][0].Results = []wasm.ValueType{wasm.I64}
	ping := map[string][]wasm.HostFunc{"nube_v1": {{Name: "ping", Fn: func(context.Context, wasm.Memory, []uint64) {}}}}
	for _, tc := range []struct {
		name string
		host map[string][]wasm.HostFunc
		code []byte
		says string
	}{
		{"no host modules", nil, code, "which this node does not provide"},
		{"a function missing", without("block"), code, "imports nube_v1.block, which this node does not provide"},
		{"another module", testHost(), moduleImporting("nube_v2", "echo"), "imports nube_v2.echo, which this node does not provide"},
		{"wrong signature", wrongEcho, code, "imports nube_v1.echo as (i32, i32, i32, i32) -> (i32), but this node provides (i32, i32, i32, i32) -> (i64)"},
		{"wrong signature, hand-made", testHost(), moduleImporting("nube_v1", "block"), "imports nube_v1.block as () -> (), but this node provides () -> (i32)"},
		// The import is accepted; the module is refused for what it
		// lacks next.
		{"provided", ping, moduleImporting("nube_v1", "ping"), "exports neither _start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := compile(tc.host, tc.code)
			if !errors.Is(err, wasm.ErrInvalidModule) {
				t.Fatalf("error %v, want ErrInvalidModule", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line that says %q", msg, tc.says)
			}
		})
	}
}

func TestHostConfig(t *testing.T) {
	fn := func(context.Context, wasm.Memory, []uint64) {}
	for _, tc := range []struct {
		name string
		host map[string][]wasm.HostFunc
		says string
	}{
		{"no module name", map[string][]wasm.HostFunc{"": {{Name: "f", Fn: fn}}}, "no name"},
		{"WASI's name", map[string][]wasm.HostFunc{"wasi_snapshot_preview1": {{Name: "f", Fn: fn}}}, "WASI's"},
		{"no function name", map[string][]wasm.HostFunc{"m": {{Fn: fn}}}, "function with no name"},
		{"twice", map[string][]wasm.HostFunc{"m": {{Name: "f", Fn: fn}, {Name: "f", Fn: fn}}}, "two functions named f"},
		{"no Fn", map[string][]wasm.HostFunc{"m": {{Name: "f"}}}, "has no Fn"},
		{"bad type", map[string][]wasm.HostFunc{"m": {{Name: "f", Params: []wasm.ValueType{0x7d}, Fn: fn}}}, "want I32 or I64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wasm.New(context.Background(), wasm.Config{Host: tc.host})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want one that says %q", err, tc.says)
			}
		})
	}
}

// TestHostTimeout runs a host function that blocks until the run's
// context ends: the run's deadline, or its caller's cancelling.
func TestHostTimeout(t *testing.T) {
	rt := newRuntime(t, wasm.Config{Host: testHost()})
	m := load(t, rt, "host")
	res, err := m.Run(context.Background(), wasm.Job{Input: []byte("block"), Owner: "a", Limits: wasm.Limits{Timeout: 100 * time.Millisecond}})
	if !errors.Is(err, wasm.ErrTimeout) {
		t.Fatalf("a blocked host call ended with %v, want ErrTimeout", err)
	}
	if res.Output != nil || res.Usage.Wall < 100*time.Millisecond {
		t.Fatalf("a timed-out run gave output %q, wall time %v", res.Output, res.Usage.Wall)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &hostState{t: t, blocked: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, wasm.Job{Input: []byte("block"), Owner: "a", Host: s, Limits: wasm.Limits{Timeout: time.Hour}})
		done <- err
	}()
	<-s.blocked
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled host call ended with %v, want context.Canceled", err)
	}
	// Both failed runs threw their instance away.
	if got := string(run(t, m, wasm.Job{Input: []byte("echo ok"), Owner: "a"}).Output); got != "1:OK" {
		t.Fatalf("after the failures the owner's run gave %q, want a fresh instance", got)
	}
}

func TestDeterministic(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	clock := load(t, rt, "clock")
	out := func(job wasm.Job) string { return string(run(t, clock, job).Output) }
	a1 := out(wasm.Job{Deterministic: true, Seed: []byte("a")})
	a2 := out(wasm.Job{Deterministic: true, Seed: []byte("a")})
	b := out(wasm.Job{Deterministic: true, Seed: []byte("b")})
	r1, r2 := out(wasm.Job{}), out(wasm.Job{})
	t.Logf("seed a: %q; seed b: %q; real: %q, %q", a1, b, r1, r2)
	if a1 != a2 {
		t.Errorf("two deterministic runs with one seed differ: %q and %q", a1, a2)
	}
	if a1 == b || randomPart(a1) == randomPart(b) {
		t.Errorf("seeds a and b gave the same random bytes: %q", a1)
	}
	if r1 == r2 || randomPart(r1) == randomPart(r2) {
		t.Errorf("two ordinary runs gave the same random bytes: %q", r1)
	}
	// The virtual clock is in 2022, and a sleep takes no real time but
	// moves it on.
	f := strings.Fields(a1)
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	if y := time.Unix(0, ns).UTC().Year(); y != 2022 {
		t.Errorf("the virtual clock says %v", time.Unix(0, ns).UTC())
	}
	if d, _ := time.ParseDuration(f[1] + "ns"); d < time.Millisecond {
		t.Errorf("a 1ms sleep took %v of virtual time", d)
	}

	// A reactor's deterministic run gets a fresh instance, and leaves the
	// owner's own in place.
	tally := load(t, rt, "tally")
	call := func(job wasm.Job) string { job.Owner = "alice"; return string(run(t, tally, job).Output) }
	for i, c := range []struct {
		job  wasm.Job
		want string
	}{
		{wasm.Job{Input: []byte("x")}, "1:x"},
		{wasm.Job{Input: []byte("x")}, "2:x"},
		{wasm.Job{Input: []byte("d"), Deterministic: true}, "1:d"},
		{wasm.Job{Input: []byte("d"), Deterministic: true}, "1:d"},
		{wasm.Job{Input: []byte("x")}, "3:x"},
	} {
		if got := call(c.job); got != c.want {
			t.Fatalf("run %d gave %q, want %q", i+1, got, c.want)
		}
	}
	if n := rt.IdleInstances(); n != 1 {
		t.Fatalf("%d idle instances, want alice's one: deterministic runs keep none", n)
	}
}

func randomPart(out string) string {
	f := strings.Fields(out)
	return f[len(f)-1]
}

// BenchmarkHostCall measures a host call's round trip from a module: one
// op is one call of nop(i64) -> i64, made in a loop inside one run of a
// warm reactor instance.
func BenchmarkHostCall(b *testing.B) {
	rt := newRuntime(b, wasm.Config{Host: testHost()})
	m := load(b, rt, "host")
	spin := func(n int) {
		res, err := m.Run(context.Background(), wasm.Job{Input: []byte("spin " + strconv.Itoa(n)), Owner: "bench", Limits: wasm.Limits{Timeout: time.Hour}})
		if err != nil || !bytes.HasSuffix(res.Output, []byte(":"+strconv.Itoa(n))) {
			b.Fatalf("spin %d: %q, %v", n, res.Output, err)
		}
	}
	spin(1)
	b.ReportAllocs()
	b.ResetTimer()
	spin(b.N)
}
