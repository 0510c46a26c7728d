package wasm

import "github.com/tetratelabs/wazero/experimental"

// linearMemory backs one instance's linear memory and enforces the memory
// limit of the run in progress. wazero calls Reallocate when the module
// grows its memory; returning nil makes memory.grow fail, which the module
// sees as out of memory.
type linearMemory struct {
	buf      []byte
	max      uint64 // the module's own declared maximum
	limit    uint64 // the current run's limit
	peak     uint64 // largest size during the current run
	exceeded bool   // a growth was refused during the current run
}

func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit || size > m.max {
		m.exceeded = true
		if m.buf == nil {
			// wazero cannot take nil for the initial allocation. Runs
			// check the module's minimum against the limit before they
			// instantiate, so this is never reached with a large size.
			m.buf = make([]byte, size)
		}
		return nil
	}
	m.peak = max(m.peak, size)
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Grow by doubling, never past the limit: the module grows a page or
	// a few at a time, and copying on every step would be quadratic.
	c := min(max(size, 2*uint64(cap(m.buf))), max(m.limit, size))
	nb := make([]byte, size, c)
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *linearMemory) Free() { m.buf = nil }

func (m *linearMemory) size() uint64 { return uint64(len(m.buf)) }

// startRun sets the limit for the next run and resets its counters.
func (m *linearMemory) startRun(limit uint64) {
	m.limit = limit
	m.peak = m.size()
	m.exceeded = false
}

// allocator hands wazero one linearMemory, the one the caller made for the
// instance about to be created.
type allocator struct{ mem *linearMemory }

func (a allocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mem.max = max
	return a.mem
}
