package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/wasmtest"
)

// TestServiceCLI publishes services with the nube binary on one daemon
// and calls them from another that computes nothing, so every run lands
// on the other two nodes.
func TestServiceCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three daemons and compiles modules; skipped in -short mode")
	}
	da, db, dc := t.TempDir(), t.TempDir(), t.TempDir()
	a := startUp(t, da, append([]string{"--api", "127.0.0.1:0"}, loopback...)...)
	b := startUp(t, db, append([]string{"--api", "127.0.0.1:0", "--no-compute", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	c := startUp(t, dc, append([]string{"--api", "127.0.0.1:0", "--compute-slots", "2", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	waitPeers(t, da, 2)
	if out, errs, code := run(t, "--data", db, "connect", c.info.Addrs[0]); code != 0 {
		t.Fatalf("connect b to c: %s %s", out, errs)
	}

	mods := t.TempDir()
	for _, m := range []string{"upper", "wc", "loop"} {
		if err := os.WriteFile(filepath.Join(mods, m+".wasm"), wasmtest.Module(t, m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := run(t, "--data", da, "service", "publish", filepath.Join(mods, "upper.wasm"), "--version", "1.0.0", "--desc", "turns text to upper case")
	if code != 0 || !strings.Contains(out, "published upper@1.0.0") || !strings.Contains(out, "descriptor  bafk") {
		t.Fatalf("publish: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", da, "service", "publish", "-q", filepath.Join(mods, "wc.wasm"), "--name", "wc", "--desc", "counts words")
	if code != 0 || !strings.HasPrefix(out, "bafk") || strings.Count(out, "\n") != 1 {
		t.Fatalf("publish -q: %d %q %s", code, out, errs)
	}
	wcCID := strings.TrimSpace(out)
	if _, errs, code = run(t, "--data", da, "service", "publish", filepath.Join(mods, "loop.wasm")); code != 0 {
		t.Fatalf("publish loop: %s", errs)
	}
	if _, errs, code := run(t, "--data", da, "service", "publish", filepath.Join(mods, "upper.wasm"), "--name", "Bad Name"); code == 0 || !strings.Contains(errs, "lower-case") {
		t.Fatalf("publish with a bad name: %d %s", code, errs)
	}

	// ls and info from b, which has never seen them.
	out, errs, code = run(t, "--data", db, "service", "ls", "upper", "case")
	if code != 0 || !strings.Contains(out, "upper") || !strings.Contains(out, "1.0.0") || strings.Contains(out, "counts words") {
		t.Fatalf("service ls upper case: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", db, "service", "info", "--json", "wc")
	var info client.ServiceInfo
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.CID != wcCID || info.Publisher == "" || len(info.Runners) == 0 {
		t.Fatalf("service info wc: %d %s %s", code, out, errs)
	}

	// A call from b, which computes nothing, on two nodes at once.
	out, errs, code = runIn(t, "hello nube\n", "--data", db, "call", "upper", "--n", "2", "--json")
	if code != 0 {
		t.Fatalf("call --n 2: %d %s %s", code, out, errs)
	}
	seen := map[string]bool{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r client.CallResult
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Error != "" || string(r.Output) != "HELLO NUBE\n" {
			t.Fatalf("result from %s: %q %s", r.Peer, r.Output, r.Error)
		}
		seen[r.Peer] = true
	}
	if len(seen) != 2 || !seen[a.info.ID] || !seen[c.info.ID] || seen[b.info.ID] {
		t.Fatalf("answers came from %v; want a and c, never b (--no-compute)", seen)
	}
	out, errs, code = runIn(t, "one two\n", "--data", db, "call", "upper", "--n", "2")
	if code != 0 || strings.Count(out, "== ") != 2 || strings.Count(out, "ONE TWO\n") != 2 {
		t.Fatalf("call --n 2 as text: %d %s %s", code, out, errs)
	}

	// --on picks the node.
	out, errs, code = runIn(t, "x", "--data", db, "call", "upper", "--on", c.info.ID, "--json")
	var one client.CallResult
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || one.Peer != c.info.ID || string(one.Output) != "X" {
		t.Fatalf("call --on c: %d %s %s", code, out, errs)
	}

	// A pipeline, as one argument or several.
	for _, args := range [][]string{{"upper | wc"}, {"upper", "|", wcCID}} {
		out, errs, code = runIn(t, "a b A\n", append([]string{"--data", db, "call"}, args...)...)
		if code != 0 || out != "A 2\nB 1\n" {
			t.Fatalf("call %q: %d %q %s", args, code, out, errs)
		}
	}

	// Errors are one line and a non-zero exit.
	_, errs, code = runIn(t, "", "--data", db, "call", "loop", "--timeout", "200ms")
	if code == 0 || !strings.Contains(errs, "time limit exceeded") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("call loop: %d %q", code, errs)
	}
	_, errs, code = runIn(t, "", "--data", db, "call", "nosuch")
	if code == 0 || !strings.Contains(errs, "not found") {
		t.Fatalf("call nosuch: %d %q", code, errs)
	}
	_, errs, code = runIn(t, "", "--data", db, "call", "upper", "--memory", "lots")
	if code == 0 || !strings.Contains(errs, "not a size") {
		t.Fatalf("call --memory lots: %d %q", code, errs)
	}

	// The nodes that ran the calls list them, with their cost.
	out, errs, code = run(t, "--data", dc, "service", "runs", "--json")
	var runs []struct {
		Service string `json:"service"`
		Caller  string `json:"caller"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &runs) != nil || len(runs) == 0 || runs[0].Caller != b.info.ID {
		t.Fatalf("service runs on c: %d %s %s", code, out, errs)
	}
}

// TestModuleEscapes runs a module whose stderr holds terminal escapes and
// several lines: the CLI shows them escaped, the error on stderr and the
// runs table alike, and the table keeps one line per run.
func TestModuleEscapes(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a module; skipped in -short mode")
	}
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	mod := filepath.Join(t.TempDir(), "shout.wasm")
	if err := os.WriteFile(mod, wasmtest.Module(t, "shout"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(t, "--data", d, "service", "publish", mod, "--desc", "red\x1b[31m alert\nnext"); code != 0 {
		t.Fatalf("publish: %s", errs)
	}
	_, errs, code := runIn(t, "x", "--data", d, "call", "shout")
	if code == 0 || strings.ContainsAny(errs, "\x1b\x07\r") || !strings.Contains(errs, `\x1b[2J`) {
		t.Fatalf("call shout: exit %d, stderr %q: want its escapes shown, not obeyed", code, errs)
	}
	out, errs, code := run(t, "--data", d, "service", "runs")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || strings.ContainsAny(out, "\x1b\x07\r") || !strings.Contains(lines[1], `\x1b`) {
		t.Fatalf("service runs: %d %q %s: want a header and one escaped line", code, out, errs)
	}
	out, _, _ = run(t, "--data", d, "service", "ls")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.Contains(out, "\x1b") {
		t.Fatalf("service ls: %q: want a header and one escaped line", out)
	}
}

// TestCallAllowCLI calls a module that reads a space, with and without
// --allow, near its data, with its output left as content, and verified
// on two nodes, all through the nube binary on two daemons.
func TestCallAllowCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons and compiles modules; skipped in -short mode")
	}
	da, dc := t.TempDir(), t.TempDir()
	a := startUp(t, da, append([]string{"--api", "127.0.0.1:0"}, loopback...)...)
	c := startUp(t, dc, append([]string{"--api", "127.0.0.1:0", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	waitPeers(t, da, 1)
	mods := t.TempDir()
	for name, code := range map[string][]byte{"space-wc": wasmtest.Example(t, "space-wc"), "upper": wasmtest.Module(t, "upper")} {
		if err := os.WriteFile(filepath.Join(mods, name+".wasm"), code, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, errs, code := run(t, "--data", da, "service", "publish", filepath.Join(mods, "space-wc.wasm"), "--want", "space:read"); code != 0 {
		t.Fatalf("publish space-wc: %s", errs)
	}
	if _, errs, code := run(t, "--data", da, "service", "publish", filepath.Join(mods, "upper.wasm"), "--name", "det-upper", "--deterministic"); code != 0 {
		t.Fatalf("publish det-upper: %s", errs)
	}
	if _, errs, code := run(t, "--data", da, "space", "create", "notes"); code != 0 {
		t.Fatalf("space create: %s", errs)
	}
	if _, errs, code := runIn(t, "buy milk and eggs", "--data", da, "space", "put", "notes", "todo"); code != 0 {
		t.Fatalf("space put: %s", errs)
	}
	in := a.info.UserID + "/notes todo\n"

	_, errs, code := runIn(t, in, "--data", da, "call", "space-wc", "--on", c.info.ID)
	if code == 0 || !strings.Contains(errs, "--allow space:") {
		t.Fatalf("a call with no grant: %d %s", code, errs)
	}
	out, errs, code := runIn(t, in, "--data", da, "call", "space-wc", "--on", c.info.ID, "--allow", "space:notes:read")
	if code != 0 || strings.TrimSpace(out) != "4" {
		t.Fatalf("call --allow: %d %q %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", dc, "service", "runs")
	if code != 0 || !strings.Contains(out, "read 1 keys") || !strings.Contains(out, "allowed space:"+a.info.UserID+"/notes:read") {
		t.Fatalf("service runs on the runner: %d %s %s", code, out, errs)
	}
	// Near the space: it runs on a, its home, which says nothing more.
	out, errs, code = runIn(t, in, "--data", da, "call", "space-wc", "--allow", "space:notes:read", "--near", "notes", "--json")
	var r client.CallResult
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Peer != a.info.ID || !r.Near {
		t.Fatalf("call --near: %d %s %s", code, out, errs)
	}
	out, errs, code = runIn(t, "left here", "--data", da, "call", "det-upper", "--on", c.info.ID, "--out-cid")
	if code != 0 || !strings.HasPrefix(out, "bafk") {
		t.Fatalf("call --out-cid: %d %q %s", code, out, errs)
	}
	if got, errs, code := run(t, "--data", da, "cat", strings.TrimSpace(out)); code != 0 || got != "LEFT HERE" {
		t.Fatalf("cat of the output's CID: %d %q %s", code, got, errs)
	}
	out, errs, code = runIn(t, "same", "--data", da, "call", "det-upper", "--verify", "2")
	if code != 0 || out != "SAME" || !strings.Contains(errs, "2 nodes gave the same output") {
		t.Fatalf("call --verify 2: %d %q %s", code, out, errs)
	}
	// --cached: the first call runs on a, the second returns a's record.
	// (c is another user's node: its record would count only with
	// --verify.)
	for i, want := range []bool{false, true} {
		out, errs, code = runIn(t, "memo", "--data", da, "call", "det-upper", "--on", a.info.ID, "--cached")
		if code != 0 || out != "MEMO" || strings.Contains(errs, "nothing ran: the output is "+a.info.ID) != want {
			t.Fatalf("call --cached, time %d: %d %q %s", i+1, code, out, errs)
		}
	}
	// A run lent a space is never memoized: after a write, --cached
	// reads the new version.
	out, errs, code = runIn(t, in, "--data", da, "call", "space-wc", "--on", a.info.ID, "--allow", "space:notes:read", "--cached")
	if code != 0 || strings.TrimSpace(out) != "4" || strings.Contains(errs, "nothing ran") {
		t.Fatalf("call --cached of a run lent a space: %d %q %s", code, out, errs)
	}
	if _, errs, code := runIn(t, "buy bread", "--data", da, "space", "put", "notes", "todo"); code != 0 {
		t.Fatalf("space put: %s", errs)
	}
	out, errs, code = runIn(t, in, "--data", da, "call", "space-wc", "--on", a.info.ID, "--allow", "space:notes:read", "--cached")
	if code != 0 || strings.TrimSpace(out) != "2" || strings.Contains(errs, "nothing ran") {
		t.Fatalf("call --cached after a write to the space it reads: %d %q %s", code, out, errs)
	}
	if _, errs, code := runIn(t, "x", "--data", da, "call", "space-wc", "--verify", "2"); code == 0 || !strings.Contains(errs, "deterministic") {
		t.Fatalf("--verify of a service not declared deterministic: %d %s", code, errs)
	}
	if _, errs, code := runIn(t, "x", "--data", da, "call", "upper", "--allow", "file:/etc/passwd"); code == 0 || !strings.Contains(errs, "space:OWNER/NAME") {
		t.Fatalf("--allow of an unknown kind: %d %s", code, errs)
	}
}

// TestCallMemoryOverMax asks for more memory than any node lets one run
// use: the CLI refuses it at once, naming the most, before it looks for a
// daemon (there is none here).
func TestCallMemoryOverMax(t *testing.T) {
	_, errs, code := runIn(t, "", "--data", t.TempDir(), "call", "upper", "--memory", "1GiB")
	if code == 0 || !strings.Contains(errs, "--memory 1GiB") || !strings.Contains(errs, "256 MiB") {
		t.Fatalf("call --memory 1GiB: %d %q", code, errs)
	}
}
