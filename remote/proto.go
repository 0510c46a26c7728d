package remote

import (
	"context"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/wire"
)

// Protocol is the libp2p protocol remote calls speak. One call is one
// stream:
//
//	caller → callee  call    (function name, encoded input, time left, window)
//	callee → caller  item*   (streaming functions: one frame per result)
//	callee → caller  done    (a plain function's result; a stream's end)
//	              or error   (code and message)
//	caller → callee  credit* (streaming: room for more results, in bytes)
//
// The caller cancels by resetting the stream (or closing it before the
// reply); the callee's context ends at once. The callee closes the stream
// after its last frame.
var Protocol = wire.Protocol("remote", 1)

// Frame kinds sent by the callee.
const (
	kindItem  = 1
	kindDone  = 2
	kindError = 3
)

// callOverhead bounds what a call frame holds besides its input: the name
// (up to MaxNameLen) and a few integers, with room to spare.
const callOverhead = 512

// replyOverhead bounds what a reply frame holds besides its result.
const replyOverhead = 64

// callMsg opens a call.
type callMsg struct {
	Fn string `cbor:"1,keyasint"`
	// In is the encoded input, embedded as CBOR (checked well-formed when
	// the frame decodes; decoded into the input type by the function).
	In cbor.RawMessage `cbor:"2,keyasint"`
	// Timeout is the time the caller had left when it sent the call, in
	// nanoseconds; 0 means no deadline. A duration, not an instant, so
	// that clocks of the two machines need not agree.
	Timeout int64 `cbor:"3,keyasint,omitempty"`
	// Window is how many bytes of streamed results the callee may send
	// before it waits for credit.
	Window uint32 `cbor:"4,keyasint,omitempty"`
	// Stream says the caller expects a streaming function.
	Stream bool `cbor:"5,keyasint,omitempty"`
}

// replyMsg is every frame the callee sends.
type replyMsg struct {
	Kind uint8           `cbor:"1,keyasint"`
	Out  cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	Code Code            `cbor:"3,keyasint,omitempty"`
	Msg  string          `cbor:"4,keyasint,omitempty"`
	// Err is the errcode kind of a callee's own error, if it has one.
	Err errcode.Code `cbor:"5,keyasint,omitempty"`
}

// creditMsg grants the callee room for Bytes more bytes of results.
type creditMsg struct {
	Bytes uint32 `cbor:"1,keyasint"`
}

// maxErrMsg caps an error message we send, so an error never makes a frame
// too large.
const maxErrMsg = 4096

// check refuses a call frame that decoded but makes no sense.
func (m *callMsg) check() error { return checkCall(m.Fn, m.In, m.Timeout) }

// checkCall is what every call frame, on a stream or a lane, must have: a
// valid function name, an input, and no negative timeout.
func checkCall(fn string, in []byte, timeout int64) error {
	if err := checkName(fn); err != nil {
		return fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	if len(in) == 0 {
		return fmt.Errorf("%w: call without input", wire.ErrMalformed)
	}
	if timeout < 0 {
		return fmt.Errorf("%w: negative timeout", wire.ErrMalformed)
	}
	return nil
}

func (m *callMsg) timeout() time.Duration { return time.Duration(m.Timeout) }

// check refuses a reply frame that decoded but makes no sense. Results in
// pieces come only on lanes.
func (m *replyMsg) check() error {
	if m.Kind == kindPart {
		return fmt.Errorf("%w: a lane's result piece on a call's stream", wire.ErrMalformed)
	}
	return checkReply(m.Kind, len(m.Out), m.Code, kindItem)
}

// checkReply is what every reply frame must have: a known kind, a value
// for each kind that carries one (withValue), and a code for an error.
func checkReply(kind uint8, outLen int, code Code, withValue ...uint8) error {
	switch kind {
	case kindItem, kindPart, kindDone:
		for _, k := range withValue {
			if kind == k && outLen == 0 {
				return fmt.Errorf("%w: reply of kind %d without a value", wire.ErrMalformed, kind)
			}
		}
	case kindError:
		if code == 0 {
			return fmt.Errorf("%w: error without a code", wire.ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: unknown reply kind %d", wire.ErrMalformed, kind)
	}
	return nil
}

// recvCall reads and checks the call frame that opens a stream: the path
// a peer's call takes into a node, and what FuzzDecodeCall drives.
func recvCall(ctx context.Context, ws *wire.Stream) (callMsg, error) {
	var m callMsg
	if err := ws.Recv(ctx, &m); err != nil {
		return m, err
	}
	return m, m.check()
}

// recvReply reads and checks one reply frame: the path a callee's answer
// takes into a caller, and what FuzzDecodeReply drives.
func recvReply(ctx context.Context, ws *wire.Stream) (replyMsg, error) {
	var m replyMsg
	if err := ws.Recv(ctx, &m); err != nil {
		return m, err
	}
	return m, m.check()
}
