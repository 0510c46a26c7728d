package wasm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// ValueType is the type of a host function's parameter or result: I32 or
// I64. (Modules pass pointers and lengths as I32: wasm32.)
type ValueType byte

// The value types a host function may take and return. Their values are
// WebAssembly's own encodings.
const (
	I32 = ValueType(api.ValueTypeI32)
	I64 = ValueType(api.ValueTypeI64)
)

func (t ValueType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	}
	return fmt.Sprintf("ValueType(%#x)", byte(t))
}

// HostFunc is a function the runtime offers modules under an import
// module's name (Config.Host).
type HostFunc struct {
	Name    string
	Params  []ValueType // I32 or I64
	Results []ValueType
	// Fn runs on the module's goroutine. stack holds the params on entry
	// and the results on return (wazero's convention: an I32 is the low
	// 32 bits of its slot, see api.DecodeU32 and api.EncodeU32). mem is
	// the calling instance's linear memory, valid only during the call.
	//
	// ctx is the run's: HostValue(ctx) is its Job.Host, and ctx ends
	// when the run's time is up, the caller's context ends or the
	// runtime closes. An Fn that blocks must return when ctx ends; the
	// run then fails (ErrTimeout at the deadline) whatever Fn returned.
	// The time an Fn takes counts in the run's Usage.Wall.
	Fn func(ctx context.Context, mem Memory, stack []uint64)
}

// Memory reads and writes a module's linear memory with bounds checks.
type Memory interface {
	// Read returns n bytes at ptr: a view of the module's memory, valid
	// during the call (copy what you keep), and false if any of them is
	// out of range.
	Read(ptr, n uint32) ([]byte, bool)
	// Write copies b to ptr and reports whether it fit; it writes
	// nothing if it did not.
	Write(ptr uint32, b []byte) bool
}

// hostKey is the context key of Job.Host.
type hostKey struct{}

// HostValue returns the Job.Host of the run that ctx, the context a
// HostFunc is given, belongs to: what the caller of Run wants its host
// functions to see for this run alone.
func HostValue(ctx context.Context) any { return ctx.Value(hostKey{}) }

// signature formats a function type for messages: "(i32, i32) -> i64".
func signature(params, results []api.ValueType) string {
	list := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + list(params) + ") -> (" + list(results) + ")"
}

func valueTypes(ts []ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}

// validateHost reports what is wrong in Config.Host, naming it.
func validateHost(host map[string][]HostFunc) error {
	for mod, fns := range host {
		if mod == "" {
			return errors.New("wasm: Config.Host has an import module with no name")
		}
		if mod == wasiModule {
			return fmt.Errorf("wasm: Config.Host has a module named %s, which is WASI's", mod)
		}
		seen := map[string]bool{}
		for _, f := range fns {
			switch {
			case f.Name == "":
				return fmt.Errorf("wasm: Config.Host[%q] has a function with no name", mod)
			case seen[f.Name]:
				return fmt.Errorf("wasm: Config.Host[%q] has two functions named %s", mod, f.Name)
			case f.Fn == nil:
				return fmt.Errorf("wasm: Config.Host[%q] function %s has no Fn", mod, f.Name)
			}
			seen[f.Name] = true
			for _, t := range append(append([]ValueType(nil), f.Params...), f.Results...) {
				if t != I32 && t != I64 {
					return fmt.Errorf("wasm: Config.Host[%q] function %s has a value of type %v: want I32 or I64", mod, f.Name, t)
				}
			}
		}
	}
	return nil
}

// hostSig is the type of a function a host module provides, as the
// compile check compares it with a module's import.
type hostSig struct{ params, results []api.ValueType }

func (s hostSig) matches(params, results []api.ValueType) bool {
	return string(s.params) == string(params) && string(s.results) == string(results)
}

// instantiateHost instantiates every host module of the config in r.rt
// and records their functions' types for the compile check.
func (r *Runtime) instantiateHost(ctx context.Context) error {
	r.host = map[string]map[string]hostSig{}
	for mod, fns := range r.cfg.Host {
		b := r.rt.NewHostModuleBuilder(mod)
		sigs := map[string]hostSig{}
		for _, f := range fns {
			sig := hostSig{valueTypes(f.Params), valueTypes(f.Results)}
			sigs[f.Name] = sig
			b.NewFunctionBuilder().
				WithGoModuleFunction(hostCall(f.Fn), sig.params, sig.results).
				WithName(f.Name).
				Export(f.Name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("host module %s: %w", mod, err)
		}
		r.host[mod] = sigs
	}
	return nil
}

// hostCall adapts fn to wazero. A call during which the run's context
// ended fails the run: the module does not go on with what a cut-off
// call returned.
func hostCall(fn func(context.Context, Memory, []uint64)) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fn(ctx, mod.Memory(), stack)
		if err := ctx.Err(); err != nil {
			code := sys.ExitCodeContextCanceled
			if errors.Is(err, context.DeadlineExceeded) {
				code = sys.ExitCodeDeadlineExceeded
			}
			panic(sys.NewExitError(code))
		}
	}
}

// checkImport refuses an import the runtime does not provide, or
// provides with another type.
func (r *Runtime) checkImport(f api.FunctionDefinition) error {
	mod, name, _ := f.Import()
	if mod == wasiModule {
		if r.wasi[name] {
			return nil
		}
	} else if sig, ok := r.host[mod][name]; ok {
		if sig.matches(f.ParamTypes(), f.ResultTypes()) {
			return nil
		}
		return fmt.Errorf("%w: it imports %s.%s as %s, but this node provides %s",
			ErrInvalidModule, mod, name, signature(f.ParamTypes(), f.ResultTypes()), signature(sig.params, sig.results))
	}
	return fmt.Errorf("%w: it imports %s.%s, which this node does not provide", ErrInvalidModule, mod, name)
}
