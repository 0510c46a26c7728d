package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
)

// TestSpaceCLI drives a space through two daemons: create it on A placed
// on B, write and read it, grant B's user, read from B, migrate it back
// to A alone, and check B let go.
func TestSpaceCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons; skipped in -short mode")
	}
	a, b := t.TempDir(), t.TempDir()
	da := startUp(t, a, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	db := startUp(t, b, append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", da.info.Addrs[0]}, loopback...)...)
	waitPeers(t, a, 1)

	if out, errs, code := run(t, "--data", a, "space", "create", "notes", "--on", db.info.ID); code != 0 || !strings.Contains(out, "placement  on "+db.info.ID) {
		t.Fatalf("space create: %d %s %s", code, out, errs)
	}
	if _, errs, code := runIn(t, "remember the milk", "--data", a, "space", "put", "notes", "todo/1"); code != 0 {
		t.Fatalf("space put: %d %s", code, errs)
	}
	if out, errs, code := run(t, "--data", a, "space", "get", "notes", "todo/1"); code != 0 || out != "remember the milk" {
		t.Fatalf("space get: %d %q %s", code, out, errs)
	}
	if out, _, code := run(t, "--data", a, "space", "ls", "notes", "todo/", "--json"); code != 0 || !strings.Contains(out, `"key": "todo/1"`) {
		t.Fatalf("space ls: %d %s", code, out)
	}
	ref := da.info.UserID + "/notes"
	if _, errs, code := run(t, "--data", b, "space", "get", ref, "todo/1"); code == 0 || !strings.Contains(errs, "not authorised") {
		t.Fatalf("get without a grant: %d %s", code, errs)
	}
	if out, errs, code := run(t, "--data", a, "space", "grant", "notes", db.info.UserID, "--read", "--until", "24h"); code != 0 || !strings.Contains(out, "nubegrant1:") {
		t.Fatalf("space grant: %d %s %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", b, "space", "get", ref, "todo/1"); code != 0 || out != "remember the milk" {
		t.Fatalf("get with a grant: %d %q %s", code, out, errs)
	}
	// B watches A's space; A writes until B has seen a put (the watch
	// starts from the version it first resolves).
	w := exec.Command(bin, "--data", b, "space", "watch", ref, "--json")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { w.Process.Kill(); w.Wait() }()
	events := make(chan client.SpaceEvent, 16)
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var ev client.SpaceEvent
			if dec.Decode(&ev) != nil {
				close(events)
				return
			}
			events <- ev
		}
	}()
	seen := false
	for i := 0; !seen && i < 60; i++ {
		key := fmt.Sprintf("watched/%d", i)
		if _, errs, code := runIn(t, "x", "--data", a, "space", "put", "notes", key); code != 0 {
			t.Fatalf("put %s: %s", key, errs)
		}
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("space watch ended")
			}
			if ev.Op != "put" || !strings.HasPrefix(ev.Key, "watched/") {
				t.Fatalf("watch printed %+v", ev)
			}
			seen = true
		case <-time.After(time.Second): // not subscribed yet: write again
		}
	}
	if !seen {
		t.Fatal("space watch never printed a put")
	}

	out, _, code := run(t, "--data", b, "space", "holdings", "--json")
	var hs []client.SpaceHolding
	if code != 0 || json.Unmarshal([]byte(out), &hs) != nil || len(hs) != 1 || hs[0].Space != ref {
		t.Fatalf("holdings on B: %d %s", code, out)
	}
	if out, errs, code := run(t, "--data", a, "space", "migrate", "notes", "--local"); code != 0 || !strings.Contains(out, "placement  local") {
		t.Fatalf("space migrate: %d %s %s", code, out, errs)
	}
	out, _, code = run(t, "--data", b, "space", "holdings", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &hs) != nil || len(hs) != 0 {
		t.Fatalf("holdings on B after migrating away: %d %s", code, out)
	}
	if out, errs, code := run(t, "--data", b, "space", "get", ref, "todo/1"); code != 0 || out != "remember the milk" {
		t.Fatalf("get after migration: %d %q %s", code, out, errs)
	}
	if _, errs, code := run(t, "--data", a, "space", "create", "bad/name"); code == 0 || !strings.Contains(errs, "space name") {
		t.Fatalf("a bad name: %d %s", code, errs)
	}
}
