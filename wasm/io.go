package wasm

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

var errOutputLimit = errors.New("output limit reached")

// outputBuffer collects a run's stdout up to its limit. Passing the limit
// stops the run (through stop) rather than letting the module go on
// writing into a void.
type outputBuffer struct {
	buf   bytes.Buffer
	limit int64
	over  bool
	stop  func()
}

func (o *outputBuffer) Write(p []byte) (int, error) {
	if o.over || int64(o.buf.Len())+int64(len(p)) > o.limit {
		o.over = true
		o.stop()
		return 0, errOutputLimit
	}
	return o.buf.Write(p)
}

// stderrLimit is how much of a module's stderr is kept for error messages.
const stderrLimit = 4 << 10

// headBuffer keeps the first stderrLimit bytes written to it and drops
// the rest.
type headBuffer struct{ buf bytes.Buffer }

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := stderrLimit - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	return strings.TrimSpace(strings.ToValidUTF8(h.buf.String(), "?"))
}

// swapReader and swapWriter let a reactor instance, whose stdio is fixed
// when it is created, read and write each run's own buffers.
type swapReader struct{ r io.Reader }

func (s *swapReader) Read(p []byte) (int, error) {
	if s.r == nil {
		return 0, io.EOF
	}
	return s.r.Read(p)
}

type swapWriter struct{ w io.Writer }

func (s *swapWriter) Write(p []byte) (int, error) {
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}
