package remote_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/nubecloud/nube/internal/wire"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
)

// TestHostileCaller: frames that break the protocol are refused (the
// stream is reset or answered with an error), and the node goes on serving.
func TestHostileCaller(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)

	huge := binary.AppendUvarint(nil, 1<<40)
	cases := map[string][]byte{
		"garbage":              []byte("\xff\xfe\xfd not a frame at all"),
		"huge length":          huge,
		"header, no payload":   binary.AppendUvarint(nil, 100),
		"not cbor":             wire.AppendFrame(nil, []byte{0xff, 0xff, 0xff}),
		"cbor of another type": wire.AppendFrame(nil, []byte{0x83, 0x01, 0x02, 0x03}),
		"call without a name":  frame(t, map[int]any{2: 1}),
		"call without input":   frame(t, map[int]any{1: "test.upper"}),
		"negative timeout":     frame(t, map[int]any{1: "test.upper", 2: "x", 3: -5}),
		"name with a space":    frame(t, map[int]any{1: "test upper", 2: "x"}),
		"deeply nested input":  frame(t, map[int]any{1: "test.upper", 2: nest(100)}),
	}
	for name, raw := range cases {
		s, err := a.Sys().Host().NewStream(ctx, b.ID(), remote.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(raw); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		// A half-close marks the end of what we send; whatever comes back
		// (an error frame or a reset), the node must not hang or die.
		_ = s.CloseWrite()
		_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
		reply, err := io.ReadAll(s)
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			t.Errorf("%s: the node neither answered nor closed the stream", name)
		}
		_ = s.Reset()
		if len(reply) > 0 {
			t.Logf("%s: answered %q", name, reply)
		}
		if got, err := upper.At(a, b.ID()).Call(ctx, "still up"); err != nil || got != "STILL UP" {
			t.Fatalf("after %s the node answers %q, %v", name, got, err)
		}
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// frame encodes v as a wire frame.
func frame(t *testing.T, v any) []byte {
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendFrame(nil, b)
}

// nest returns a value nested n arrays deep.
func nest(n int) any {
	var v any = "x"
	for range n {
		v = []any{v}
	}
	return v
}

// TestHostileCallee: a peer that answers with garbage, the wrong kind of
// frame or too large a result gives the caller a clear error, not a panic
// or a hang. Inputs over 64 KiB take a stream of their own (Protocol).
func TestHostileCallee(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)
	big := strings.Repeat("x", 100<<10)

	answer := func(reply []byte) {
		b.Sys().Host().SetStreamHandler(remote.Protocol, func(s network.Stream) {
			defer s.Close()
			var m map[int]any
			ws := wire.NewStream(s)
			if err := ws.Recv(ctx, &m); err != nil {
				_ = s.Reset()
				return
			}
			_, _ = s.Write(reply)
		})
	}
	cases := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"garbage", []byte("\xff\xfe\xfd"), remote.ErrProtocol},
		{"nothing", nil, remote.ErrUnreachable},
		{"huge length", binary.AppendUvarint(nil, 1<<40), remote.ErrResultTooLarge},
		{"truncated", append(binary.AppendUvarint(nil, 100), 1, 2, 3), remote.ErrProtocol},
		{"unknown kind", frame(t, map[int]any{1: 9}), remote.ErrProtocol},
		{"error without a code", frame(t, map[int]any{1: 3, 4: "bad"}), remote.ErrProtocol},
		{"done without a result", frame(t, map[int]any{1: 2}), remote.ErrProtocol},
		{"result of the wrong type", frame(t, map[int]any{1: 2, 2: 42}), remote.ErrProtocol},
		{"an item for a plain call", frame(t, map[int]any{1: 1, 2: "x"}), remote.ErrProtocol},
		{"an error code", frame(t, map[int]any{1: 3, 3: int(remote.CodeRefused), 4: "go away"}), remote.ErrRefused},
	}
	for _, tc := range cases {
		answer(tc.reply)
		_, err := upper.At(a, b.ID()).Call(ctx, big)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// The same for a stream.
	answer(bytes.Join([][]byte{frame(t, map[int]any{1: 1, 2: map[int]any{1: 0}}), {0xff}}, nil))
	var last error
	n := 0
	for _, err := range count.At(a, b.ID()).Call(ctx, countIn{N: 2}) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != 1 || !errors.Is(last, remote.ErrProtocol) {
		t.Errorf("a stream that turns to garbage: %d results, then %v", n, last)
	}
}

// TestHostileLane: the same on a lane, where small calls go. The hostile
// callee answers each call as its input says; a reply that breaks the
// protocol ends the lane, and the next call opens another.
func TestHostileLane(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	a, b := c.Node(0), c.Node(1)
	ctx := nubetest.Context(t, time.Minute)
	str := func(s string) []byte {
		out, err := wire.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	replies := map[string]func(id uint64) []byte{
		"garbage":     func(uint64) []byte { return []byte("\x03\xff\xfe\xfd") },
		"close":       func(uint64) []byte { return nil },
		"huge length": func(uint64) []byte { return binary.AppendUvarint(nil, 1<<40) },
		"unknown kind": func(id uint64) []byte {
			return frame(t, map[int]any{1: id, 2: 9})
		},
		"error without a code": func(id uint64) []byte {
			return frame(t, map[int]any{1: id, 2: 3, 5: "bad"})
		},
		"done without bytes": func(id uint64) []byte {
			return frame(t, map[int]any{1: id, 2: 2})
		},
		"wrong type": func(id uint64) []byte {
			return frame(t, map[int]any{1: id, 2: 2, 3: []byte{0x18, 0x2a}})
		},
		"refused": func(id uint64) []byte {
			return frame(t, map[int]any{1: id, 2: 3, 4: int(remote.CodeRefused), 5: "go away"})
		},
		// A stray answer to a call no one made, then the right one in
		// two pieces.
		"in parts": func(id uint64) []byte {
			whole := str("IN PARTS")
			return bytes.Join([][]byte{
				frame(t, map[int]any{1: id + 1000, 2: 2, 3: str("stray")}),
				frame(t, map[int]any{1: id, 2: 4, 3: whole[:3]}),
				frame(t, map[int]any{1: id, 2: 2, 3: whole[3:]}),
			}, nil)
		},
	}
	b.Sys().Host().SetStreamHandler(remote.LaneProtocol, func(s network.Stream) {
		ws := wire.NewStream(s, wire.WithoutRecvTimeout())
		for {
			var m struct {
				ID uint64 `cbor:"1,keyasint"`
				In []byte `cbor:"3,keyasint"`
			}
			if err := ws.Recv(context.Background(), &m); err != nil {
				_ = s.Reset()
				return
			}
			var which string
			if wire.Unmarshal(m.In, &which) != nil || replies[which] == nil {
				_ = s.Reset()
				return
			}
			out := replies[which](m.ID)
			if out == nil {
				_ = s.Close()
				return
			}
			if _, err := s.Write(out); err != nil {
				return
			}
		}
	})
	want := map[string]error{
		"garbage":              remote.ErrProtocol,
		"close":                remote.ErrUnreachable,
		"huge length":          remote.ErrProtocol,
		"unknown kind":         remote.ErrProtocol,
		"error without a code": remote.ErrProtocol,
		"done without bytes":   remote.ErrProtocol,
		"wrong type":           remote.ErrProtocol,
		"refused":              remote.ErrRefused,
	}
	for which, w := range want {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := upper.At(a, b.ID()).Call(ctx, which)
		cancel()
		if !errors.Is(err, w) {
			t.Errorf("%s: err = %v, want %v", which, err, w)
		}
	}
	if got, err := upper.At(a, b.ID()).Call(ctx, "in parts"); err != nil || got != "IN PARTS" {
		t.Errorf("a result in two pieces after a stray one: %q, %v", got, err)
	}
}
