//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
)

// runInDir runs a nube command in dir and returns its stdout, stderr and
// exit code.
func runInDir(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
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
