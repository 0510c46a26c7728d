package wasm_test

import (
	"context"
	"testing"

	"github.com/nubecloud/nube/wasm"
)

// BenchmarkRun runs a trivial module (echo 16 bytes) warm, already
// compiled: a command starts a fresh instance each run, a reactor reuses
// the owner's instance.
func BenchmarkRun(b *testing.B) {
	rt := newRuntime(b, wasm.Config{})
	in := []byte("sixteen bytes!!\n")
	for _, mod := range []string{"echo", "tally"} {
		m := load(b, rt, mod)
		b.Run(m.Kind().String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Run(context.Background(), wasm.Job{Input: in, Owner: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
