package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/wasm"
)

// HostModule is the name of the import module that gives modules the
// host API, version included. HOSTAPI.md documents every function.
const HostModule = "nube_v1"

// Error codes of the host API (HOSTAPI.md).
const (
	eDenied      = -1
	eNotFound    = -2
	eInvalid     = -3
	eTooLarge    = -4
	eBadHandle   = -5
	eLimit       = -6
	eUnavailable = -7
	eFailed      = -8
)

// Limits of a run's use of the host API.
const (
	maxHandles  = 64
	maxLogLine  = 4 << 10
	maxLogLines = 64
	maxArg      = 4 << 10 // a space name, key, CID path or service ref
	maxCIDText  = 128
	maxTouched  = 32 // keys and calls a run record names; the rest are counted
	// maxHostValue caps what space_put, add and call take from a
	// module's memory in one call.
	maxHostValue = 64 << 20
	// maxAddedPerRun caps the bytes a run adds as content on the runner.
	maxAddedPerRun = 256 << 20
)

var errBadHandle = errcode.New(errcode.BadRequest, "no such handle")

// errLimit is a run's budget spent: depth, time, credit or handles.
var errLimit = errcode.New(errcode.Busy, "the run's budget is spent")

// hostCode maps an error onto the host API's codes through its errcode.
func hostCode(err error) int64 {
	switch {
	case errors.Is(err, errBadHandle):
		return eBadHandle
	case errors.Is(err, errLimit), errors.Is(err, context.DeadlineExceeded):
		return eLimit
	}
	switch errcode.Of(err) {
	case errcode.Refused, errcode.Unauthorized, errcode.Forbidden:
		return eDenied
	case errcode.NotFound:
		return eNotFound
	case errcode.BadRequest, errcode.Conflict:
		return eInvalid
	case errcode.TooLarge:
		return eTooLarge
	case errcode.Busy, errcode.Timeout:
		return eLimit
	case errcode.Unreachable:
		return eUnavailable
	}
	return eFailed
}

// Touched is what a run did through the host API, for its record: the
// keys it read and wrote (the first maxTouched of each), the bytes, the
// content it opened and added, the services it called and its log.
type Touched struct {
	Read         []string `json:"read,omitempty"`
	Wrote        []string `json:"wrote,omitempty"`
	BytesRead    int64    `json:"bytes_read,omitempty"`
	BytesWritten int64    `json:"bytes_written,omitempty"`
	Opened       []string `json:"opened,omitempty"`
	Added        []string `json:"added,omitempty"`
	Calls        []string `json:"calls,omitempty"`
	Log          []string `json:"log,omitempty"`
}

func (t *Touched) empty() bool {
	return t.BytesRead == 0 && t.BytesWritten == 0 && len(t.Read)+len(t.Wrote)+len(t.Opened)+len(t.Added)+len(t.Calls)+len(t.Log) == 0
}

func note(list []string, s string) []string {
	if len(list) < maxTouched {
		return append(list, s)
	}
	return list
}

// runHost is one run's side of the host API: what its capability allows,
// what it has open, and what it touched. Host functions run on the
// module's goroutine one at a time, so it needs no lock.
type runHost struct {
	m      *Manager
	cap    *Capability // nil: no rights beyond content
	det    bool        // a deterministic run
	depth  int         // this run's depth; its calls are depth+1
	loans  map[string]SpaceLoan
	files  map[int32]*stream
	next   int32
	spent  uint64      // credit its calls spent, in millicredits
	added  int64       // bytes it added as content
	limits wasm.Limits // the run's own, which its calls may not pass
	// slot is set while the run holds one of the node's compute slots.
	// A nested call gives it up while it waits, so that runs waiting on
	// their own calls cannot hold every slot and wait forever.
	slot   bool
	seed   []byte // a deterministic run's, handed to its calls
	err    string // the last error's message
	touch  Touched
	closed bool
}

func (m *Manager) newHost(c *Capability, det bool, depth int) *runHost {
	return &runHost{m: m, cap: c, det: det, depth: depth, loans: map[string]SpaceLoan{}, files: map[int32]*stream{}}
}

// close ends the run's handles and loans: the spaces' keys are forgotten.
func (h *runHost) close() {
	if h.closed {
		return
	}
	h.closed = true
	for id, f := range h.files {
		f.Close()
		delete(h.files, id)
	}
	for name, l := range h.loans {
		l.Close()
		delete(h.loans, name)
	}
}

// fail records err for error_message and returns its code.
func (h *runHost) fail(err error) int64 {
	h.err = err.Error()
	return hostCode(err)
}

// stream is an open handle: what it reads, and how much is left when
// its source says its size (-1 when not).
type stream struct {
	io.ReadCloser
	left int64
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if s.left >= 0 {
		s.left = max(s.left-int64(n), 0)
	}
	return n, err
}

func (h *runHost) open(r io.ReadCloser) (int64, error) {
	if len(h.files) >= maxHandles {
		r.Close()
		return 0, fmt.Errorf("%w: %d handles open, the most a run may have", errLimit, maxHandles)
	}
	s := &stream{ReadCloser: r, left: -1}
	switch x := r.(type) {
	case interface{ Size() uint64 }:
		s.left = int64(min(x.Size(), 1<<62))
	case interface{ Len() int }:
		s.left = int64(x.Len())
	}
	h.next++
	h.files[h.next] = s
	return int64(h.next), nil
}

// sized is a reader of bytes in memory that says how many are left.
type sized struct{ *bytes.Reader }

func (sized) Close() error { return nil }

// loan returns the run's loan of space for an op that needs access on
// key, borrowing it on first use.
func (h *runHost) loan(ctx context.Context, space, key string, need Access) (SpaceLoan, error) {
	if h.det {
		return nil, fmt.Errorf("%w: a deterministic run may not use a space (its answer varies); pass the data by CID", ErrNotAllowed)
	}
	a, token, ok := h.cap.space(space)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: the run was not granted space %s (--allow space:%s:%s)", ErrNotAllowed, space, space, need)
	case a.Access&need != need:
		return nil, fmt.Errorf("%w: the run may only %s %s, not %s", ErrNotAllowed, a.Access, space, need)
	case !strings.HasPrefix(key, a.Prefix):
		return nil, fmt.Errorf("%w: key %q is outside the granted prefix %q of %s", ErrNotAllowed, key, a.Prefix, space)
	}
	if l, ok := h.loans[space]; ok {
		return l, nil
	}
	if h.m.cfg.Spaces == nil {
		return nil, fmt.Errorf("%w: this node has no space layer", ErrNotAllowed)
	}
	l, err := h.m.cfg.Spaces.Borrow(ctx, token, h.cap.Module.String())
	if err != nil {
		return nil, err
	}
	h.loans[space] = l
	return l, nil
}

// hostCall is one function of HostModule: its name, how many i32
// parameters it takes, its result type, and what it does for a run.
type hostCall struct {
	name   string
	params int
	result wasm.ValueType
	f      func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64
}

// hostFuncs are the functions of HostModule for the wasm runtime: each
// finds its run's runHost and stores its result as its type says.
func (m *Manager) hostFuncs() []wasm.HostFunc {
	var out []wasm.HostFunc
	for _, c := range hostCalls {
		ps := make([]wasm.ValueType, c.params)
		for i := range ps {
			ps[i] = wasm.I32
		}
		out = append(out, wasm.HostFunc{Name: c.name, Params: ps, Results: []wasm.ValueType{c.result}, Fn: func(ctx context.Context, mem wasm.Memory, st []uint64) {
			h, _ := wasm.HostValue(ctx).(*runHost)
			var r int64
			if h == nil || h.closed {
				r = eFailed
			} else {
				r = c.f(ctx, h, mem, st)
			}
			if c.result == wasm.I32 {
				st[0] = uint64(uint32(int32(r)))
			} else {
				st[0] = uint64(r)
			}
		}})
	}
	return out
}

// hostCalls are the functions of HostModule, each reading its arguments
// from the module's memory with bounds checks: a module is hostile input.
var hostCalls []hostCall

func init() {
	i32, i64 := wasm.I32, wasm.I64
	type fn = func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64
	def := func(name string, params int, result wasm.ValueType, f fn) hostCall {
		return hostCall{name, params, result, f}
	}
	hostCalls = []hostCall{
		def("error_message", 2, i32, func(_ context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			msg := h.err
			if n := int(uint32(st[1])); len(msg) > n {
				msg = msg[:n]
			}
			if !mem.Write(uint32(st[0]), []byte(msg)) {
				return eInvalid
			}
			return int64(len(msg))
		}),
		def("log", 2, i32, func(_ context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			b, ok := mem.Read(uint32(st[0]), min(uint32(st[1]), maxLogLine))
			if !ok {
				return h.fail(fmt.Errorf("%w: log line outside memory", ErrBadCapability))
			}
			if len(h.touch.Log) < maxLogLines {
				h.touch.Log = append(h.touch.Log, strings.ToValidUTF8(string(b), "?"))
			}
			return 0
		}),
		def("read", 3, i64, func(_ context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			f, ok := h.files[int32(st[0])]
			if !ok {
				return h.fail(errBadHandle)
			}
			buf, ok := mem.Read(uint32(st[1]), uint32(st[2]))
			if !ok {
				return h.fail(errArg("read buffer"))
			}
			if len(buf) == 0 {
				return 0
			}
			for {
				n, err := f.Read(buf)
				if n > 0 {
					h.touch.BytesRead += int64(n)
					return int64(n)
				}
				if err == io.EOF {
					return 0
				}
				if err != nil {
					return h.fail(err)
				}
			}
		}),
		def("size", 1, i64, func(_ context.Context, h *runHost, _ wasm.Memory, st []uint64) int64 {
			f, ok := h.files[int32(st[0])]
			if !ok {
				return h.fail(errBadHandle)
			}
			if f.left >= 0 {
				return f.left
			}
			return h.fail(fmt.Errorf("%w: the size of this stream is not known", errcode.ErrBadRequest))
		}),
		def("close", 1, i32, func(_ context.Context, h *runHost, _ wasm.Memory, st []uint64) int64 {
			f, ok := h.files[int32(st[0])]
			if !ok {
				return h.fail(errBadHandle)
			}
			delete(h.files, int32(st[0]))
			f.Close()
			return 0
		}),
		def("open", 2, i64, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			path, err := argString(mem, st[0], st[1], "path")
			if err != nil {
				return h.fail(err)
			}
			root, _, _ := strings.Cut(path, "/")
			if _, err := cid.Decode(root); err != nil {
				return h.fail(fmt.Errorf("%w: %q is not a CID or CID/path", content.ErrBadCID, path))
			}
			f, err := h.m.cfg.Content.Get(ctx, path)
			if err != nil {
				return h.fail(err)
			}
			h.touch.Opened = note(h.touch.Opened, path)
			id, err := h.open(f)
			if err != nil {
				return h.fail(err)
			}
			return id
		}),
		def("add", 4, i32, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			data, err := argBytes(mem, st[0], st[1], "data", maxHostValue)
			if err != nil {
				return h.fail(err)
			}
			if h.added+int64(len(data)) > maxAddedPerRun {
				return h.fail(fmt.Errorf("%w: a run may add %d bytes in all, and this one has added %d", errcode.ErrTooLarge, maxAddedPerRun, h.added))
			}
			h.added += int64(len(data))
			// Unpinned: what a run adds stays until the runner's next
			// garbage collection; the caller pins what it keeps.
			c, err := h.m.cfg.Content.Add(ctx, bytes.NewReader(data), content.AddOptions{NoPin: true})
			if err != nil {
				return h.fail(err)
			}
			s := c.String()
			if uint32(st[3]) < uint32(len(s)) {
				return h.fail(fmt.Errorf("%w: the CID takes %d bytes and the buffer holds %d", errcode.ErrTooLarge, len(s), uint32(st[3])))
			}
			if !mem.Write(uint32(st[2]), []byte(s)) {
				return h.fail(errArg("CID buffer"))
			}
			h.touch.Added = note(h.touch.Added, s)
			h.touch.BytesWritten += int64(len(data))
			return int64(len(s))
		}),
		def("space_get", 4, i64, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			space, key, err := spaceKey(mem, st)
			if err != nil {
				return h.fail(err)
			}
			l, err := h.loan(ctx, space, key, Read)
			if err != nil {
				return h.fail(err)
			}
			r, err := l.Get(ctx, key)
			if err != nil {
				return h.fail(err)
			}
			h.touch.Read = note(h.touch.Read, space+"/"+key)
			id, err := h.open(r)
			if err != nil {
				return h.fail(err)
			}
			return id
		}),
		def("space_put", 6, i32, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			space, key, err := spaceKey(mem, st)
			if err != nil {
				return h.fail(err)
			}
			val, err := argBytes(mem, st[4], st[5], "value", maxHostValue)
			if err != nil {
				return h.fail(err)
			}
			l, err := h.loan(ctx, space, key, Write)
			if err != nil {
				return h.fail(err)
			}
			if err := l.Put(ctx, key, bytes.NewReader(val)); err != nil {
				return h.fail(err)
			}
			h.touch.Wrote = note(h.touch.Wrote, space+"/"+key)
			h.touch.BytesWritten += int64(len(val))
			return 0
		}),
		def("space_delete", 4, i32, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			space, key, err := spaceKey(mem, st)
			if err != nil {
				return h.fail(err)
			}
			l, err := h.loan(ctx, space, key, Write)
			if err != nil {
				return h.fail(err)
			}
			if err := l.Delete(ctx, key); err != nil {
				return h.fail(err)
			}
			h.touch.Wrote = note(h.touch.Wrote, space+"/"+key)
			return 0
		}),
		def("space_list", 4, i64, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			space, prefix, err := spaceKey(mem, st)
			if err != nil {
				return h.fail(err)
			}
			l, err := h.loan(ctx, space, prefix, Read)
			if err != nil {
				return h.fail(err)
			}
			keys, err := l.List(ctx, prefix)
			if err != nil {
				return h.fail(err)
			}
			var out bytes.Buffer
			for _, k := range keys {
				out.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(k))))
				out.WriteString(k)
			}
			h.touch.Read = note(h.touch.Read, space+"/"+prefix+"*")
			id, err := h.open(sized{bytes.NewReader(out.Bytes())})
			if err != nil {
				return h.fail(err)
			}
			return id
		}),
		def("call", 4, i64, func(ctx context.Context, h *runHost, mem wasm.Memory, st []uint64) int64 {
			ref, err := argString(mem, st[0], st[1], "service")
			if err != nil {
				return h.fail(err)
			}
			in, err := argBytes(mem, st[2], st[3], "input", maxHostValue)
			if err != nil {
				return h.fail(err)
			}
			out, err := h.call(ctx, ref, in)
			if err != nil {
				return h.fail(err)
			}
			id, err := h.open(sized{bytes.NewReader(out)})
			if err != nil {
				return h.fail(err)
			}
			return id
		}),
	}
}

// call runs a nested call for the module: only a service its capability
// names, within the run's depth, time and credit. The call gets no space
// of its own.
func (h *runHost) call(ctx context.Context, ref string, in []byte) ([]byte, error) {
	if !h.cap.mayCall(ref) {
		return nil, fmt.Errorf("%w: the run was not granted calls to %s (--allow call:%s)", ErrNotAllowed, ref, ref)
	}
	if h.depth+1 > h.cap.Depth {
		return nil, fmt.Errorf("%w: a call at depth %d, and the capability allows %d", errLimit, h.depth+1, h.cap.Depth)
	}
	p := h.m.Service(ref)
	p.depth = h.depth + 1
	// The nested run may call what this one may, no deeper, and spend
	// what is left of the budget, under a capability this node's user
	// signs; it reaches no space (this node cannot lend its caller's).
	var calls []Allow
	for _, a := range h.cap.Allows {
		if a.Call != "" {
			calls = append(calls, a)
		}
	}
	p.allows, p.maxDepth = calls, &h.cap.Depth
	p.budget = h.cap.Budget - min(h.spent, h.cap.Budget)
	p.limits = wasm.Limits{Memory: h.limits.Memory, MaxOutput: h.limits.MaxOutput}
	p.seed = h.seed
	stages, err := p.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	var most uint64
	for _, d := range stages {
		if h.det && !d.Deterministic {
			return nil, fmt.Errorf("%w: a deterministic run may call only deterministic services, and %s is not", ErrNotAllowed, d.Label())
		}
		if d.Price.IsZero() {
			continue
		}
		if h.m.user != h.cap.Issuer {
			return nil, fmt.Errorf("%w: %s is priced, and a run pays for its calls only on its caller's own nodes", ErrNotAllowed, d.Label())
		}
		t := d.Limits.Timeout
		if t <= 0 {
			t = wasm.DefaultTimeout
		}
		most = min(most, math.MaxUint64-uint64(math.MaxInt64)) + uint64(max(d.Price.Most(t), 0)) // saturates: never wraps
	}
	if most > 0 && most > h.cap.Budget-min(h.spent, h.cap.Budget) {
		return nil, fmt.Errorf("%w: the call may cost %d millicredits and %d of the run's budget of %d are left", errLimit, most, h.cap.Budget-min(h.spent, h.cap.Budget), h.cap.Budget)
	}
	start := time.Now()
	if h.slot {
		<-h.m.slots
		h.slot = false
	}
	var r Result
	for _, res := range p.callN(ctx, 1, stages, in) { // resolved above
		r = res
	}
	select {
	case h.m.slots <- struct{}{}:
		h.slot = true
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	h.spent += uint64(max(r.Cost, 0))
	if len(h.touch.Calls) < maxTouched {
		h.touch.Calls = append(h.touch.Calls, fmt.Sprintf("%s on %s (%v)", ref, r.Peer, time.Since(start).Round(time.Millisecond)))
	}
	return r.Output, r.Err
}

func errArg(what string) error {
	return fmt.Errorf("%w: the %s is outside the module's memory", errcode.ErrBadRequest, what)
}

func argBytes(mem wasm.Memory, ptr, n uint64, what string, limit uint32) ([]byte, error) {
	if uint32(n) > limit {
		return nil, fmt.Errorf("%w: the %s is %d bytes, the limit is %d", errcode.ErrTooLarge, what, uint32(n), limit)
	}
	b, ok := mem.Read(uint32(ptr), uint32(n))
	if !ok {
		return nil, errArg(what)
	}
	return b, nil
}

func argString(mem wasm.Memory, ptr, n uint64, what string) (string, error) {
	b, err := argBytes(mem, ptr, n, what, maxArg)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// spaceKey reads the (space, key) pair that space functions start with.
func spaceKey(mem wasm.Memory, st []uint64) (string, string, error) {
	space, err := argString(mem, st[0], st[1], "space name")
	if err != nil {
		return "", "", err
	}
	key, err := argString(mem, st[2], st[3], "key")
	return space, key, err
}
