package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubecloud/nube/api/client"
)

// TestNamesCLI: key gen and list, name publish on one daemon and resolve
// on another, and a raw record carried from one to the other by routing
// get and put.
func TestNamesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two daemons; skipped in -short mode")
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	a := startUp(t, dirs[0], append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	startUp(t, dirs[1], append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	waitPeers(t, dirs[0], 1)

	file := filepath.Join(t.TempDir(), "hello.txt")
	os.WriteFile(file, []byte("hello, names\n"), 0o600)
	out, errs, code := run(t, "--data", dirs[0], "add", "-q", file)
	if code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errs)
	}
	cid := strings.TrimSpace(out)

	out, errs, code = run(t, "--data", dirs[0], "key", "gen", "site")
	if code != 0 || !strings.HasPrefix(out, "k51") {
		t.Fatalf("key gen: %d %s %s", code, out, errs)
	}
	site := strings.TrimSpace(out)
	out, _, code = run(t, "--data", dirs[0], "key", "ls", "--json")
	var keys []client.Key
	if code != 0 || json.Unmarshal([]byte(out), &keys) != nil || len(keys) != 2 || keys[0].Name != "self" || keys[1].ID != site {
		t.Fatalf("key ls: %d %s", code, out)
	}
	out, errs, code = run(t, "--data", dirs[0], "name", "publish", "--key", "site", "--ttl", "1m", cid, "--json")
	var p client.NamePublished
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.Name != site || p.TTL != "1m0s" {
		t.Fatalf("name publish: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", dirs[1], "name", "resolve", site)
	if code != 0 || strings.TrimSpace(out) != "/ipfs/"+cid {
		t.Fatalf("name resolve on the other node: %d %q %s", code, out, errs)
	}
	rec, errs, code := run(t, "--data", dirs[1], "routing", "get", "/ipns/"+site)
	if code != 0 || len(rec) == 0 {
		t.Fatalf("routing get: %d %s", code, errs)
	}
	if out, errs, code := runIn(t, rec, "--data", dirs[1], "routing", "put", "/ipns/"+site); code != 0 {
		t.Fatalf("routing put: %d %s %s", code, out, errs)
	}
	if _, errs, code := runIn(t, rec, "--data", dirs[1], "routing", "put", "/ipns/"+keys[0].ID); code == 0 || !strings.Contains(errs, "IPNS record") {
		t.Fatalf("routing put under another name: %d %s", code, errs)
	}
	// A space published as a site.
	if out, errs, code := run(t, "--data", dirs[0], "space", "create", "www", "--local"); code != 0 {
		t.Fatalf("space create: %d %s %s", code, out, errs)
	}
	if out, errs, code := runIn(t, "<h1>hi</h1>", "--data", dirs[0], "space", "put", "www", "index.html"); code != 0 {
		t.Fatalf("space put: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", dirs[0], "space", "publish", "www", "--key", "site", "--json")
	var sp client.SitePublished
	if code != 0 || json.Unmarshal([]byte(out), &sp) != nil || sp.Name != site {
		t.Fatalf("space publish: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", dirs[1], "name", "resolve", "/ipns/"+site+"/index.html")
	if code != 0 || strings.TrimSpace(out) != "/ipfs/"+sp.Root+"/index.html" {
		t.Fatalf("resolve the site: %d %q %s", code, out, errs)
	}
	if out, errs, code := run(t, "--data", dirs[0], "key", "rm", "site"); code != 0 {
		t.Fatalf("key rm: %d %s %s", code, out, errs)
	}
}
