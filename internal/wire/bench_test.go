package wire

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// loop is a Conn whose writes become its reads.
type loop struct{ bytes.Buffer }

func (*loop) SetReadDeadline(t time.Time) error  { return nil }
func (*loop) SetWriteDeadline(t time.Time) error { return nil }

// BenchmarkFrameRoundTrip measures what framing costs one message, without
// a network: encode, frame, write, read, decode of 64 bytes.
func BenchmarkFrameRoundTrip(b *testing.B) {
	s := NewStream(&loop{})
	ctx := context.Background()
	msg := make([]byte, 64)
	var got []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := s.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if err := s.Recv(ctx, &got); err != nil {
			b.Fatal(err)
		}
	}
}
