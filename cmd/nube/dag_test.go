package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nubecloud/nube/api/client"
)

// TestDagExportImport moves a directory between two daemons as a CAR file:
// B exports what A added (fetching it), forgets it, and with A gone
// imports the file and reads the directory back from it alone. A file that
// is no CAR is refused, saying so.
func TestDagExportImport(t *testing.T) {
	da, db := t.TempDir(), t.TempDir()
	a := startUp(t, da, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	startUp(t, db, append([]string{"--api", "127.0.0.1:0", "--gateway", "off", "--bootstrap", a.info.Addrs[0]}, loopback...)...)
	waitPeers(t, db, 1)

	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello from a CAR\n"), 0o644)
	os.Mkdir(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "more.txt"), []byte("more\n"), 0o644)
	out, errs, code := run(t, "--data", da, "add", "-r", "-q", src)
	if code != 0 {
		t.Fatalf("add: %d %s", code, errs)
	}
	root := strings.TrimSpace(out)

	carPath := filepath.Join(t.TempDir(), "site.car")
	if out, errs, code := run(t, "--data", db, "dag", "export", "-o", carPath, root); code != 0 || !strings.Contains(out, "saved "+carPath) {
		t.Fatalf("dag export -o: %d %q %s", code, out, errs)
	}
	stdout, errs, code := run(t, "--data", db, "dag", "export", root)
	if code != 0 {
		t.Fatalf("dag export to stdout: %d %s", code, errs)
	}
	file, err := os.ReadFile(carPath)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(file) {
		t.Fatal("the CAR on stdout differs from the one written with -o")
	}

	// B forgets it all, and A goes away: only the file has it now.
	a.stop(t)
	if _, errs, code := run(t, "--data", db, "gc"); code != 0 {
		t.Fatalf("gc: %s", errs)
	}
	out, errs, code = run(t, "--data", db, "dag", "import", "--json", carPath)
	if code != 0 {
		t.Fatalf("dag import: %d %s", code, errs)
	}
	var res client.ImportResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Roots) != 1 || res.Roots[0] != root || !res.Pinned || res.Blocks != 4 {
		t.Fatalf("dag import: %+v, want root %s pinned, 4 blocks (two directories, two files)", res, root)
	}
	if out, errs, code := run(t, "--data", db, "cat", "--timeout", "5s", root+"/sub/more.txt"); code != 0 || out != "more\n" {
		t.Fatalf("cat after import: %d %q %s", code, out, errs)
	}

	// The same file from stdin imports again; a text file does not.
	if out, errs, code := runIn(t, string(file), "--data", db, "dag", "import", "-q", "-"); code != 0 || strings.TrimSpace(out) != root {
		t.Fatalf("dag import from stdin: %d %q %s", code, out, errs)
	}
	if _, errs, code := runIn(t, "not a CAR file", "--data", db, "dag", "import"); code == 0 || !strings.Contains(errs, "bad CAR file") {
		t.Fatalf("dag import of a text file: %d %q", code, errs)
	}
}
