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
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
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

// zeroHeader is the room Send reserves for a frame header.
var zeroHeader [maxHeader]byte

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
var encMode = func() cbor.UserBufferEncMode {
	m, err := cbor.CoreDetEncOptions().UserBufferEncMode()
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
	max     int // cap on frames received
	maxSend int // cap on frames sent
	timeout time.Duration
	// untimedRecv leaves Recv bounded by its context alone.
	untimedRecv bool
	wbuf        bytes.Buffer
	rbuf        []byte
	// Watchdogs enforce the timeout of reads and writes. Nothing sets a
	// deadline on c unless an operation really stalls: quic-go arms a
	// timer on every blocking read while a deadline is set, which alone
	// cost QUIC round trips about 5%.
	rdog, wdog watchdog
}

// Option configures a Stream.
type Option func(*Stream)

// WithMaxFrame sets the frame size cap for both directions. n <= 0 means
// DefaultMaxFrame.
func WithMaxFrame(n int) Option {
	return func(s *Stream) {
		if n > 0 {
			s.max, s.maxSend = n, n
		}
	}
}

// WithMaxSend sets the cap on frames sent, apart from the cap on frames
// received: a server that takes small requests but sends large replies
// sets WithMaxFrame to the request cap and WithMaxSend to the reply cap.
// Place it after WithMaxFrame. n <= 0 leaves the cap as it was.
func WithMaxSend(n int) Option {
	return func(s *Stream) {
		if n > 0 {
			s.maxSend = n
		}
	}
}

// WithoutRecvTimeout lets Recv wait for as long as its context allows, for
// protocols where a quiet peer is normal (waiting for the result of a long
// computation). A dead peer still ends the wait when its connection closes.
// Sends keep their timeout.
func WithoutRecvTimeout() Option {
	return func(s *Stream) { s.untimedRecv = true }
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
	s := &Stream{c: c, r: bufio.NewReader(c), max: DefaultMaxFrame, maxSend: DefaultMaxFrame, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	s.rdog = watchdog{timeout: s.timeout, expire: func() { _ = c.SetReadDeadline(time.Now()) }}
	s.wdog = watchdog{timeout: s.timeout, expire: func() { _ = c.SetWriteDeadline(time.Now()) }}
	return s
}

// MaxFrame returns the stream's cap on frames received.
func (s *Stream) MaxFrame() int { return s.max }

// SetMaxFrame changes the cap on frames received and sent from the next
// frame on: a protocol raises it once the peer has shown who it is, so that
// a stranger can never make it allocate more than the small first cap.
func (s *Stream) SetMaxFrame(n int) { s.max, s.maxSend = n, n }

// Send encodes v and writes it as one frame. It returns an error wrapping
// ErrFrameTooLarge, without writing anything, if the encoding is over the
// cap. It gives up when ctx ends or the deadline passes; the stream must not
// be used after such an error.
func (s *Stream) Send(ctx context.Context, v any) error {
	// Encode behind room for the longest header, then put the header
	// right before the payload: one buffer, one write, no copy.
	s.wbuf.Reset()
	s.wbuf.Write(zeroHeader[:])
	if err := encMode.MarshalToBuffer(v, &s.wbuf); err != nil {
		return fmt.Errorf("send %T: encode: %w", v, err)
	}
	frame := s.wbuf.Bytes()
	n := len(frame) - maxHeader
	if n > s.maxSend {
		return fmt.Errorf("send %T: %w: %d bytes exceeds limit %d", v, ErrFrameTooLarge, n, s.maxSend)
	}
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(n))
	start := maxHeader - h
	copy(frame[start:], hdr[:h])
	g := s.guard(ctx, &s.wdog)
	_, err := s.c.Write(frame[start:])
	if s.wbuf.Cap() > 64<<10 {
		s.wbuf = bytes.Buffer{} // do not pin a large buffer for the stream's life
	}
	if err = g.done(err); err != nil {
		return fmt.Errorf("send %T: %w", v, err)
	}
	return nil
}

// Recv reads one frame and decodes it into v. At a clean end of stream it
// returns io.EOF. It gives up when ctx ends or the deadline passes.
func (s *Stream) Recv(ctx context.Context, v any) error {
	dog := &s.rdog
	if s.untimedRecv {
		dog = nil
	}
	g := s.guard(ctx, dog)
	err := g.done(s.decode(v))
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

// guard bounds one operation: the watchdog stops it after the stream's
// timeout, and a hook on ctx stops it as soon as ctx is cancelled or its
// deadline passes. Call done when the operation returns.
func (s *Stream) guard(ctx context.Context, dog *watchdog) guard {
	if dog == nil { // untimed: only ctx can stop the operation
		g := guard{ctx: ctx}
		if ctx.Done() != nil {
			g.unhook = context.AfterFunc(ctx, func() { _ = s.c.SetReadDeadline(time.Now()) })
		}
		return g
	}
	dog.begin()
	g := guard{ctx: ctx, dog: dog}
	if ctx.Done() != nil { // a context that can never end needs no hook
		g.unhook = context.AfterFunc(ctx, dog.expire)
	}
	return g
}

type guard struct {
	ctx    context.Context
	dog    *watchdog
	unhook func() bool
}

// done ends the guard and turns the operation's error into ctx's error
// when ctx is what ended it.
func (g guard) done(err error) error {
	if g.dog != nil {
		g.dog.end()
	}
	if g.unhook != nil {
		g.unhook()
	}
	if err != nil && g.ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", g.ctx.Err(), err)
	}
	return err
}

// watchdog stops an operation that makes no progress for its timeout by
// setting the connection's deadline to now (expire). Its one timer is armed
// at most once per timeout period, not once per operation; when it fires it
// checks the operation under way and, if that one has time left, re-arms
// for exactly that time. An expired stream stays expired: after a timeout
// the stream must not be used again.
type watchdog struct {
	timeout time.Duration
	expire  func()

	mu    sync.Mutex
	timer *time.Timer
	armed bool
	busy  bool
	start time.Time
}

func (w *watchdog) begin() {
	w.mu.Lock()
	w.busy = true
	w.start = time.Now()
	if !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.timeout, w.fire)
		} else {
			w.timer.Reset(w.timeout)
		}
	}
	w.mu.Unlock()
}

func (w *watchdog) end() {
	w.mu.Lock()
	w.busy = false
	w.mu.Unlock()
}

func (w *watchdog) fire() {
	w.mu.Lock()
	if !w.busy {
		w.armed = false // idle: the next operation re-arms
		w.mu.Unlock()
		return
	}
	if left := w.timeout - time.Since(w.start); left > 0 {
		w.timer.Reset(left)
		w.mu.Unlock()
		return
	}
	w.armed = false
	w.mu.Unlock()
	w.expire()
}
