//go:build !linux && !darwin

package wasm

import "time"

// threadCPU is not available here; runs then report their wall time as
// CPU time, which is an upper bound on a single thread.
func threadCPU() (time.Duration, bool) { return 0, false }
