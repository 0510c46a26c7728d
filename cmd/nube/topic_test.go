package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
)

func TestParseRetain(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want client.TopicRetention
		err  string
	}{
		{in: nil, want: client.TopicRetention{}},
		{in: []string{"1000000"}, want: client.TopicRetention{Count: 1000000}},
		{in: []string{"1GiB"}, want: client.TopicRetention{Bytes: 1 << 30}},
		{in: []string{"512MiB"}, want: client.TopicRetention{Bytes: 512 << 20}},
		{in: []string{"64M"}, want: client.TopicRetention{Bytes: 64 << 20}},
		{in: []string{"24h"}, want: client.TopicRetention{Age: 24 * time.Hour}},
		{in: []string{"7d"}, want: client.TopicRetention{Age: 7 * 24 * time.Hour}},
		{in: []string{"90m"}, want: client.TopicRetention{Age: 90 * time.Minute}},
		{in: []string{"1000", "1GiB", "1h30m"}, want: client.TopicRetention{Count: 1000, Bytes: 1 << 30, Age: 90 * time.Minute}},
		{in: []string{"0"}, err: "at least 1"},
		{in: []string{"-5"}, err: "at least 1"},
		{in: []string{"10", "20"}, err: "a count was given already"},
		{in: []string{"1GiB", "2GiB"}, err: "a size was given already"},
		{in: []string{"1h", "2h"}, err: "an age was given already"},
		{in: []string{"0s"}, err: "more than zero"},
		{in: []string{"1e6"}, err: "want a count"},
		{in: []string{"lots"}, err: "want a count"},
		{in: []string{""}, err: "empty"},
	} {
		got, err := parseRetain(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseRetain(%q) = %+v, %v; want an error saying %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseRetain(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSubRequest(t *testing.T) {
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	zero, seven := uint64(0), uint64(7)
	for _, tc := range []struct {
		name string
		o    subOptions
		want client.TopicSubscribe
		err  string
	}{
		{name: "newest", want: client.TopicSubscribe{Topic: "t"}},
		{name: "from 0", o: subOptions{from: "0"}, want: client.TopicSubscribe{Topic: "t", From: &zero}},
		{name: "from 7", o: subOptions{from: "7"}, want: client.TopicSubscribe{Topic: "t", From: &seven}},
		{name: "since a duration", o: subOptions{since: "10m"}, want: client.TopicSubscribe{Topic: "t", Since: now.Add(-10 * time.Minute)}},
		{name: "since days", o: subOptions{since: "2d"}, want: client.TopicSubscribe{Topic: "t", Since: now.Add(-48 * time.Hour)}},
		{name: "since a time", o: subOptions{since: "2026-12-08T01:00:00Z"}, want: client.TopicSubscribe{Topic: "t", Since: now.Add(-time.Hour)}},
		{name: "consumer acks", o: subOptions{consumer: "billing", ackWait: time.Minute},
			want: client.TopicSubscribe{Topic: "t", Consumer: "billing", AckWait: time.Minute, ClientAck: true}},
		{name: "both starts", o: subOptions{from: "1", since: "1h"}, err: "exclude each other"},
		{name: "bad offset", o: subOptions{from: "-1"}, err: "want an offset"},
		{name: "bad time", o: subOptions{since: "yesterday"}, err: "--since"},
		{name: "ack wait alone", o: subOptions{ackWait: time.Second}, err: "add --consumer"},
		{name: "negative ack wait", o: subOptions{consumer: "c", ackWait: -time.Second}, err: "more than zero"},
	} {
		got, err := tc.o.request("t", now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %+v, %v; want an error saying %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Query().Encode() != tc.want.Query().Encode() || !got.Since.Equal(tc.want.Since) || got.ClientAck != tc.want.ClientAck {
			t.Errorf("%s: %+v (%s), want %+v (%s)", tc.name, got, got.Query().Encode(), tc.want, tc.want.Query().Encode())
		}
	}
}

// fakeTopics is an API that answers publishes and a subscription as the
// daemon would, recording what it was sent.
type fakeTopics struct {
	mu    sync.Mutex
	pubs  []string // "ID=DATA"
	acks  []string
	lines []client.TopicMessage // the subscription's, after the subscribed line
	query string
}

func (f *fakeTopics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/api/v0/topic/publish":
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Get("topic") != "orders" {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(client.Error{Code: client.CodeNotFound, Message: "topic not found"})
			return
		}
		f.pubs = append(f.pubs, r.URL.Query().Get("id")+"="+string(b))
		json.NewEncoder(w).Encode(client.TopicAck{Offset: uint64(len(f.pubs)), Duplicate: r.URL.Query().Get("id") == "dup-1"})
	case "/api/v0/topic/subscribe":
		f.query = r.URL.RawQuery
		enc := json.NewEncoder(w)
		enc.Encode(client.TopicMessage{Subscribed: true})
		for _, l := range f.lines {
			enc.Encode(l)
		}
	case "/api/v0/topic/ack":
		var req client.TopicAckRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.acks = append(f.acks, req.Ack)
		w.Write([]byte("{}"))
	default:
		http.NotFound(w, r)
	}
}

// TestPublishLines: nube pub sends a message, or each line of its input
// with IDs ID-1, ID-2…, or all of it with --whole, and prints each offset.
func TestPublishLines(t *testing.T) {
	f := &fakeTopics{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	ctx := context.Background()
	for _, tc := range []struct {
		args  []string
		o     pubOptions
		stdin string
		pubs  []string
		out   string
		err   string
	}{
		{args: []string{"orders", "hello"}, pubs: []string{"=hello"}, out: "offset 1\n"},
		{args: []string{"orders", "hello"}, o: pubOptions{id: "x"}, pubs: []string{"x=hello"}, out: "offset 1\n"},
		{args: []string{"orders", "-"}, o: pubOptions{id: "l"}, stdin: "one\ntwo\n\nfour", pubs: []string{"l-1=one", "l-2=two", "l-3=", "l-4=four"},
			out: "offset 1\noffset 2\noffset 3\noffset 4\n"},
		{args: []string{"orders"}, stdin: "a\nb\n", pubs: []string{"=a", "=b"}, out: "offset 1\noffset 2\n"},
		{args: []string{"orders"}, o: pubOptions{whole: true}, stdin: "a\nb\n", pubs: []string{"=a\nb\n"}, out: "offset 1\n"},
		{args: []string{"orders", "-"}, o: pubOptions{id: "dup"}, stdin: "again\n", pubs: []string{"dup-1=again"}, out: "offset 1 (a duplicate: stored before)\n"},
		{args: []string{"orders", "hi"}, o: pubOptions{whole: true}, err: "--whole reads standard input"},
		{args: []string{"orders"}, o: pubOptions{whole: true}, stdin: strings.Repeat("x", maxMessage+1), err: "over 1048576 bytes"},
		{args: []string{"orders"}, stdin: strings.Repeat("x", maxMessage+1) + "\n", err: "line 1 is over"},
		{args: []string{"nope", "hi"}, err: "topic not found"},
		{args: []string{"nope", "-"}, stdin: "a\n", err: "line 1: topic not found"},
	} {
		f.pubs = nil
		var out strings.Builder
		g := &globals{out: &out}
		err := publish(ctx, g, c, tc.args, tc.o, strings.NewReader(tc.stdin))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pub %q %+v: %v, want an error saying %q", tc.args, tc.o, err, tc.err)
			}
			continue
		}
		if err != nil || out.String() != tc.out || fmt.Sprint(f.pubs) != fmt.Sprint(tc.pubs) {
			t.Errorf("pub %q %+v <%q: %v, printed %q, sent %q; want %q, %q", tc.args, tc.o, tc.stdin, err, out.String(), f.pubs, tc.out, tc.pubs)
		}
	}
	// --json: one document a line.
	f.pubs = nil
	var out strings.Builder
	if err := publish(ctx, &globals{out: &out, json: true}, c, []string{"orders", "-"}, pubOptions{}, strings.NewReader("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "{\"offset\":1}\n{\"offset\":2}\n" {
		t.Fatalf("pub --json printed %q", out.String())
	}
}

// TestSubscribePrintsAndAcks: nube sub prints each message's bytes a
// line (escaped for a terminal), or each as JSON without its ack token,
// and acks a consumer's deliveries after printing them.
func TestSubscribePrintsAndAcks(t *testing.T) {
	f := &fakeTopics{lines: []client.TopicMessage{
		{Topic: "o/orders", Offset: 3, Data: []byte("first"), Ack: "s.3"},
		{Topic: "o/orders", Offset: 4, Data: []byte("evil\x1b[2J"), Ack: "s.4"},
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	req, err := subOptions{consumer: "billing"}.request("orders", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := subscribe(context.Background(), &globals{out: &out}, c, req); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(out.String(), "\n"); len(lines) != 3 || lines[0] != "first" || strings.Contains(lines[1], "\x1b") || !strings.HasPrefix(lines[1], "evil") {
		t.Fatalf("sub printed %q", out.String())
	}
	if fmt.Sprint(f.acks) != "[s.3 s.4]" || !strings.Contains(f.query, "consumer=billing") || !strings.Contains(f.query, "ack=client") {
		t.Fatalf("acks %v for the query %s", f.acks, f.query)
	}
	f.acks = nil
	out.Reset()
	if err := subscribe(context.Background(), &globals{out: &out, json: true}, c, req); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(out.String()))
	for i := 0; i < 2; i++ {
		var m client.TopicMessage
		if err := dec.Decode(&m); err != nil || m.Ack != "" || m.Offset != uint64(3+i) {
			t.Fatalf("sub --json line %d: %+v, %v in %q", i, m, err, out.String())
		}
	}
	if len(f.acks) != 2 {
		t.Fatalf("sub --json acked %v", f.acks)
	}
	// An error line ends the stream with its error.
	f.lines = append(f.lines, client.TopicMessage{Error: &client.Error{Code: client.CodeConflict, Message: "topic: offset 2 is behind the retention: the first offset still held is 5"}})
	err = subscribe(context.Background(), &globals{out: io.Discard}, c, req)
	if err == nil || !strings.Contains(err.Error(), "first offset still held is 5") {
		t.Fatalf("an error line: %v", err)
	}
}

// TestTopicCLIHelp: every topic command, pub and sub show an example,
// and the flags the issue names are there.
func TestTopicCLIHelp(t *testing.T) {
	root := newRoot(io.Discard)
	for _, path := range [][]string{{"topic", "create"}, {"topic", "info"}, {"topic", "ls"}, {"topic", "list"}, {"topic", "grant"},
		{"topic", "revoke"}, {"topic", "migrate"}, {"topic", "delete"}, {"pub"}, {"sub"}} {
		c, _, err := root.Find(path)
		if err != nil || c == root {
			t.Fatalf("no command %q: %v", path, err)
		}
		if c.Example == "" || c.Short == "" {
			t.Errorf("%s has no example or no short line", c.CommandPath())
		}
	}
	for path, flags := range map[string][]string{
		"topic create":  {"retain", "replicas", "on", "local", "sealed"},
		"pub":           {"id", "whole"},
		"sub":           {"from", "since", "consumer", "ack-wait"},
		"topic grant":   {"publish", "subscribe", "delegate", "until"},
		"topic migrate": {"to", "local", "replicas"},
	} {
		c, _, _ := root.Find(strings.Fields(path))
		for _, f := range flags {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("nube %s has no --%s", path, f)
			}
		}
	}
}

// TestTopicCLIErrors: the binary refuses bad flags with a one-line
// message before it looks for a daemon.
func TestTopicCLIErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"topic", "create", "x", "--retain", "lots"}, "want a count"},
		{[]string{"sub", "x", "--from", "1", "--since", "1h"}, "exclude each other"},
		{[]string{"sub", "x", "--ack-wait", "1m"}, "add --consumer"},
		{[]string{"topic", "grant", "x", "12D3KooWAAA"}, "--publish, --subscribe or both"},
		{[]string{"pub"}, "accepts between 1 and 2 arg(s)"},
		{[]string{"topic", "info", "x"}, "no nube daemon is running"},
	} {
		_, errs, code := run(t, append([]string{"--data", dir}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.err) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("nube %q: %d %q, want one line saying %q", tc.args, code, errs, tc.err)
		}
	}
}

// TestTopicCLI drives a topic through two daemons: a durable topic on A
// held by A and B, lines published from stdin, a replay from the first
// offset, a consumer that resumes where it left, a grant that lets B
// publish on A's topic, info with the consumer's lag, ls, migrate and
// delete. It needs the topic layer built (live.go and durable.go).
func TestTopicCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons; skipped in -short mode")
	}
	a, b := t.TempDir(), t.TempDir()
	da := startUp(t, a, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	db := startUp(t, b, append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", da.info.Addrs[0]}, loopback...)...)
	waitPeers(t, a, 1)

	out, errs, code := run(t, "--data", a, "topic", "create", "orders", "--retain", "1000", "--retain", "1GiB", "--on", db.info.ID)
	if code != 0 || !strings.Contains(out, "retains    the newest 1000 messages, 1.0 GiB") || !strings.Contains(out, "holder     "+db.info.ID) {
		t.Fatalf("topic create: %d %s %s", code, out, errs)
	}
	out, errs, code = runIn(t, "first\nsecond\nthird\n", "--data", a, "pub", "orders", "-", "--id", "batch", "--json")
	var acks []client.TopicAck
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var ack client.TopicAck
		if err := dec.Decode(&ack); err != nil {
			t.Fatalf("pub --json: %v in %q", err, out)
		}
		acks = append(acks, ack)
	}
	if code != 0 || len(acks) != 3 || acks[1].Offset != acks[0].Offset+1 || acks[2].Offset != acks[0].Offset+2 {
		t.Fatalf("pub of three lines: %d %q %s", code, out, errs)
	}
	// The same IDs again: stored once, answered with the first offsets.
	if out, errs, code := runIn(t, "first\n", "--data", a, "pub", "orders", "-", "--id", "batch"); code != 0 || out != fmt.Sprintf("offset %d (a duplicate: stored before)\n", acks[0].Offset) {
		t.Fatalf("pub again with the same ID: %d %q %s", code, out, errs)
	}
	first := fmt.Sprint(acks[0].Offset)

	// Replay from the first offset; a consumer takes two, stops, and
	// resumes at the third.
	if got := subLines(t, a, 3, "sub", "orders", "--from", first); strings.Join(got, ",") != "first,second,third" {
		t.Fatalf("sub --from %s: %q", first, got)
	}
	if got := subLines(t, a, 2, "sub", "orders", "--from", first, "--consumer", "billing", "--ack-wait", "2s"); strings.Join(got, ",") != "first,second" {
		t.Fatalf("sub --consumer: %q", got)
	}
	// At least once: the second may come again (its ack, sent as the
	// first subscriber left, can find its stream ended), the first never.
	var got []string
	for range 5 {
		got = append(got, subLines(t, a, 1, "sub", "orders", "--consumer", "billing", "--ack-wait", "2s")...)
		if got[len(got)-1] != "second" {
			break
		}
	}
	if slices.Contains(got, "first") || got[len(got)-1] != "third" {
		t.Fatalf("the consumer resumed with %q, want third (after second again, at most)", got)
	}
	out, _, code = run(t, "--data", a, "topic", "info", "orders")
	if code != 0 || !strings.Contains(out, "consumer   billing") {
		t.Fatalf("topic info: %d %s", code, out)
	}

	// B publishes on A's topic once granted.
	ref := da.info.UserID + "/orders"
	if _, errs, code := run(t, "--data", b, "pub", ref, "from b"); code == 0 || !strings.Contains(errs, "not authorised") {
		t.Fatalf("pub without a grant: %d %s", code, errs)
	}
	if out, errs, code := run(t, "--data", a, "topic", "grant", "orders", db.info.UserID, "--publish", "--until", "24h"); code != 0 || !strings.Contains(out, "publish to "+db.info.UserID) {
		t.Fatalf("topic grant: %d %s %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", b, "pub", ref, "from b"); code != 0 || !strings.HasPrefix(out, "offset ") {
		t.Fatalf("pub with a grant: %d %s %s", code, out, errs)
	}
	if out, _, code := run(t, "--data", a, "topic", "ls"); code != 0 || !strings.Contains(out, ref) || !strings.Contains(out, "durable") {
		t.Fatalf("topic ls: %d %s", code, out)
	}
	// The log on b cannot move to a alone: a log moves through a holder
	// that stays, and the refusal comes before anything moved.
	if _, errs, code := run(t, "--data", a, "topic", "migrate", "orders", "--local"); code == 0 || !strings.Contains(errs, "moves through a holder that stays") {
		t.Fatalf("topic migrate --local: %d %s", code, errs)
	}
	if got := subLines(t, a, 4, "sub", "orders", "--from", first); strings.Join(got, ",") != "first,second,third,from b" {
		t.Fatalf("sub after a refused migration: %q", got)
	}
	if _, errs, code := run(t, "--data", a, "topic", "delete", "orders"); code != 0 {
		t.Fatalf("topic delete: %d %s", code, errs)
	}
	if _, errs, code := run(t, "--data", a, "topic", "info", "orders"); code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("info after delete: %d %s", code, errs)
	}
	if _, errs, code := run(t, "--data", a, "topic", "create", "bad/name"); code == 0 || !strings.Contains(errs, "topic name") {
		t.Fatalf("a bad name: %d %s", code, errs)
	}
}

// subLines runs nube sub on dataDir with args until it has printed n
// lines, then interrupts it (as Ctrl-C would) and returns the lines.
func subLines(t *testing.T, dataDir string, n int, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data", dataDir}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil && len(lines) < n {
		t.Fatalf("nube %q: %v after %q; stderr: %s", args, err, lines, errb.String())
	}
	return lines
}
