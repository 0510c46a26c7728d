package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nubecloud/nube/api/client"
)

func TestJobRunSpec(t *testing.T) {
	for _, tc := range []struct {
		f     jobRunFlags
		input string
		size  int64
		err   string
	}{
		{f: jobRunFlags{mapSvc: "m"}, input: "bafyX"},
		{f: jobRunFlags{mapSvc: "m", split: "file"}, input: "bafyX"},
		{f: jobRunFlags{mapSvc: "m", split: "lines"}, input: "bafyX", size: lineSplit},
		{f: jobRunFlags{mapSvc: "m", split: "16MiB"}, input: "bafyX", size: 16 << 20},
		{f: jobRunFlags{mapSvc: "m", split: "4096"}, input: "bafyX", size: 4096},
		{f: jobRunFlags{mapSvc: "m", reduceSvc: "r", reducers: 4, verify: 0.5}, input: "space:o/n/p"},
		{f: jobRunFlags{mapSvc: "m", split: "0"}, input: "bafyX", err: "want file, lines, or a size"},
		{f: jobRunFlags{mapSvc: "m", split: "huge"}, input: "bafyX", err: "want file, lines, or a size"},
		{f: jobRunFlags{}, input: "bafyX", err: "--map is required"},
		{f: jobRunFlags{mapSvc: "m"}, input: " ", err: "no input"},
		{f: jobRunFlags{mapSvc: "m", reducers: 3}, input: "bafyX", err: "--reducers needs --reduce"},
		{f: jobRunFlags{mapSvc: "m", reduceSvc: "r", reducers: -1}, input: "bafyX", err: "at least 1"},
		{f: jobRunFlags{mapSvc: "m", verify: 1.5}, input: "bafyX", err: "from 0 to 1"},
	} {
		s, err := tc.f.spec(tc.input)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("spec(%+v, %q) = %+v, %v; want an error saying %q", tc.f, tc.input, s, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("spec(%+v, %q): %v", tc.f, tc.input, err)
		case tc.err == "" && (s.Split.Size != tc.size || s.Map != tc.f.mapSvc || s.Input != strings.TrimSpace(tc.input) || s.Reducers != tc.f.reducers):
			t.Errorf("spec(%+v, %q) = %+v; want split size %d", tc.f, tc.input, s, tc.size)
		}
	}
}

// TestJobCLIHelp: every job command shows an example, and run has the
// flags the issue names.
func TestJobCLIHelp(t *testing.T) {
	root := newRoot(io.Discard)
	for _, path := range [][]string{{"job", "run"}, {"job", "status"}, {"job", "ls"}, {"job", "list"}, {"job", "cancel"}, {"job", "logs"}, {"job", "publish"}} {
		c, _, err := root.Find(path)
		if err != nil || c == root || c.Name() == "job" {
			t.Fatalf("no command %q: %v", path, err)
		}
		if c.Example == "" || c.Short == "" {
			t.Errorf("%s has no example or no short line", c.CommandPath())
		}
	}
	c, _, _ := root.Find([]string{"job", "run"})
	for _, f := range []string{"map", "reduce", "reducers", "split", "budget", "verify-fraction", "detach", "timeout", "published"} {
		if c.Flags().Lookup(f) == nil {
			t.Errorf("nube job run has no --%s", f)
		}
	}
}

// TestJobCLIErrors: bad flags are refused in one line before the CLI
// looks for a daemon; a command with no daemon says so.
func TestJobCLIErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"job", "run", "bafyX"}, "--map is required"},
		{[]string{"job", "run", "--map", "m", "--split", "big", "bafyX"}, "want file, lines, or a size"},
		{[]string{"job", "run", "--map", "m", "--verify-fraction", "2", "bafyX"}, "from 0 to 1"},
		{[]string{"job", "run", "--map", "m"}, "no input"},
		{[]string{"job", "run", "--published", "wc", "bafyX"}, "give no INPUT and no --map"},
		{[]string{"job", "publish", "wc", "bafyX"}, "--map is required"},
		{[]string{"job", "status"}, "accepts 1 arg(s)"},
		{[]string{"job", "ls"}, "no nube daemon is running"},
	} {
		_, errs, code := run(t, append([]string{"--data", dir}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.err) || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("nube %q: %d %q, want one line saying %q", tc.args, code, errs, tc.err)
		}
	}
}

// fakeJobs answers a job watch with the statuses it is given.
type fakeJobs struct{ watch []client.JobStatus }

func (f *fakeJobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v0/job/watch" || r.URL.Query().Get("id") != "j1" {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(client.Error{Code: "not_found", Message: "job not found"})
		return
	}
	enc := json.NewEncoder(w)
	for _, s := range f.watch {
		enc.Encode(s)
	}
}

// TestWaitJob: a job followed to its end prints its result CID (or its
// status with --json); one that failed is an error with its reason.
func TestWaitJob(t *testing.T) {
	running := client.JobStatus{ID: "j1", State: "running", Progress: client.JobProgress{Phase: "map", Tasks: 5, Done: 2, BytesLocal: 3 << 20, BytesFetched: 1 << 20, Nodes: 3}}
	done := client.JobStatus{ID: "j1", State: "done", Result: "bafyRESULT"}
	failed := client.JobStatus{ID: "j1", State: "failed", Error: "job input not found: bafyGONE"}
	f := &fakeJobs{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &client.Client{URL: srv.URL}
	var out, errw strings.Builder
	f.watch = []client.JobStatus{running, done}
	if err := (&globals{out: &out}).waitJob(context.Background(), c, running, &errw); err != nil || out.String() != "bafyRESULT\n" {
		t.Fatalf("waitJob: %v, printed %q", err, out.String())
	}
	out.Reset()
	if err := (&globals{out: &out, json: true}).waitJob(context.Background(), c, running, &errw); err != nil || !strings.Contains(out.String(), `"result": "bafyRESULT"`) {
		t.Fatalf("waitJob --json: %v, printed %q", err, out.String())
	}
	out.Reset()
	f.watch = []client.JobStatus{running, failed}
	if err := (&globals{out: &out}).waitJob(context.Background(), c, running, &errw); err == nil || !strings.Contains(err.Error(), "bafyGONE") || out.Len() != 0 {
		t.Fatalf("waitJob of a failed job: %v, printed %q", err, out.String())
	}
	f.watch = []client.JobStatus{running}
	if err := (&globals{out: &out}).waitJob(context.Background(), c, running, &errw); err == nil || !strings.Contains(err.Error(), "still runs") {
		t.Fatalf("waitJob of a watch cut short: %v", err)
	}
	if l := jobLine(running); !strings.Contains(l, "2/5 tasks") || !strings.Contains(l, "75% local") || !strings.Contains(l, "3 nodes") {
		t.Fatalf("progress line %q", l)
	}
}
