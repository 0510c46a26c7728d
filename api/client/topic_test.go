package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeTopicStream: whatever a daemon (or what answers in its place)
// streams, the decoder never panics, never yields a message and an error
// together, stops at the first error, and never holds a line over
// MaxTopicLine.
func FuzzDecodeTopicStream(f *testing.F) {
	f.Add([]byte("{\"subscribed\":true}\n{\"topic\":\"o/t\",\"offset\":3,\"data\":\"aGk=\"}\n"))
	f.Add([]byte("{\"error\":{\"code\":\"conflict\",\"message\":\"behind\"}}\n{\"offset\":9}\n"))
	f.Add([]byte("{\"data\":\"not base64!\"}\n"))
	f.Add([]byte("\n\n{}\n"))
	f.Add(bytes.Repeat([]byte("x"), 100))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, errs := 0, 0
		decodeTopicStream(bytes.NewReader(in), func() error { return nil }, func(m TopicMessage, err error) bool {
			if errs > 0 {
				t.Fatalf("yielded again after an error")
			}
			if err != nil {
				errs++
				if m.Subscribed || m.Offset != 0 || m.Data != nil {
					t.Fatalf("a message with an error: %+v", m)
				}
				return true
			}
			n++
			return true
		})
		if n > bytes.Count(in, []byte("\n"))+1 {
			t.Fatalf("%d messages from %d lines", n, bytes.Count(in, []byte("\n"))+1)
		}
	})
}

// TestDecodeTopicStream: the lines in order, an error line as an error
// of its code, and a line over the cap refused.
func TestDecodeTopicStream(t *testing.T) {
	in := "{\"subscribed\":true}\n{\"offset\":3,\"data\":\"aGk=\"}\n{\"error\":{\"code\":\"conflict\",\"message\":\"behind\"}}\n{\"offset\":4}\n"
	var got []TopicMessage
	var last error
	decodeTopicStream(strings.NewReader(in), func() error { return nil }, func(m TopicMessage, err error) bool {
		if err != nil {
			last = err
			return false
		}
		got = append(got, m)
		return true
	})
	if len(got) != 2 || !got[0].Subscribed || got[1].Offset != 3 || string(got[1].Data) != "hi" || !errors.Is(last, ErrConflict) {
		t.Fatalf("got %+v, then %v", got, last)
	}
	long := "{\"data\":\"" + strings.Repeat("A", MaxTopicLine) + "\"}\n"
	last = nil
	decodeTopicStream(strings.NewReader(long), func() error { return nil }, func(m TopicMessage, err error) bool { last = err; return false })
	if last == nil {
		t.Fatal("a line over MaxTopicLine was taken")
	}
}

// TestTopicSubscribeQuery: what a subscription asks the daemon.
func TestTopicSubscribeQuery(t *testing.T) {
	zero := uint64(0)
	for _, tc := range []struct {
		req  TopicSubscribe
		want string
	}{
		{TopicSubscribe{Topic: "o/t"}, "topic=o%2Ft"},
		{TopicSubscribe{Topic: "t", From: &zero}, "from=0&topic=t"},
		{TopicSubscribe{Topic: "t", Since: time.Date(2026, 12, 8, 1, 0, 0, 5, time.UTC)}, "since=2026-12-08T01%3A00%3A00.000000005Z&topic=t"},
		{TopicSubscribe{Topic: "t", Consumer: "c", AckWait: 90 * time.Second, ClientAck: true}, "ack=client&ack_wait=1m30s&consumer=c&topic=t"},
	} {
		if got := tc.req.Query().Encode(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.req, got, tc.want)
		}
	}
}
