package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

type msg struct {
	Kind string `cbor:"1,keyasint"`
	N    int    `cbor:"2,keyasint"`
	Data []byte `cbor:"3,keyasint,omitempty"`
}

func TestProtocol(t *testing.T) {
	if got := Protocol("ping", 1); got != "/nube/ping/1" {
		t.Fatalf("Protocol = %q", got)
	}
}

func TestStreamRoundTrip(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sa, sb := NewStream(a), NewStream(b)
	ctx := context.Background()
	want := msg{Kind: "hello", N: 42, Data: bytes.Repeat([]byte{7}, 1000)}
	errc := make(chan error, 1)
	go func() { errc <- sa.Send(ctx, want) }()
	var got msg
	if err := sb.Recv(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got.Kind != want.Kind || got.N != want.N || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	a.Close()
	if err := sb.Recv(ctx, &got); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv after close = %v, want io.EOF", err)
	}
}

func TestMarshalDeterministic(t *testing.T) {
	m := map[string]int{"b": 2, "a": 1, "c": 3}
	x, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		y, _ := Marshal(m)
		if !bytes.Equal(x, y) {
			t.Fatal("encoding of the same map differs between calls")
		}
	}
}

func frame(payload []byte) []byte { return AppendFrame(nil, payload) }

func TestDecodeFrameErrors(t *testing.T) {
	good, _ := Marshal(msg{Kind: "x"})
	huge := binary.AppendUvarint(nil, 1<<40)
	cases := []struct {
		name  string
		in    []byte
		max   int
		want  error
		words string
	}{
		{"over cap", frame(make([]byte, 101)), 100, ErrFrameTooLarge, "exceeds limit 100"},
		{"huge header", huge, DefaultMaxFrame, ErrFrameTooLarge, "exceeds limit"},
		{"truncated payload", frame(good)[:len(good)-1], 100, ErrMalformed, "truncated"},
		{"truncated header", []byte{0x80}, 100, ErrMalformed, "header truncated"},
		{"overlong header", bytes.Repeat([]byte{0xff}, 9), 100, ErrMalformed, "longer than"},
		{"non-minimal header", []byte{0x81, 0x00, 0x00}, 100, ErrMalformed, "minimally"},
		{"not cbor", frame([]byte{0xff, 0xfe}), 100, ErrMalformed, "decode"},
		{"wrong type", frame([]byte{0x01}), 100, ErrMalformed, "decode"},
		{"trailing bytes", frame(append(append([]byte{}, good...), 0x01)), 100, ErrMalformed, "decode"},
		{"indefinite length", frame([]byte{0x9f, 0x01, 0xff}), 100, ErrMalformed, "decode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m msg
			err := DecodeFrame(bufio.NewReader(bytes.NewReader(tc.in)), tc.max, &m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("err %q does not say %q", err, tc.words)
			}
		})
	}
}

func TestDecodeRefusesDeepNesting(t *testing.T) {
	deep := bytes.Repeat([]byte{0x81}, 100) // 100 nested one-element arrays
	deep = append(deep, 0x00)
	var v any
	if err := Unmarshal(deep, &v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestSendRefusesOversized(t *testing.T) {
	var buf bytes.Buffer
	s := NewStream(nopDeadline{&buf}, WithMaxFrame(16))
	err := s.Send(context.Background(), msg{Data: make([]byte, 64)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("err = %v, want ErrFrameTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes of a refused frame", buf.Len())
	}
}

type nopDeadline struct{ io.ReadWriter }

func (nopDeadline) SetReadDeadline(time.Time) error  { return nil }
func (nopDeadline) SetWriteDeadline(time.Time) error { return nil }

func TestRecvCancelled(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := NewStream(b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		var m msg
		errc <- s.Recv(ctx, &m)
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after cancel = %v, want context.Canceled", err)
	}
}

func TestRecvDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := NewStream(b, WithTimeout(time.Millisecond))
	var m msg
	err := s.Recv(context.Background(), &m)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Recv from a silent peer = %v, want a timeout", err)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the decoder a peer's frames go
// through. It must never panic, never return a payload over the cap, and
// anything it accepts must re-encode to a frame it accepts again.
func FuzzDecodeFrame(f *testing.F) {
	good, _ := Marshal(msg{Kind: "seed", N: 1, Data: []byte("abc")})
	f.Add(frame(good))
	f.Add([]byte{0x80})
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	f.Add(frame([]byte{0x9f, 0x01, 0xff}))
	f.Add(frame(bytes.Repeat([]byte{0x81}, 50)))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		r := bufio.NewReader(bytes.NewReader(in))
		p, err := ReadFrame(r, max)
		if err != nil {
			return
		}
		if len(p) > max {
			t.Fatalf("payload of %d bytes over cap %d", len(p), max)
		}
		var m msg
		if DecodeFrame(bufio.NewReader(bytes.NewReader(in)), max, &m) != nil {
			return
		}
		again, err := Marshal(m)
		if err != nil {
			t.Fatalf("accepted value does not re-encode: %v", err)
		}
		var m2 msg
		if err := DecodeFrame(bufio.NewReader(bytes.NewReader(frame(again))), max, &m2); err != nil {
			t.Fatalf("re-encoded frame refused: %v", err)
		}
	})
}

// TestTimeoutIsPerOperation: the timeout bounds each operation, not the
// stream's life. A stream kept busy for longer than its timeout, with every
// message well within it, must not be cut off by the watchdog.
func TestTimeoutIsPerOperation(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	const timeout = 500 * time.Millisecond
	sa, sb := NewStream(a, WithTimeout(timeout)), NewStream(b, WithTimeout(timeout))
	ctx := context.Background()
	const n = 40 // 40 × 25ms: twice the timeout in all
	go func() {
		tick := time.NewTicker(timeout / 20)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			<-tick.C
			if sa.Send(ctx, msg{N: i}) != nil {
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		var m msg
		if err := sb.Recv(ctx, &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// TestMaxSendApart: a stream may send larger frames than it accepts.
func TestMaxSendApart(t *testing.T) {
	var buf bytes.Buffer
	s := NewStream(nopDeadline{&buf}, WithMaxFrame(16), WithMaxSend(1024))
	ctx := context.Background()
	if err := s.Send(ctx, msg{Data: make([]byte, 64)}); err != nil {
		t.Fatalf("send 64 bytes under a 1 KiB send cap: %v", err)
	}
	var m msg
	if err := s.Recv(ctx, &m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("recv of the same frame under a 16-byte cap = %v, want ErrFrameTooLarge", err)
	}
	if err := s.Send(ctx, msg{Data: make([]byte, 2048)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("send over the send cap = %v, want ErrFrameTooLarge", err)
	}
}

// TestUntimedRecv: with WithoutRecvTimeout the read watchdog is never
// armed, so only the context bounds a Recv; sends keep theirs.
func TestUntimedRecv(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := NewStream(b, WithTimeout(time.Millisecond), WithoutRecvTimeout())
	peer := NewStream(a)
	ctx := context.Background()
	go func() { _ = peer.Send(ctx, msg{N: 7}) }()
	var m msg
	if err := s.Recv(ctx, &m); err != nil || m.N != 7 {
		t.Fatalf("Recv = %v, %+v", err, m)
	}
	if s.rdog.timer != nil {
		t.Fatal("the read watchdog was armed on an untimed stream")
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.Recv(cctx, &m) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("untimed Recv after cancel = %v, want context.Canceled", err)
	}
}
