// Package wire is the framing every nube protocol speaks on a libp2p stream.
//
// A protocol is named /nube/<name>/<major> (see Protocol). On the stream,
// each message is one frame: an unsigned varint length followed by that many
// bytes of CBOR. Every frame has a hard size cap that is checked before any
// payload byte is read, so a peer can never make us allocate more than the
// cap, and every read and write has a deadline, so a silent peer can never
// hold a goroutine forever.
//
// Decoding never panics: a frame that is too large, truncated or not valid
// CBOR for the target type returns an error that says which, and that error
// wraps ErrFrameTooLarge or ErrMalformed so callers can tell them apart.
package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// DefaultMaxFrame is the frame size cap used when a Stream is given none:
// 1 MiB, enough for any control message. Protocols that carry bulk data set
// their own cap with WithMaxFrame.
const DefaultMaxFrame = 1 << 20

// DefaultTimeout bounds each Send and Recv whose context has no earlier
// deadline.
const DefaultTimeout = 30 * time.Second

// maxHeader is the longest uvarint header we accept. A frame can never be
// larger than 2^56 bytes, so eight bytes of header are plenty; a longer one
// is malformed, not just large.
const maxHeader = 8

var (
	// ErrFrameTooLarge reports a frame whose declared or encoded length is
	// over the cap. The stream is unusable afterwards: the unread payload is
	// still on it.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMalformed reports a frame that is not what the protocol allows:
	// a bad length header, a truncated payload, or bytes that do not decode
	// into the expected type.
	ErrMalformed = errors.New("malformed frame")
)

// Protocol returns the libp2p protocol ID of a nube protocol:
// "/nube/<name>/<major>". Bump major only for changes that old peers cannot
// understand.
func Protocol(name string, major int) protocol.ID {
	return protocol.ID("/nube/" + name + "/" + strconv.Itoa(major))
}

// encMode is deterministic (core deterministic encoding, RFC 8949 4.2.1),
// so that the same value always gives the same bytes: signatures over
// encoded records depend on it.
var encMode = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options: cannot fail
	}
	return m
}()

// decMode bounds what a hostile frame can make the decoder build: nesting
// depth, array and map sizes are capped well below what fits in a frame's
// bytes, duplicate map keys are refused and unknown fields are ignored so
// that newer peers can add fields.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsAllowed,
	}.DecMode()
	if err != nil {
		panic(err) // static options: cannot fail
	}
	return m
}()

// Marshal encodes v as deterministic CBOR.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes one CBOR value from data into v. Trailing bytes, bad
// CBOR and type mismatches are errors wrapping ErrMalformed.
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrMalformed, v, err)
	}
	return nil
}

// AppendFrame appends payload to dst behind its uvarint length header.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

// ReadFrame reads one frame from r and returns its payload. It reads the
// header first and refuses a declared length over max before reading or
// allocating anything for the payload. A clean end of stream before the
// first header byte returns io.EOF; an end anywhere later is ErrMalformed.
func ReadFrame(r io.ByteReader, max int) ([]byte, error) {
	n, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: length %d exceeds limit %d", ErrFrameTooLarge, n, max)
	}
	buf := make([]byte, n)
	if rd, ok := r.(io.Reader); ok {
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, fmt.Errorf("%w: payload truncated after header (want %d bytes): %v", ErrMalformed, n, err)
		}
		return buf, nil
	}
	for i := range buf {
		if buf[i], err = r.ReadByte(); err != nil {
			return nil, fmt.Errorf("%w: payload truncated at byte %d of %d: %v", ErrMalformed, i, n, err)
		}
	}
	return buf, nil
}

func readHeader(r io.ByteReader) (uint64, error) {
	var n uint64
	for i := 0; i < maxHeader; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if i == 0 {
				return 0, err
			}
			return 0, fmt.Errorf("%w: length header truncated: %v", ErrMalformed, err)
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, fmt.Errorf("%w: length header not minimally encoded", ErrMalformed)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w: length header longer than %d bytes", ErrMalformed, maxHeader)
}

// DecodeFrame reads one frame from r and decodes it into v. It is the whole
// decoding path a peer's bytes take, and so the one the fuzz target drives.
func DecodeFrame(r io.ByteReader, max int, v any) error {
	b, err := ReadFrame(r, max)
	if err != nil {
		return err
	}
	return Unmarshal(b, v)
}

// Conn is the part of a libp2p stream (or any connection) that Stream needs.
// network.Stream satisfies it.
type Conn interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Stream sends and receives framed CBOR messages on a connection. It is not
// safe for concurrent Sends or concurrent Recvs, but one goroutine may Send
// while another Recvs. Closing or resetting the underlying stream is the
// caller's job.
type Stream struct {
	c       Conn
	r       *bufio.Reader
	max     int
	timeout time.Duration
	wbuf    []byte
	rbuf    []byte
	// The deadlines last set on c, so that a busy stream need not set one
	// per message (setting one costs a timer in yamux and QUIC).
	rdl, wdl time.Time
}

// Option configures a Stream.
type Option func(*Stream)

// WithMaxFrame sets the frame size cap for both directions. n <= 0 means
// DefaultMaxFrame.
func WithMaxFrame(n int) Option {
	return func(s *Stream) {
		if n > 0 {
			s.max = n
		}
	}
}

// WithTimeout sets the deadline applied to each Send and Recv whose context
// has no earlier one. d <= 0 means DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(s *Stream) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// NewStream wraps c for framed messaging.
func NewStream(c Conn, opts ...Option) *Stream {
	s := &Stream{c: c, r: bufio.NewReader(c), max: DefaultMaxFrame, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// MaxFrame returns the stream's frame size cap.
func (s *Stream) MaxFrame() int { return s.max }

// Send encodes v and writes it as one frame. It returns an error wrapping
// ErrFrameTooLarge, without writing anything, if the encoding is over the
// cap. It gives up when ctx ends or the deadline passes; the stream must not
// be used after such an error.
func (s *Stream) Send(ctx context.Context, v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > s.max {
		return fmt.Errorf("send %T: %w: %d bytes exceeds limit %d", v, ErrFrameTooLarge, len(b), s.max)
	}
	s.wbuf = AppendFrame(s.wbuf[:0], b)
	stop := s.deadline(ctx, &s.wdl, s.c.SetWriteDeadline)
	_, err = s.c.Write(s.wbuf)
	if cap(s.wbuf) > 64<<10 {
		s.wbuf = nil // do not pin a large buffer for the stream's life
	}
	if err = stop(err); err != nil {
		return fmt.Errorf("send %T: %w", v, err)
	}
	return nil
}

// Recv reads one frame and decodes it into v. At a clean end of stream it
// returns io.EOF. It gives up when ctx ends or the deadline passes.
func (s *Stream) Recv(ctx context.Context, v any) error {
	stop := s.deadline(ctx, &s.rdl, s.c.SetReadDeadline)
	err := stop(s.decode(v))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("recv %T: %w", v, err)
	}
	return err
}

// decode reads one frame into the stream's reusable buffer and decodes it
// (the decoder copies what it keeps, so the buffer can be reused).
func (s *Stream) decode(v any) error {
	n, err := readHeader(s.r)
	if err != nil {
		return err
	}
	if n > uint64(s.max) {
		return fmt.Errorf("%w: length %d exceeds limit %d", ErrFrameTooLarge, n, s.max)
	}
	if uint64(cap(s.rbuf)) < n {
		s.rbuf = make([]byte, n)
	}
	buf := s.rbuf[:n]
	if cap(s.rbuf) > 64<<10 {
		s.rbuf = nil // do not pin a large buffer for the stream's life
	}
	if _, err := io.ReadFull(s.r, buf); err != nil {
		return fmt.Errorf("%w: payload truncated after header (want %d bytes): %v", ErrMalformed, n, err)
	}
	return Unmarshal(buf, v)
}

// deadline sets the I/O deadline for one operation: the earlier of ctx's
// deadline and the stream's timeout, and now if ctx is cancelled meanwhile.
// A deadline that came from the timeout is re-armed only once less than
// half the timeout is left, so each operation gets between half and all of
// it and a busy stream does not pay for a new timer per message. The
// returned func undoes the cancellation hook and turns the I/O error into
// ctx's error when ctx is what ended it.
func (s *Stream) deadline(ctx context.Context, cur *time.Time, set func(time.Time) error) func(error) error {
	now := time.Now()
	d := now.Add(s.timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		if !cd.Equal(*cur) {
			_ = set(cd) // not every Conn supports deadlines; the ctx hook still works
			*cur = cd
		}
	} else if cur.Before(now.Add(s.timeout/2)) || cur.After(d) {
		_ = set(d)
		*cur = d
	}
	if ctx.Done() == nil { // never cancelled: no hook needed
		return func(err error) error { return err }
	}
	unhook := context.AfterFunc(ctx, func() { _ = set(time.Now()) })
	return func(err error) error {
		if !unhook() {
			// The hook ran: the deadline on c is now in the past, so the
			// next operation must re-arm it.
			*cur = time.Time{}
		}
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return err
	}
}
