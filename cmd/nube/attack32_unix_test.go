//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/nubecloud/nube/nubetest"
)

// runInDir runs a nube command in dir and returns its stdout, stderr and
// exit code.
func runInDir(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runAt(t, dir, "", args...)
}

// TestGetDefaultOutFollowsPlantedSymlink: 'nube get CID' with no -o saves
// a directory under the name of its CID in the current directory. The
// attacker chose the CID and so knows that name: in a shared directory
// (/tmp) another user plants a symlink of that name to the victim's
// directory, and get writes the DAG's files into it and puts the DAG's
// mode (0777 here) on it. The user never named that path; get's help says
// it never follows a symlink on the way to what it writes, "whether the
// directory made it or it was there before".
func TestGetDefaultOutFollowsPlantedSymlink(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	base := t.TempDir()
	shared, victim := filepath.Join(base, "shared"), filepath.Join(base, "victim")
	for _, p := range []string{shared, victim} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o700)
	}
	g := nubetest.NewDAG(t)
	root := g.DirMode(0o777, "pwned", g.File("x", 0o666))
	if _, errs, code := runIn(t, string(g.CAR(root)), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	c := root.Cid().String()
	if err := os.Symlink(victim, filepath.Join(shared, c)); err != nil { // planted by another user
		t.Fatal(err)
	}
	_, errs, code := runInDir(t, shared, "--data", d, "get", "-q", c)
	t.Logf("get: exit %d, %q", code, errs)
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Errorf("get wrote through a symlink it did not make and the user did not name: the victim directory holds %v", ents)
	}
	if m := mode(t, victim); m != 0o700 {
		t.Errorf("get put the DAG's mode on the victim directory through a planted symlink: %v", m)
	}
}

// TestLsNamesAreTerminalSafe: 'nube ls' of a stranger's directory prints
// its link names as they are, so a name holding terminal control
// sequences (an OSC 52 write to the clipboard, a carriage return that
// paints a fake line over the real one, a newline that adds a fake entry)
// reaches the user's terminal. 'nube space ls' passes keys through
// termsafe.Line; content ls does not.
func TestLsNamesAreTerminalSafe(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	g := nubetest.NewDAG(t)
	root := g.Dir(
		"a\x1b]52;c;Y3VybCBldmlsfHNo\x07", g.File("x"),
		"b\rbafyfake        1 B  harmless.txt", g.File("y"),
		"c\nbafyfake        1 B  also-fake", g.File("z"),
	)
	if _, errs, code := runIn(t, string(g.CAR(root)), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	out, errs, code := run(t, "--data", d, "ls", root.Cid().String())
	if code != 0 {
		t.Fatalf("ls: exit %d, %s", code, errs)
	}
	if strings.ContainsAny(out, "\x1b\r\x07") {
		t.Errorf("ls printed control characters from a stranger's names: %q", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("ls printed %d lines for 3 entries: %q", n, out)
	}
}

// TestGetDefaultOutFileReplacesPlantedSymlink: a file saved under its
// default name (the CID, or the path's last name) where another user
// planted a symlink replaces the link; the link's target is untouched.
func TestGetDefaultOutFileReplacesPlantedSymlink(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	g := nubetest.NewDAG(t)
	file := g.File("from the DAG", 0o666)
	root := g.Dir("x", file)
	if _, errs, code := runIn(t, string(g.CAR(root)), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	for _, arg := range []string{file.Cid().String(), root.Cid().String() + "/x"} {
		base := t.TempDir()
		shared, victim := filepath.Join(base, "shared"), filepath.Join(base, "victim.txt")
		if err := os.Mkdir(shared, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(victim, []byte("original"), 0o600); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(shared, filepath.Base(arg))
		if err := os.Symlink(victim, name); err != nil {
			t.Fatal(err)
		}
		if _, errs, code := runInDir(t, shared, "--data", d, "get", "-q", arg); code != 0 {
			t.Fatalf("get %s: exit %d, %s", arg, code, errs)
		}
		if b, _ := os.ReadFile(victim); string(b) != "original" || mode(t, victim) != 0o600 {
			t.Errorf("get %s wrote through a planted symlink: the victim holds %q, mode %v", arg, b, mode(t, victim))
		}
		if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Errorf("get %s: %s is %v (%v), want a file of mode 0644 (the DAG's 0666 less group and other write)", arg, name, fi.Mode(), err)
		}
	}
}

// TestGetKeepsModeOfDirThere: 'nube get -o DIR' into a directory that was
// there keeps its mode: a DAG's 0777 would let every local user write in
// the user's tree. A directory get makes takes the DAG's mode less group
// and other write, and so do files.
func TestGetKeepsModeOfDirThere(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	g := nubetest.NewDAG(t)
	root := g.DirMode(0o777, "f", g.File("x", 0o666), "sub", g.DirMode(0o777, "y", g.File("y")))
	if _, errs, code := runIn(t, string(g.CAR(root)), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	there := t.TempDir()
	os.Chmod(there, 0o700)
	if _, errs, code := runInDir(t, there, "--data", d, "get", "-q", "-o", ".", root.Cid().String()); code != 0 {
		t.Fatalf("get -o .: exit %d, %s", code, errs)
	}
	made := filepath.Join(t.TempDir(), "new")
	if _, errs, code := run(t, "--data", d, "get", "-q", "-o", made, root.Cid().String()); code != 0 {
		t.Fatalf("get -o new: exit %d, %s", code, errs)
	}
	for p, want := range map[string]os.FileMode{
		there:                        0o700,
		filepath.Join(there, "f"):    0o644,
		filepath.Join(there, "sub"):  0o755,
		made:                         0o755,
		filepath.Join(made, "sub"):   0o755,
		filepath.Join(made, "sub/y"): 0o644 &^ umask(t),
	} {
		if m := mode(t, p); m != want {
			t.Errorf("%s: %v, want %v", p, m, want)
		}
	}
}

// umask is the process's umask, read by making a file.
func umask(t *testing.T) os.FileMode {
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ mode(t, p)
}

// TestGetStopsDAGBomb: a DAG of a few nodes, each directory linking the
// one below ten times, stands for 10,000 files; get stops at --max-size
// or --max-entries, with a message that names the flag, long before.
func TestGetStopsDAGBomb(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	g := nubetest.NewDAG(t)
	var n any = g.File(strings.Repeat("x", 1024))
	for range 4 {
		var links []any
		for i := range 10 {
			links = append(links, fmt.Sprintf("n%d", i), n)
		}
		n = g.Dir(links...)
	}
	root := n.(interface{ Cid() cid.Cid })
	if _, errs, code := runIn(t, string(g.CAR(n.(ipld.Node))), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	for _, tc := range []struct{ flag, value string }{{"--max-size", "64KiB"}, {"--max-entries", "100"}, {"--max-depth", "2"}} {
		out := filepath.Join(t.TempDir(), "bomb")
		_, errs, code := run(t, "--data", d, "get", "-q", tc.flag, tc.value, "-o", out, root.Cid().String())
		if code == 0 || !strings.Contains(errs, tc.flag) || !strings.Contains(errs, "over a limit") {
			t.Errorf("%s %s: exit %d, %q; want a failure that names %s", tc.flag, tc.value, code, errs, tc.flag)
		}
		var files, bytes int64
		filepath.WalkDir(out, func(_ string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				fi, _ := e.Info()
				files, bytes = files+1, bytes+fi.Size()
			}
			return nil
		})
		if files > 100 || bytes > 100<<10 {
			t.Errorf("%s %s: wrote %d files, %d bytes", tc.flag, tc.value, files, bytes)
		}
	}
}
