package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// topicClients starts the API on each node of c and returns a client of
// each.
func topicClients(t *testing.T, c *nubetest.C) []*client.Client {
	t.Helper()
	var cls []*client.Client
	for _, n := range c.Nodes() {
		tok := api.NewToken()
		s, err := api.Listen(n, "127.0.0.1:0", tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cls = append(cls, &client.Client{URL: s.URL(), Token: tok})
	}
	return cls
}

// TestTopicAPIErrors: what the topic endpoints refuse before the topic
// layer is asked, and what they pass on from it, each with its code.
func TestTopicAPIErrors(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1)
	a := topicClients(t, c)[0]
	ctx := nubetest.Context(t, time.Minute)

	if _, err := a.TopicCreate(ctx, client.TopicCreate{Name: "bad name"}); !errors.Is(err, topic.ErrBadName) {
		t.Fatalf("a bad name: %v, want ErrBadName", err)
	}
	if _, err := a.TopicCreate(ctx, client.TopicCreate{Name: "x", Retain: client.TopicRetention{Count: -1}}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a negative retention: %v, want a bad request", err)
	}
	if _, err := a.TopicCreate(ctx, client.TopicCreate{Name: "x", SpacePolicy: client.SpacePolicy{On: []string{"not-a-peer"}}}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a bad holder: %v, want a bad request", err)
	}
	if _, err := a.TopicInfo(ctx, "not-a-user/x"); !errors.Is(err, topic.ErrBadName) {
		t.Fatalf("info of a bad owner: %v, want ErrBadName", err)
	}
	if _, err := a.TopicPublish(ctx, "x", []byte("hi"), strings.Repeat("i", topic.MaxIDLen+1)); !errors.Is(err, topic.ErrBadName) {
		t.Fatalf("a publish ID too long: %v, want ErrBadName", err)
	}
	if _, err := a.TopicPublish(ctx, "x", make([]byte, topic.MaxMessage+1), ""); !errors.Is(err, topic.ErrTooLarge) {
		t.Fatalf("a message over the cap: %v, want ErrTooLarge", err)
	}
	if _, err := a.TopicPublish(ctx, "../x", []byte("hi"), ""); !errors.Is(err, topic.ErrBadName) {
		t.Fatalf("a publish on a hostile name: %v, want ErrBadName", err)
	}
	if _, err := a.TopicGrant(ctx, client.TopicGrantRequest{Topic: "x", User: "nobody", Publish: true}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a grant to a bad user: %v", err)
	}
	if _, err := a.TopicGrant(ctx, client.TopicGrantRequest{Topic: "x", User: c.Node(0).UserID().String()}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a grant of nothing: %v", err)
	}
	if err := a.TopicAck(ctx, "no-such.1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("an ack of nothing: %v, want not found", err)
	}
	from := uint64(1)
	for _, req := range []client.TopicSubscribe{
		{Topic: "x", From: &from, Since: time.Now()},
		{Topic: "x", ClientAck: true},
		{Topic: "x", AckWait: time.Second},
		{Topic: "bad name"},
	} {
		for _, err := range a.TopicSubscribe(ctx, req) {
			if !errors.Is(err, client.ErrBadRequest) {
				t.Fatalf("subscribe %+v: %v, want a bad request", req, err)
			}
			break
		}
	}
	// A body that is not a JSON request of the endpoint.
	var out any
	if err := a.Call(ctx, http.MethodPost, "/api/v0/topic/create", map[string]any{"name": "x", "retain": "1GiB"}, &out); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("create with a retention as a string: %v", err)
	}
	if err := a.Call(ctx, http.MethodPost, "/api/v0/topic/delete", map[string]any{"topic": "x", "extra": 1}, &out); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("delete with an unknown field: %v", err)
	}
}

// TestTopicAPI drives topics through the Go client of two daemons' APIs:
// create a durable topic on A held by A and B, publish, subscribe from an
// offset as NDJSON and as server-sent events, a consumer with client acks
// that resumes, a grant that lets B publish, info with the consumer's
// lag, list, migrate, delete. It needs the topic layer built (live.go
// and durable.go).
func TestTopicAPI(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 2)
	cls := topicClients(t, c)
	a, b := cls[0], cls[1]
	ctx := nubetest.Context(t, 2*time.Minute)

	info, err := a.TopicCreate(ctx, client.TopicCreate{Name: "orders", Retain: client.TopicRetention{Count: 1000},
		SpacePolicy: client.SpacePolicy{On: []string{c.Node(1).ID().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	ref := c.Node(0).UserID().String() + "/orders"
	if info.ID != ref || info.Retain.Count != 1000 || !slices.Contains(info.Holders, c.Node(1).ID().String()) {
		t.Fatalf("create: %+v", info)
	}
	if _, err := a.TopicCreate(ctx, client.TopicCreate{Name: "orders", Retain: client.TopicRetention{Count: 1}}); !errors.Is(err, topic.ErrExists) {
		t.Fatalf("create again: %v, want ErrExists", err)
	}
	var offsets []uint64
	for i := range 3 {
		ack, err := a.TopicPublish(ctx, "orders", []byte(fmt.Sprintf("order %d", i)), fmt.Sprintf("o%d", i))
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, ack.Offset)
	}
	if !slices.IsSorted(offsets) || offsets[0] == offsets[2] {
		t.Fatalf("offsets %v, want them rising", offsets)
	}
	// A retried publish (same ID) is stored once.
	if ack, err := a.TopicPublish(ctx, "orders", []byte("order 1"), "o1"); err != nil || !ack.Duplicate || ack.Offset != offsets[1] {
		t.Fatalf("a repeated ID: %+v, %v; want a duplicate at %d", ack, err, offsets[1])
	}

	// From the first offset, as NDJSON.
	first := offsets[0]
	got := collect(t, ctx, a, client.TopicSubscribe{Topic: "orders", From: &first}, 3)
	for i, m := range got {
		if string(m.Data) != fmt.Sprintf("order %d", i) || m.Offset != offsets[i] || m.Publisher != c.Node(0).UserID().String() || m.ID != fmt.Sprintf("o%d", i) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}

	// As server-sent events, resumed after the first with Last-Event-ID.
	events := sse(t, ctx, a, "orders", fmt.Sprint(offsets[0]), 3)
	if events[0] != "subscribed" || !strings.Contains(events[1], `"offset":`+fmt.Sprint(offsets[1])) || !strings.Contains(events[2], `"offset":`+fmt.Sprint(offsets[2])) {
		t.Fatalf("server-sent events: %q", events)
	}

	// A consumer with client acks: acks two, leaves; comes back and
	// starts at the third.
	sub := client.TopicSubscribe{Topic: "orders", From: &first, Consumer: "billing", ClientAck: true, AckWait: time.Second}
	// An ack token is good while its stream is open: ack each as it
	// comes, then leave.
	func() {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		acked := 0
		for m, err := range a.TopicSubscribe(sctx, sub) {
			if err != nil {
				t.Fatalf("subscribe %+v: %v (after %d acks)", sub, err, acked)
			}
			if m.Subscribed {
				continue
			}
			if m.Ack == "" {
				t.Fatalf("a consumer's delivery %d with client acks has no ack token: %+v", acked, m)
			}
			if err := a.TopicAck(ctx, m.Ack); err != nil {
				t.Fatal(err)
			}
			if acked++; acked == 2 {
				return
			}
		}
		t.Fatalf("the consumer's stream ended after %d acks", acked)
	}()
	if m := collect(t, ctx, a, sub, 1)[0]; m.Offset != offsets[2] {
		t.Fatalf("the consumer resumed at %d, want %d", m.Offset, offsets[2])
	}
	info, err = a.TopicInfo(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(info.Consumers, func(c client.TopicConsumer) bool { return c.Name == "billing" })
	if i < 0 || info.Next <= offsets[2] || info.Consumers[i].Acked != offsets[2] || info.Consumers[i].Lag != info.Next-offsets[2] || info.Rates.Published < 3 {
		t.Fatalf("info: %+v", info)
	}

	// B may not publish until granted.
	if _, err := b.TopicPublish(ctx, ref, []byte("from b"), ""); !errors.Is(err, topic.ErrNotAuthorised) {
		t.Fatalf("a publish without a grant: %v, want ErrNotAuthorised", err)
	}
	g, err := a.TopicGrant(ctx, client.TopicGrantRequest{Topic: "orders", User: c.Node(1).UserID().String(), Publish: true, Subscribe: true})
	if err != nil || g.Rights != "publish,subscribe" || !strings.HasPrefix(g.Token, "nubegrant1:") {
		t.Fatalf("grant: %+v, %v", g, err)
	}
	ack, err := b.TopicPublish(ctx, ref, []byte("from b"), "")
	if err != nil || ack.Offset <= offsets[2] {
		t.Fatalf("a publish with a grant: %+v, %v", ack, err)
	}
	list, err := a.TopicsList(ctx)
	if err != nil || !slices.ContainsFunc(list, func(s client.TopicSummary) bool { return s.ID == ref && s.Role == "owner" && s.Durable }) {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if err := a.TopicRevoke(ctx, "orders", g.ID); err != nil {
		t.Fatal(err)
	}
	// A holder that is not the home learns the revocation within 2 s
	// (the topic package's promise), so a publish soon after may land.
	var perr error
	nubetest.Eventually(t, ctx, func() bool {
		_, perr = b.TopicPublish(ctx, ref, []byte("after revoke"), "")
		return errors.Is(perr, topic.ErrNotAuthorised)
	}, func() string { return fmt.Sprintf("a publish after revocation: %v", perr) })
	// Its log on node 1 cannot move to the home alone: the log moves
	// through a holder that stays, and the refusal comes before anything
	// moved.
	var last client.TopicProgress
	var merr error
	for p, err := range a.TopicMigrate(ctx, client.TopicMigrate{Topic: "orders", SpacePolicy: client.SpacePolicy{Local: true}}) {
		if err != nil {
			merr = err
			break
		}
		last = p
	}
	if merr == nil && last.Error == "" {
		t.Fatalf("a migration that keeps none of the log's holders: %+v", last)
	}
	if got := collect(t, ctx, a, client.TopicSubscribe{Topic: "orders", From: &first}, 4); string(got[3].Data) != "from b" {
		t.Fatalf("after a refused migration: %+v", got)
	}
	if err := a.TopicDelete(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TopicInfo(ctx, "orders"); !errors.Is(err, topic.ErrNotFound) {
		t.Fatalf("info after delete: %v, want ErrNotFound", err)
	}
}

// TestTopicAPILive: a live topic's subscriber gets what is published
// after its subscribed line, and a consumer on it is refused.
func TestTopicAPILive(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1)
	a := topicClients(t, c)[0]
	ctx := nubetest.Context(t, time.Minute)
	if _, err := a.TopicCreate(ctx, client.TopicCreate{Name: "events", SpacePolicy: client.SpacePolicy{Local: true}}); err != nil {
		t.Fatal(err)
	}
	for _, err := range a.TopicSubscribe(ctx, client.TopicSubscribe{Topic: "events", Consumer: "c"}) {
		if !errors.Is(err, topic.ErrNotDurable) {
			t.Fatalf("a consumer on a live topic: %v, want ErrNotDurable", err)
		}
		break
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan client.TopicMessage, 8)
	go func() {
		defer close(lines)
		for m, err := range a.TopicSubscribe(sctx, client.TopicSubscribe{Topic: "events"}) {
			if err != nil {
				return
			}
			lines <- m
		}
	}()
	if m := <-lines; !m.Subscribed {
		t.Fatalf("first line %+v, want subscribed", m)
	}
	if _, err := a.TopicPublish(ctx, "events", []byte("deployed"), ""); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-lines:
		if string(m.Data) != "deployed" {
			t.Fatalf("got %+v", m)
		}
	case <-ctx.Done():
		t.Fatal("the live subscriber never got the message")
	}
}

// collect subscribes and returns the first n messages.
func collect(t *testing.T, ctx context.Context, c *client.Client, req client.TopicSubscribe, n int) []client.TopicMessage {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []client.TopicMessage
	for m, err := range c.TopicSubscribe(ctx, req) {
		if err != nil {
			t.Fatalf("subscribe %+v: %v (after %d messages)", req, err, len(out))
		}
		if m.Subscribed {
			continue
		}
		if out = append(out, m); len(out) == n {
			return out
		}
	}
	t.Fatalf("subscribe %+v ended after %d messages, want %d", req, len(out), n)
	return nil
}

// sse reads n events of a subscription as server-sent events, resumed
// with lastID, and returns for each its name, or its data for a message.
func sse(t *testing.T, ctx context.Context, c *client.Client, topicRef, lastID string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/api/v0/topic/subscribe?"+url.Values{"topic": {topicRef}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("SSE subscribe: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var out []string
	event := ""
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && len(out) < n {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if event == "message" {
				var m client.TopicMessage
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("a message event's data: %v: %s", err, data)
				}
				out = append(out, data)
			} else {
				out = append(out, event)
			}
		}
	}
	return out
}
