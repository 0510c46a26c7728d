package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/topic"
)

func TestParseSubscribe(t *testing.T) {
	for _, tc := range []struct {
		query, lastID string
		want          topic.SubscribeOptions
		clientAck     bool
		err           string
	}{
		{query: "topic=t", want: topic.SubscribeOptions{}},
		{query: "topic=t&from=0", want: topic.SubscribeOptions{From: topic.FromOffset(0)}},
		{query: "topic=t&from=42", want: topic.SubscribeOptions{From: topic.FromOffset(42)}},
		{query: "topic=t&consumer=c&ack_wait=2m&ack=client", want: topic.SubscribeOptions{Consumer: "c", AckWait: 120e9}, clientAck: true},
		{query: "topic=t&consumer=c&ack=auto", want: topic.SubscribeOptions{Consumer: "c"}},
		// An EventSource that reconnects resumes after the last offset
		// it saw, unless it named a start or a consumer.
		{query: "topic=t", lastID: "9", want: topic.SubscribeOptions{From: topic.FromOffset(10)}},
		{query: "topic=t&from=3", lastID: "9", want: topic.SubscribeOptions{From: topic.FromOffset(3)}},
		{query: "topic=t&consumer=c", lastID: "9", want: topic.SubscribeOptions{Consumer: "c"}},
		{query: "topic=t", lastID: "junk", want: topic.SubscribeOptions{}},
		{query: "topic=t&from=1&since=2026-01-01T00:00:00Z", err: "exclude each other"},
		{query: "topic=t&from=-1", err: "not an offset"},
		{query: "topic=t&since=yesterday", err: "not an RFC 3339 time"},
		{query: "topic=t&consumer=c&ack_wait=0s", err: "not a positive duration"},
		{query: "topic=t&ack_wait=1s", err: "needs a consumer"},
		{query: "topic=t&ack=client", err: "needs a consumer"},
		{query: "topic=t&consumer=c&ack=maybe", err: "want auto"},
		{query: "topic=t&consumer=" + strings.Repeat("c", topic.MaxNameLen+1), err: "consumer name"},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseSubscribe(q, tc.lastID)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errcode.ErrBadRequest) {
				t.Errorf("%s: %+v, %v; want a bad request saying %q", tc.query, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.opts != tc.want || got.clientAck != tc.clientAck {
			t.Errorf("%s (last ID %q): %+v %v, %v; want %+v %v", tc.query, tc.lastID, got.opts, got.clientAck, err, tc.want, tc.clientAck)
		}
	}
	since, _ := url.ParseQuery("since=2026-12-08T01:00:00.5Z")
	got, err := parseSubscribe(since, "")
	if err != nil || got.opts.From == topic.FromNewest() {
		t.Fatalf("since: %+v, %v", got, err)
	}
}

// TestAckBook: a delivery's token takes it once; a stream holds at most
// maxUnacked deliveries, and an ack frees a place for the next.
func TestAckBook(t *testing.T) {
	var b ackBook
	p := b.open()
	tok := p.add(topic.Message{Offset: 7})
	if m, ok := b.take(tok); !ok || m.Offset != 7 {
		t.Fatalf("take %q: %+v %v", tok, m, ok)
	}
	if _, ok := b.take(tok); ok {
		t.Fatal("a token taken twice")
	}
	for _, bad := range []string{"", "x", p.id, p.id + ".", p.id + ".x", "other.7", p.id + ".8"} {
		if _, ok := b.take(bad); ok {
			t.Fatalf("took %q", bad)
		}
	}
	// A delivery again of the same offset takes one place.
	p.add(topic.Message{Offset: 1})
	p.add(topic.Message{Offset: 1})
	if len(p.msgs) != 1 {
		t.Fatalf("%d waiting after two deliveries of one offset", len(p.msgs))
	}
	for o := uint64(2); o <= maxUnacked; o++ {
		p.add(topic.Message{Offset: o})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p.wait(ctx) {
		t.Fatalf("wait with %d waiting said there is room", len(p.msgs))
	}
	if _, ok := b.take(p.id + ".5"); !ok {
		t.Fatal("take 5")
	}
	if !p.wait(context.Background()) {
		t.Fatal("no room after an ack")
	}
	b.close(p)
	if _, ok := b.take(p.id + ".6"); ok {
		t.Fatal("a token of a closed stream taken")
	}
}

// TestTopicStreamSSE: server-sent events name each line's kind and give a
// message its offset as the event's ID, for Last-Event-ID.
func TestTopicStreamSSE(t *testing.T) {
	rec := httptest.NewRecorder()
	send := topicStream(rec, true)
	send(client.TopicMessage{Subscribed: true})
	send(client.TopicMessage{Topic: "o/t", Offset: 12, Data: []byte("hi")})
	send(client.TopicMessage{Error: &client.Error{Code: "conflict", Message: "behind"}})
	want := "event: subscribed\ndata: {}\n\n" +
		"event: message\nid: 12\ndata: {\"topic\":\"o/t\",\"offset\":12,\"data\":\"aGk=\"}\n\n" +
		"event: error\ndata: {\"code\":\"conflict\",\"message\":\"behind\"}\n\n"
	if rec.Body.String() != want || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE stream (%s):\n%s\nwant:\n%s", rec.Header().Get("Content-Type"), rec.Body.String(), want)
	}
}

func TestTopicRights(t *testing.T) {
	for _, tc := range []struct {
		req    client.TopicGrantRequest
		rights topic.Rights
		names  string
	}{
		{client.TopicGrantRequest{Publish: true}, topic.Publish, "publish"},
		{client.TopicGrantRequest{Subscribe: true}, topic.Subscribe, "subscribe"},
		{client.TopicGrantRequest{Publish: true, Subscribe: true, Delegate: true}, topic.Publish | topic.Subscribe | topic.Delegate, "publish,subscribe,delegate"},
		{client.TopicGrantRequest{Delegate: true}, 0, ""},
	} {
		r, names, err := topicRights(tc.req)
		if r != tc.rights || names != tc.names || (tc.rights == 0) != (err != nil) {
			t.Errorf("%+v: %v %q %v", tc.req, r, names, err)
		}
	}
}

// FuzzParseSubscribe: no query or Last-Event-ID makes the subscribe
// handler panic, and every error it answers is a bad request.
func FuzzParseSubscribe(f *testing.F) {
	f.Add("topic=t&from=3", "")
	f.Add("topic=t&since=2026-12-08T01:00:00Z&consumer=c&ack_wait=1s&ack=client", "7")
	f.Add("from=18446744073709551615", "18446744073709551615")
	f.Add("ack_wait=-1ns&ack=x", "x")
	f.Fuzz(func(t *testing.T, query, lastID string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, err := parseSubscribe(q, lastID)
		if err != nil {
			if !errors.Is(err, errcode.ErrBadRequest) {
				t.Fatalf("%q: %v is not a bad request", query, err)
			}
			return
		}
		if req.clientAck && req.opts.Consumer == "" {
			t.Fatalf("%q: client acks without a consumer", query)
		}
	})
}
