package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube/content"
)

// fakeMem is a module's linear memory, bounds-checked as wasm's is.
type fakeMem []byte

func (m fakeMem) Read(ptr, n uint32) ([]byte, bool) {
	end := uint64(ptr) + uint64(n)
	if end > uint64(len(m)) {
		return nil, false
	}
	return m[ptr:end], true
}

func (m fakeMem) Write(ptr uint32, b []byte) bool {
	end := uint64(ptr) + uint64(len(b))
	if end > uint64(len(m)) {
		return false
	}
	copy(m[ptr:], b)
	return true
}

// fakeContent adds nothing and has nothing.
type fakeContent struct{}

func (fakeContent) Add(_ context.Context, r io.Reader, _ content.AddOptions) (cid.Cid, error) {
	io.Copy(io.Discard, r)
	return cid.Parse("bafkqaaa")
}
func (fakeContent) Get(context.Context, string) (content.File, error) {
	return nil, content.ErrNotFound
}
func (fakeContent) Stat(context.Context, string) (content.Entry, error) {
	return content.Entry{}, content.ErrNotFound
}
func (fakeContent) Pin(context.Context, cid.Cid, string, func(content.FetchProgress)) error {
	return errors.New("no")
}

// FuzzHostCall calls every host function with arguments and memory from
// the fuzzer, as a hostile module would: no call may panic, read or
// write outside memory, or answer anything but a count, a handle or one
// of the API's error codes.
func FuzzHostCall(f *testing.F) {
	f.Add(uint8(0), []byte("hello"), uint32(0), uint32(5), uint32(8), uint32(4), uint32(0), uint32(0))
	f.Add(uint8(3), []byte("bafkqaaa"), uint32(0), uint32(8), uint32(0), uint32(0), uint32(0), uint32(0))
	f.Add(uint8(5), []byte("a/b\x00key"), uint32(0), uint32(3), uint32(4), uint32(3), uint32(0), uint32(0))
	f.Add(uint8(2), []byte{}, uint32(0xffffffff), uint32(0xffffffff), uint32(1), uint32(2), uint32(3), uint32(4))
	m := &Manager{cfg: Config{Content: fakeContent{}}}
	f.Fuzz(func(t *testing.T, which uint8, memory []byte, a, b, c, d, e, g uint32) {
		if len(memory) > 1<<16 {
			return
		}
		call := hostCalls[int(which)%len(hostCalls)]
		mem := fakeMem(bytes.Clone(memory))
		h := m.newHost(nil, which%2 == 0, 0)
		defer h.close()
		h.files[1] = &stream{ReadCloser: io.NopCloser(bytes.NewReader(memory)), left: int64(len(memory))} // a handle to read and close
		st := []uint64{uint64(a), uint64(b), uint64(c), uint64(d), uint64(e), uint64(g)}
		r := call.f(context.Background(), h, mem, st[:max(call.params, 1)])
		if r < eFailed {
			t.Fatalf("%s answered %d, no code of the API", call.name, r)
		}
		if len(h.files) > maxHandles+1 {
			t.Fatalf("%s left %d handles open", call.name, len(h.files))
		}
	})
}
