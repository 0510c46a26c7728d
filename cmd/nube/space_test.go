package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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
	if out, _, code := run(t, "--data", a, "space", "list", "notes", "todo/", "--json"); code != 0 || !strings.Contains(out, `"key": "todo/1"`) {
		t.Fatalf("space list NAME: %d %s", code, out)
	}
	// list with no space lists the spaces; ls, the old word for the keys,
	// still lists them, and with no space lists the spaces as list does.
	if out, _, code := run(t, "--data", a, "space", "list", "--json"); code != 0 || !strings.Contains(out, `"name": "notes"`) || strings.Contains(out, "todo/1") {
		t.Fatalf("space list: %d %s", code, out)
	}
	if out, _, code := run(t, "--data", a, "space", "ls", "notes", "todo/", "--json"); code != 0 || !strings.Contains(out, `"key": "todo/1"`) {
		t.Fatalf("space ls (old word): %d %s", code, out)
	}
	if out, _, code := run(t, "--data", a, "space", "ls"); code != 0 || !strings.Contains(out, "notes") || strings.Contains(out, "todo/1") {
		t.Fatalf("space ls with no space: %d %s", code, out)
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

// TestSpaceGetKeepsFileOnFailure: 'space get -o FILE' of a value whose
// blocks are damaged on disk fails and leaves FILE as it was, with no part
// file beside it.
func TestSpaceGetKeepsFileOnFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a daemon; skipped in -short mode")
	}
	a := t.TempDir()
	args := append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)
	d := startUp(t, a, args...)
	if _, errs, code := run(t, "--data", a, "space", "create", "notes", "--local"); code != 0 {
		t.Fatalf("space create: %d %s", code, errs)
	}
	value := make([]byte, 4<<20)
	rand.Read(value)
	if _, errs, code := runIn(t, string(value), "--data", a, "space", "put", "notes", "big"); code != 0 {
		t.Fatalf("space put: %d %s", code, errs)
	}
	d.stop(t)

	// Damage the middle of the largest pack: the value's blocks.
	var pack string
	var size int64
	filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".pack") {
			if fi, err := e.Info(); err == nil && fi.Size() > size {
				pack, size = p, fi.Size()
			}
		}
		return nil
	})
	if size < int64(len(value)) {
		t.Fatalf("no pack holds the value (largest %q, %d bytes)", pack, size)
	}
	f, err := os.OpenFile(pack, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := size / 2; off < size/2+4096; off += 512 {
		b := []byte{0}
		f.ReadAt(b, off)
		b[0] ^= 0xff
		f.WriteAt(b, off)
	}
	f.Close()

	startUp(t, a, args...)
	dst := filepath.Join(t.TempDir(), "precious.txt")
	if err := os.WriteFile(dst, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(t, "--data", a, "space", "get", "notes", "big", "-o", dst); code == 0 {
		t.Fatalf("space get of a damaged value succeeded: %s", errs)
	}
	if got, _ := os.ReadFile(dst); string(got) != "precious" {
		t.Fatalf("after a failed space get, %s holds %d bytes, want what was there", dst, len(got))
	}
	if parts, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".*part*")); len(parts) > 0 {
		t.Fatalf("part files left behind: %v", parts)
	}
}
