package guest

import (
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
)

// readSize is how much one read from the host asks for.
const readSize = 64 << 10

// Space is a space, named OWNER/NAME, as the run's capability grants it.
// It is only a name: guest.Space("alice/notes").Get("todo") reads a key.
type Space string

// Get returns the value of key. A key that is not there is ErrNotFound; a
// space or key the run was not granted for reading is ErrDenied.
func (s Space) Get(key string) ([]byte, error) {
	h, err := spaceGet(string(s), key)
	if err != nil {
		return nil, err
	}
	return readAll(&stream{h: h})
}

// Open returns the value of key as a stream, read from the host 64 KiB at
// a time: for a value too big to hold whole. Close it when done; a run
// has at most 64 streams open at once.
func (s Space) Open(key string) (io.ReadCloser, error) {
	h, err := spaceGet(string(s), key)
	if err != nil {
		return nil, err
	}
	return &stream{h: h}, nil
}

// Put sets key to value, and returns once the space's home has applied
// the write. It needs a grant to write the space.
func (s Space) Put(key string, value []byte) error {
	return spacePut(string(s), key, value)
}

// Delete removes key. It needs a grant to write the space.
func (s Space) Delete(key string) error {
	return spaceDelete(string(s), key)
}

// List returns the keys under prefix, sorted. It needs a grant to read
// the space, for a prefix within the granted one.
func (s Space) List(prefix string) ([]string, error) {
	h, err := spaceList(string(s), prefix)
	if err != nil {
		return nil, err
	}
	b, err := readAll(&stream{h: h})
	if err != nil {
		return nil, err
	}
	return decodeList(b)
}

// decodeList splits what space_list streams: each key as a 4-byte
// little-endian length and then its bytes.
func decodeList(b []byte) ([]string, error) {
	var keys []string
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, &Error{Code: CodeFailed, Op: "space_list", Message: "the host's listing ends inside a key's length"}
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, &Error{Code: CodeFailed, Op: "space_list", Message: "the host's listing ends inside a key"}
		}
		keys = append(keys, string(b[:n]))
		b = b[n:]
	}
	return keys, nil
}

// Open opens content by CID, or by CID/path in a directory, for reading.
// Content never changes, so every run may read it. Close the stream when
// done.
func Open(path string) (io.ReadCloser, error) {
	h, err := open(path)
	if err != nil {
		return nil, err
	}
	return &stream{h: h}, nil
}

// Add adds data as a file to the running node's store and returns its CID
// (CIDv1, as text).
func Add(data []byte) (string, error) {
	return add(data)
}

// Call runs a service or a pipeline (a name, name@version, a descriptor
// CID, or stages joined by "|") on in and returns its output. The run's
// capability must allow the service by the reference given; the nested
// run shares this run's time, depth and credit.
func Call(ref string, in []byte) ([]byte, error) {
	h, err := call(ref, in)
	if err != nil {
		return nil, err
	}
	return readAll(&stream{h: h})
}

// Log adds one line, formatted as by fmt.Sprintf, to the caller's run
// record. The host keeps at most 4 KiB of a line. Outside a nube module it
// writes the line to standard error.
func Log(format string, args ...any) {
	hostLog(fmt.Sprintf(format, args...))
}

// stream reads a handle's bytes from the host.
type stream struct {
	h      int32
	buf    []byte // read from the host, not yet returned
	back   []byte // buf's array, readSize long once needed
	eof    bool
	closed bool
}

func (s *stream) Read(p []byte) (int, error) {
	if s.closed {
		return 0, fs.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(s.buf) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		if len(p) >= readSize {
			// Big enough to read into directly.
			n, err := read(s.h, p[:readSize])
			if n == 0 && err == nil {
				s.eof = true
				return 0, io.EOF
			}
			return n, err
		}
		// A small read (bufio's 4 KiB, say) still asks the host for
		// 64 KiB, so reading a value costs few calls to the host.
		if s.back == nil {
			s.back = make([]byte, readSize)
		}
		n, err := read(s.h, s.back)
		s.buf = s.back[:n]
		if err != nil {
			return 0, err
		}
		if n == 0 {
			s.eof = true
			return 0, io.EOF
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *stream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.buf, s.back = nil, nil
	return closeHandle(s.h)
}

// readAll reads r to its end and closes it. It starts small and grows as
// append does, reading straight into the spare room (at most 64 KiB a
// read): a 1 KiB value costs one 4 KiB allocation, not a zeroed 64 KiB
// one, which in a module's heap costs more than the host's read.
func readAll(s *stream) ([]byte, error) {
	// One allocation of the right size when the host says the size (and
	// a byte more, to read the end without growing).
	c, want := 4<<10, -1
	if n := size(s.h); n >= 0 && n < 1<<30 {
		c, want = int(n)+1, int(n)
	}
	b := make([]byte, 0, c)
	for len(b) != want {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := read(s.h, b[len(b):min(cap(b), len(b)+readSize)])
		b = b[:len(b)+n]
		if err != nil {
			s.Close()
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	return b, s.Close()
}
