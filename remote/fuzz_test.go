package remote

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/nubecloud/nube/internal/wire"
)

// reader is a wire.Conn that reads from a byte slice and takes no writes.
type reader struct{ io.Reader }

func (reader) Write(p []byte) (int, error)      { return len(p), nil }
func (reader) SetReadDeadline(time.Time) error  { return nil }
func (reader) SetWriteDeadline(time.Time) error { return nil }

const fuzzMaxInput = 4096

func seedFrame(f *testing.F, v any) {
	b, err := wire.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wire.AppendFrame(nil, b))
}

// FuzzDecodeCall drives the paths a peer's call frames take into a node:
// the frame reader with the node's cap, the checks, and the decoding of the
// input into a function's type, for a call on a stream of its own and for
// calls on a lane. It must never panic, and what it accepts must be within
// the caps and survive a round trip.
func FuzzDecodeCall(f *testing.F) {
	in, _ := wire.Marshal(map[string]int{"a": 1})
	seedFrame(f, &callMsg{Fn: "wordcount", In: in, Timeout: int64(time.Second)})
	seedFrame(f, &callMsg{Fn: "count", In: in, Window: 1 << 20, Stream: true})
	seedFrame(f, map[int]any{1: "x"})
	f.Add([]byte{0x05, 0xa1, 0x01, 0x61, 0x78})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	seedFrame(f, &laneCall{ID: 7, Fn: "wordcount", In: in, Timeout: int64(time.Second)})
	seedFrame(f, &laneCall{ID: 7, Cancel: true})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLaneCalls(t, data)
		ws := wire.NewStream(reader{bytes.NewReader(data)}, wire.WithMaxFrame(fuzzMaxInput+callOverhead))
		m, err := recvCall(context.Background(), ws)
		if err != nil {
			return
		}
		if len(m.In) > fuzzMaxInput+callOverhead || m.Fn == "" || m.Timeout < 0 {
			t.Fatalf("accepted a call outside the caps: %+v", m)
		}
		_, _ = decodeInput[map[string]int](m.In)
		_, _ = decodeInput[[]string](m.In)
		// Well-formed is not valid: a text string may hold bad UTF-8.
		// Decoding refuses it, without a panic.
		_, _ = decodeInput[any](m.In)
		again, err := wire.Marshal(&m)
		if err != nil {
			t.Fatalf("accepted call does not re-encode: %v", err)
		}
		ws2 := wire.NewStream(reader{bytes.NewReader(wire.AppendFrame(nil, again))}, wire.WithMaxFrame(1<<20))
		if _, err := recvCall(context.Background(), ws2); err != nil {
			t.Fatalf("re-encoded call refused: %v", err)
		}
	})
}

// fuzzLaneCalls reads lane call frames from data as a lane's reader does.
func fuzzLaneCalls(t *testing.T, data []byte) {
	ws := wire.NewStream(reader{bytes.NewReader(data)}, wire.WithMaxFrame(laneFrameMax))
	for range 4 {
		var m laneCall
		if recvLaneCall(ws, &m) != nil {
			return
		}
		if !m.Cancel && (m.Fn == "" || len(m.In) == 0 || m.Timeout < 0) {
			t.Fatalf("accepted a lane call that makes no sense: %+v", m)
		}
		_, _ = decodeInput[map[string]int](m.In)
	}
}

// fuzzLaneReplies reads lane reply frames from data as a caller's lane
// reader does.
func fuzzLaneReplies(t *testing.T, data []byte) {
	ws := wire.NewStream(reader{bytes.NewReader(data)}, wire.WithMaxFrame(laneFrameMax))
	for range 4 {
		var m laneReply
		if recvLaneReply(ws, &m) != nil {
			return
		}
		switch m.Kind {
		case kindPart, kindDone:
			if len(m.Out) == 0 {
				t.Fatal("accepted a lane result piece without bytes")
			}
			_, _ = decodeResult[string]("f", "", m.Out)
		case kindError:
			if m.Code == 0 {
				t.Fatal("accepted a lane error without a code")
			}
		default:
			t.Fatalf("accepted lane reply kind %d", m.Kind)
		}
	}
}

// FuzzDecodeReply drives the paths a callee's replies take into a caller:
// the frame reader with the caller's cap, the checks, and the decoding of
// a result, on a call's own stream and on a lane. It must never panic.
func FuzzDecodeReply(f *testing.F) {
	out, _ := wire.Marshal("HELLO")
	seedFrame(f, &replyMsg{Kind: kindDone, Out: out})
	seedFrame(f, &replyMsg{Kind: kindItem, Out: out})
	seedFrame(f, &replyMsg{Kind: kindError, Code: CodePanicked, Msg: "boom"})
	seedFrame(f, map[int]any{1: 7})
	seedFrame(f, &laneReply{ID: 3, Kind: kindPart, Out: out[:2]})
	seedFrame(f, &laneReply{ID: 3, Kind: kindError, Code: CodeRefused, Msg: "no"})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLaneReplies(t, data)
		ws := wire.NewStream(reader{bytes.NewReader(data)}, wire.WithMaxFrame(1<<16))
		for range 4 { // a stream of replies, as a streaming caller reads them
			m, err := recvReply(context.Background(), ws)
			if err != nil {
				return
			}
			switch m.Kind {
			case kindItem, kindDone:
				if m.Kind == kindItem && len(m.Out) == 0 {
					t.Fatal("accepted an item without a value")
				}
				if len(m.Out) > 0 {
					_, _ = decodeResult[string]("f", "", m.Out)
					_, _ = decodeResult[map[string][]int]("f", "", m.Out)
				}
			case kindError:
				if m.Code == 0 {
					t.Fatal("accepted an error without a code")
				}
				e := &Error{Code: m.Code, Message: m.Msg}
				_ = e.Error()
			default:
				t.Fatalf("accepted reply kind %d", m.Kind)
			}
		}
	})
}
