package remote

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/nubecloud/nube/internal/wire"
)

// MaxNameLen is the longest function name Func accepts.
const MaxNameLen = 128

// FuncInfo describes a function a node serves.
type FuncInfo struct {
	Name   string `cbor:"1,keyasint" json:"name"`
	In     string `cbor:"2,keyasint" json:"in"`     // the input type, in Go syntax
	Out    string `cbor:"3,keyasint" json:"out"`    // the output type (of each item, for a stream)
	Stream bool   `cbor:"4,keyasint" json:"stream"` // the function yields many results
}

// handler is a registered function seen from the wire: encoded input in,
// encoded results out.
type handler interface {
	info() FuncInfo
	// run decodes in, runs the function and passes each encoded result to
	// emit (exactly once for a plain function). A panic in the function
	// comes back as a *PanicError, an input that does not decode as a
	// *status with CodeBadInput; anything else is the function's own error
	// or emit's.
	run(ctx context.Context, in []byte, emit func(out []byte) error) error
}

// registry holds the functions linked into this binary, by name. It is
// global because registration is: a function exists in every binary that
// links the package declaring it, as an HTTP handler or a database driver
// does.
var registry = struct {
	sync.RWMutex
	funcs map[string]handler
}{funcs: map[string]handler{}}

func register(name string, h handler) {
	if err := checkName(name); err != nil {
		panic("remote: " + err.Error())
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.funcs[name]; dup {
		panic(fmt.Sprintf("remote: function %q registered twice", name))
	}
	registry.funcs[name] = h
}

func lookup(name string) handler {
	registry.RLock()
	defer registry.RUnlock()
	return registry.funcs[name]
}

// Registered lists the functions linked into this binary, sorted by name.
func Registered() []FuncInfo {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]FuncInfo, 0, len(registry.funcs))
	for _, h := range registry.funcs {
		out = append(out, h.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("function name %q: must be 1 to %d bytes", name, MaxNameLen)
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("function name %q: no spaces or control characters", name)
		}
	}
	return nil
}

// checkType refuses, at registration, types the codec can never carry.
func checkType(t reflect.Type, seen map[reflect.Type]bool) error {
	if t == nil || seen[t] {
		return nil
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("type %s cannot be encoded", t)
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkType(t.Elem(), seen)
	case reflect.Map:
		if err := checkType(t.Key(), seen); err != nil {
			return err
		}
		return checkType(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("cbor") == "-" {
				continue
			}
			if err := checkType(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
	}
	return nil
}

func mustCarry[T any](name, what string) reflect.Type {
	t := reflect.TypeFor[T]()
	if err := checkType(t, map[reflect.Type]bool{}); err != nil {
		panic(fmt.Sprintf("remote: function %q: %s %v", name, what, err))
	}
	return t
}

// describe writes t in Go syntax. A named struct is spelled out one level
// deep, so that a peer listing a function learns the fields to send.
func describe(t reflect.Type) string {
	if t.Kind() == reflect.Struct && t.Name() != "" && t.NumField() > 0 {
		var b strings.Builder
		b.WriteString(t.String())
		b.WriteString("{")
		n := 0
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("cbor") == "-" {
				continue
			}
			if n > 0 {
				b.WriteString("; ")
			}
			n++
			b.WriteString(f.Name + " " + f.Type.String())
		}
		b.WriteString("}")
		return b.String()
	}
	return t.String()
}

// decodeInput decodes a call's input into the function's input type.
func decodeInput[In any](in []byte) (In, error) {
	var v In
	if err := wire.Unmarshal(in, &v); err != nil {
		return v, &status{CodeBadInput, fmt.Sprintf("want %s: %v", reflect.TypeFor[In](), err)}
	}
	return v, nil
}

// protect runs f, turning a panic into a *PanicError.
func protect(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}

// Function is a remote function of one input and one output. Declare it
// once, at package level, with Func (or Declare in a binary that only
// calls it), and call it with At, OnAll or Any.
type Function[In, Out any] struct {
	name string
	fn   func(context.Context, In) (Out, error) // nil for a declaration
	fi   FuncInfo
}

// Func registers fn under name and returns the Function to call it with.
// Every binary that links the declaring package serves the function (under
// its node's policy), so callers and callees agree by name and Go type, with
// no IDL. In and Out are any types the CBOR codec carries: basic types,
// slices, maps, structs of those (exported fields), pointers.
//
// Func panics if name is taken, empty, over MaxNameLen bytes or contains
// spaces, or if In or Out hold channels or functions: all mistakes of the
// program, found when it starts.
func Func[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error)) *Function[In, Out] {
	if fn == nil {
		panic(fmt.Sprintf("remote: function %q: nil func", name))
	}
	f := Declare[In, Out](name)
	f.fn = fn
	register(name, f)
	return f
}

// Declare returns a Function to call name on other nodes without linking
// (or registering) its code: for a client binary that calls what servers
// run. Calling a declared function on the local node gives
// ErrNoSuchFunction unless some other part of the binary registered it.
func Declare[In, Out any](name string) *Function[In, Out] {
	if err := checkName(name); err != nil {
		panic("remote: " + err.Error())
	}
	in, out := mustCarry[In](name, "input"), mustCarry[Out](name, "output")
	return &Function[In, Out]{name: name, fi: FuncInfo{Name: name, In: describe(in), Out: describe(out)}}
}

// Name returns the name the function is registered under.
func (f *Function[In, Out]) Name() string { return f.name }

func (f *Function[In, Out]) info() FuncInfo { return f.fi }

func (f *Function[In, Out]) run(ctx context.Context, raw []byte, emit func([]byte) error) error {
	in, err := decodeInput[In](raw)
	if err != nil {
		return err
	}
	var out Out
	if err := protect(func() (err error) { out, err = f.fn(ctx, in); return err }); err != nil {
		return err
	}
	b, err := wire.Marshal(out)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	return emit(b)
}

// StreamFunction is a remote function that yields many results, which the
// caller ranges over. Declare it with StreamFunc (or DeclareStream).
type StreamFunction[In, Out any] struct {
	name string
	fn   func(context.Context, In, func(Out) error) error
	fi   FuncInfo
}

// StreamFunc registers a streaming function under name. fn calls yield once
// per result; yield blocks while the caller is behind (flow control) and
// returns an error once the caller has gone or cancelled, which fn should
// return. The rules of Func apply to name, In and Out.
func StreamFunc[In, Out any](name string, fn func(ctx context.Context, in In, yield func(Out) error) error) *StreamFunction[In, Out] {
	if fn == nil {
		panic(fmt.Sprintf("remote: function %q: nil func", name))
	}
	f := DeclareStream[In, Out](name)
	f.fn = fn
	register(name, f)
	return f
}

// DeclareStream is Declare for a streaming function.
func DeclareStream[In, Out any](name string) *StreamFunction[In, Out] {
	if err := checkName(name); err != nil {
		panic("remote: " + err.Error())
	}
	in, out := mustCarry[In](name, "input"), mustCarry[Out](name, "output")
	return &StreamFunction[In, Out]{name: name, fi: FuncInfo{Name: name, In: describe(in), Out: describe(out), Stream: true}}
}

// Name returns the name the function is registered under.
func (f *StreamFunction[In, Out]) Name() string { return f.name }

func (f *StreamFunction[In, Out]) info() FuncInfo { return f.fi }

func (f *StreamFunction[In, Out]) run(ctx context.Context, raw []byte, emit func([]byte) error) error {
	in, err := decodeInput[In](raw)
	if err != nil {
		return err
	}
	yield := func(v Out) error {
		b, err := wire.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode result: %w", err)
		}
		return emit(b)
	}
	return protect(func() error { return f.fn(ctx, in, yield) })
}
