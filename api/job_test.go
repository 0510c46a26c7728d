package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// TestJobAPIErrors: what the job endpoints refuse, each with its code.
func TestJobAPIErrors(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1)
	a := topicClients(t, c)[0]
	ctx := nubetest.Context(t, time.Minute)

	if _, err := a.JobRun(ctx, client.JobSpec{Input: "bafkqaaa"}); !errors.Is(err, job.ErrBadSpec) {
		t.Fatalf("a job with no map: %v, want ErrBadSpec", err)
	}
	if _, err := a.JobRun(ctx, client.JobSpec{Input: "bafkqaaa", Map: "m", VerifyFraction: 2}); !errors.Is(err, job.ErrBadSpec) {
		t.Fatalf("a fraction of 2: %v, want ErrBadSpec", err)
	}
	if _, err := a.JobStatus(ctx, "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("status of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := a.JobLogs(ctx, "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("logs of an unknown job: %v, want ErrNotFound", err)
	}
	if err := a.JobCancel(ctx, "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("cancel of an unknown job: %v, want ErrNotFound", err)
	}
	if _, err := a.JobStatus(ctx, ""); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("status without an id: %v, want a bad request", err)
	}
	for _, err := range a.JobWatch(ctx, "nope", 0) {
		if !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("watch of an unknown job: %v, want ErrNotFound", err)
		}
	}
	var raw map[string]any
	if err := a.Call(ctx, http.MethodPost, "/api/v0/job/run", map[string]any{"input": "x", "map": "m", "mystery": 1}, &raw); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a spec with an unknown field: %v, want a bad request", err)
	}
	if ls, err := a.JobsList(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("list of no jobs: %v, %v", ls, err)
	}
}

// TestJobAPI runs word count over two files on two nodes through the
// API: run, watch to the end (NDJSON, and server-sent events), status,
// list, logs, and the result read back.
func TestJobAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the word-count modules and runs a job; skipped in -short mode")
	}
	c := nubetest.Cluster(t, 2)
	cls := topicClients(t, c)
	a := cls[0]
	ctx := nubetest.Context(t, 3*time.Minute)
	n := c.Node(0)
	for _, name := range []string{"wordcount-map", "wordcount-reduce"} {
		if _, err := n.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(t, name)),
			service.PublishOptions{Name: name, Version: "1.0.0", Deterministic: true}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := n.Content().AddTree(ctx, func(put func(string, io.Reader) error, _ func(string) error, _ func(string, string) error) error {
		if err := put("a.txt", strings.NewReader("the cat sat\non the mat\n")); err != nil {
			return err
		}
		return put("b.txt", strings.NewReader("the dog\n"))
	}, content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.JobRun(ctx, client.JobSpec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.ID == "" || st.State != "running" || st.Spec.Map != "wordcount-map" {
		t.Fatalf("run answered %+v", st)
	}
	var last client.JobStatus
	seen := 0
	for s, err := range a.JobWatch(ctx, st.ID, 100*time.Millisecond) {
		if err != nil {
			t.Fatal(err)
		}
		last, seen = s, seen+1
	}
	if seen == 0 || last.State != "done" || last.Result == "" || last.Progress.Done != last.Progress.Tasks || last.Progress.Tasks != 2+2 {
		t.Fatalf("the watch ended with %+v after %d statuses", last, seen)
	}
	got, err := a.JobStatus(ctx, st.ID)
	if err != nil || got.Result != last.Result || got.State != "done" {
		t.Fatalf("status: %+v, %v", got, err)
	}
	ls, err := a.JobsList(ctx)
	if err != nil || len(ls) != 1 || ls[0].ID != st.ID {
		t.Fatalf("list: %+v, %v", ls, err)
	}
	logs, err := a.JobLogs(ctx, st.ID)
	if err != nil || len(logs) == 0 {
		t.Fatalf("logs: %v, %v", logs, err)
	}
	// A cancel of an ended job leaves it as it was.
	if err := a.JobCancel(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.JobStatus(ctx, st.ID); got.State != "done" {
		t.Fatalf("a done job cancelled: %s", got.State)
	}
	counts := map[string]string{}
	es, err := n.Content().List(ctx, last.Result)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		f, err := n.Content().Get(ctx, last.Result+"/"+e.Name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "\t")
			counts[k] = v
		}
		f.Close()
	}
	if counts["the"] != "3" || counts["cat"] != "1" || counts["dog"] != "1" || len(counts) != 6 {
		t.Fatalf("word counts %v", counts)
	}

	// Published, then run by its name: the same result.
	pub, err := a.JobPublish(ctx, "wc", client.JobSpec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2})
	if err != nil || pub.CID == "" || pub.Name != "wc" || pub.Spec.Map == "wordcount-map" {
		t.Fatalf("publish: %+v, %v (want the map pinned to a descriptor CID)", pub, err)
	}
	if _, err := a.JobRunPublished(ctx, "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("run of a name never published: %v, want ErrNotFound", err)
	}
	again, err := a.JobRunPublished(ctx, "wc")
	if err != nil {
		t.Fatal(err)
	}
	var end client.JobStatus
	for s, err := range a.JobWatch(ctx, again.ID, 0) {
		if err != nil {
			t.Fatal(err)
		}
		end = s
	}
	if end.State != "done" || end.Result != last.Result {
		t.Fatalf("the published job ended %s with %s, want done with %s", end.State, end.Result, last.Result)
	}

	// The same watch as server-sent events: data lines of JSON.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/api/v0/job/watch?id="+st.ID, nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var s client.JobStatus
			if err := json.Unmarshal([]byte(d), &s); err != nil || s.ID != st.ID {
				t.Fatalf("event %q: %v", d, err)
			}
			events++
		}
	}
	if events == 0 {
		t.Fatal("no events")
	}
}
