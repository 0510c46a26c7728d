package wasm

// Running reports how many runs of m are under way, for tests.
func (m *Module) Running() int32 { return m.running.Load() }
