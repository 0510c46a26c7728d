//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/nubetest"
)

// Unix permissions and signals: these tests build only where they exist.

// TestGetPermissions: nube get writes files and directories with the
// permissions new ones get here (0644 and 0755 less the umask), not a
// temporary file's 0600, and a second get into the same place, links
// included, does the same.
func TestGetPermissions(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	src := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(filepath.Join(src, "css"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "css", "a.css"), []byte("body{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("css/a.css", filepath.Join(src, "style.css")); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "--data", d, "add", "-r", "-q", src)
	if code != 0 {
		t.Fatalf("add: %s", errs)
	}
	root := strings.TrimSpace(out)
	file := root + "/css/a.css"

	// What a new file and directory get here, under this umask (the
	// nube process inherits it).
	probe := t.TempDir()
	f, err := os.OpenFile(filepath.Join(probe, "f"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Mkdir(filepath.Join(probe, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantFile, wantDir := mode(t, filepath.Join(probe, "f")), mode(t, filepath.Join(probe, "d"))

	dst := t.TempDir()
	for i := range 2 {
		if _, errs, code := run(t, "--data", d, "get", "-q", "-o", filepath.Join(dst, "site"), root); code != 0 {
			t.Fatalf("get %d of a directory: %s", i+1, errs)
		}
		if _, errs, code := run(t, "--data", d, "get", "-q", "-o", filepath.Join(dst, "a.css"), file); code != 0 {
			t.Fatalf("get %d of a file: %s", i+1, errs)
		}
		for p, want := range map[string]os.FileMode{
			"site": wantDir, "site/css": wantDir, "site/css/a.css": wantFile, "a.css": wantFile,
		} {
			if got := mode(t, filepath.Join(dst, p)); got != want {
				t.Errorf("get %d: %s has mode %v, want %v", i+1, p, got, want)
			}
		}
		if target, err := os.Readlink(filepath.Join(dst, "site", "style.css")); err != nil || target != "css/a.css" {
			t.Errorf("get %d: the link is %q, %v", i+1, target, err)
		}
	}
	if ents, _ := filepath.Glob(filepath.Join(dst, "site", "css", ".*part*")); len(ents) > 0 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestInterrupt: Ctrl-C (SIGINT) ends a command that waits on the network
// with one short line and exit status 130, not the HTTP call it cut short.
func TestInterrupt(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	h, err := mh.Sum([]byte(t.Name()+time.Now().String()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--data", d, "cat", "--timeout", "0", cid.NewCidV1(cid.Raw, h).String())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until the daemon serves the cat: the command has its signal
	// handler by then. The daemon's profiler lists its goroutines.
	c, err := client.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx := nubetest.Context(t, time.Minute)
	nubetest.Eventually(t, ctx, func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.URL+"/debug/pprof/goroutine?debug=2", nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return bytes.Contains(b, []byte("handleCat"))
	}, func() string { return "the daemon never served the cat" })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || errb.String() != "nube: interrupted\n" {
		t.Fatalf("after Ctrl-C: %v, stderr %q; want exit 130 and one line", err, errb.String())
	}
}

// TestGetKeepsUnixFSMode imports a directory whose DAG carries modes and
// times (UnixFS 1.5, as 'ipfs add --preserve-mode --preserve-mtime'
// writes), then gets it: the directory and the file get those, not the
// defaults, and a set-uid bit in the DAG is dropped.
func TestGetKeepsUnixFSMode(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	when := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	v1 := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	node := func(fsn *ft.FSNode) *mdag.ProtoNode {
		b, err := fsn.GetBytes()
		if err != nil {
			t.Fatal(err)
		}
		n := mdag.NodeWithData(b)
		n.SetCidBuilder(v1)
		return n
	}
	file := ft.NewFSNode(ft.TFile)
	file.SetData([]byte("kept private\n"))
	file.SetModeFromUnixPermissions(0o4600) // set-uid, which must not survive
	file.SetModTime(when)
	fileNode := node(file)
	dir := ft.NewFSNode(ft.TDirectory)
	dir.SetMode(0o750)
	dir.SetModTime(when.Add(time.Hour))
	dirNode := node(dir)
	if err := dirNode.AddNodeLink("secret.txt", fileNode); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	w, err := storage.NewWritable(&car, []cid.Cid{dirNode.Cid()}, carv2.WriteAsCarV1(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*mdag.ProtoNode{dirNode, fileNode} {
		if err := w.Put(context.Background(), n.Cid().KeyString(), n.RawData()); err != nil {
			t.Fatal(err)
		}
	}
	if _, errs, code := runIn(t, car.String(), "--data", d, "dag", "import", "-q"); code != 0 {
		t.Fatalf("dag import: %s", errs)
	}
	out := filepath.Join(t.TempDir(), "got")
	if _, errs, code := run(t, "--data", d, "get", "-q", "-o", out, dirNode.Cid().String()); code != 0 {
		t.Fatalf("get: %s", errs)
	}
	for p, want := range map[string]struct {
		mode  fs.FileMode
		mtime time.Time
	}{
		out:                              {fs.ModeDir | 0o750, when.Add(time.Hour)},
		filepath.Join(out, "secret.txt"): {0o600, when},
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want.mode || !fi.ModTime().Equal(want.mtime) {
			t.Errorf("%s: %v %v, want %v %v", p, fi.Mode(), fi.ModTime().UTC(), want.mode, want.mtime)
		}
	}
	// The file alone, too.
	one := filepath.Join(t.TempDir(), "one")
	if _, errs, code := run(t, "--data", d, "get", "-q", "-o", one, fileNode.Cid().String()); code != 0 {
		t.Fatalf("get the file: %s", errs)
	}
	if fi, err := os.Stat(one); err != nil || fi.Mode() != 0o600 || !fi.ModTime().Equal(when) {
		t.Errorf("the file alone: %v %v (%v)", fi.Mode(), fi.ModTime().UTC(), err)
	}
}

// TestHandOverFiles: on the node's machine the CLI hands the node the file
// it adds and the file a get or a cat into a file writes, and the results
// are those of sending the bytes; with the node's socket gone, it sends
// them as before.
func TestHandOverFiles(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	if _, err := os.Stat(filepath.Join(d, client.HandoffFile)); err != nil {
		t.Fatalf("the daemon listens for no files: %v", err)
	}
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i*31 + i>>12)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	check := func(p string) {
		t.Helper()
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: %d bytes, %v; want %d", p, len(got), err, len(data))
		}
	}
	catInto := func(p string) {
		t.Helper()
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var errb bytes.Buffer
		cmd := exec.Command(bin, "--data", d, "cat", cidOf(t, d, src))
		cmd.Stdout, cmd.Stderr = f, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("cat into %s: %v: %s", p, err, errb.String())
		}
		check(p)
	}
	c := cidOf(t, d, src)
	if piped, errs, code := runIn(t, string(data), "--data", d, "add", "-q", "-"); code != 0 || strings.TrimSpace(piped) != c {
		t.Fatalf("add from a pipe: %q, %s; handed over: %s", piped, errs, c)
	}
	for _, handedOver := range []bool{true, false} {
		if !handedOver {
			if err := os.Remove(filepath.Join(d, client.HandoffFile)); err != nil {
				t.Fatal(err)
			}
			if again := cidOf(t, d, src); again != c {
				t.Fatalf("add with no socket: %s, want %s", again, c)
			}
		}
		out := filepath.Join(dst, fmt.Sprint("got-", handedOver))
		if _, errs, code := run(t, "--data", d, "get", "-q", "-o", out, c); code != 0 {
			t.Fatalf("get: %s", errs)
		}
		check(out)
		catInto(out + ".cat")
	}
	if ents, _ := filepath.Glob(filepath.Join(dst, ".*part*")); len(ents) > 0 {
		t.Errorf("temporary files left behind: %v", ents)
	}

	// A directory into a place whose parent is yet to be made: no part
	// file can be made beside it, and none is needed.
	tree := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "f"), []byte("in a tree"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "--data", d, "add", "-r", "-q", tree)
	if code != 0 {
		t.Fatalf("add -r: %s", errs)
	}
	deep := filepath.Join(dst, "new", "deeper")
	if _, errs, code := run(t, "--data", d, "get", "-q", "-o", deep, strings.TrimSpace(out)); code != 0 {
		t.Fatalf("get a directory into a new place: %s", errs)
	}
	if got, err := os.ReadFile(filepath.Join(deep, "f")); err != nil || string(got) != "in a tree" {
		t.Fatalf("the directory's file: %q, %v", got, err)
	}
}

// cidOf adds the file at p on the node on d, and returns its CID.
func cidOf(t *testing.T, d, p string) string {
	t.Helper()
	out, errs, code := run(t, "--data", d, "add", "-q", p)
	if code != 0 {
		t.Fatalf("add %s: %s", p, errs)
	}
	return strings.TrimSpace(out)
}

// TestGetHostileNames imports directories a stranger could publish, each
// with a trick to make 'nube get' write outside -o, or change what lies
// there, through names and symlinks: a link named "../a" in a
// subdirectory, "..", ".", "", "a/b", one with a NUL, a symlink and a
// directory of one name (the directory's mode to go through the link),
// and a symlink and a file of one name. 'nube ls' of the directory that
// holds the name and 'nube get' of the whole fail, naming the bad name,
// and nothing beside -o changes.
func TestGetHostileNames(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)
	type trick struct {
		dir, bad string // the directory holding the bad name, below the root, and the name as quoted
		build    func(g *nubetest.DAG, victim, victimFile string) *mdag.ProtoNode
	}
	for name, tc := range map[string]trick{
		"a link named ../a in a subdirectory": {"/A", `"../a"`, func(g *nubetest.DAG, victim, _ string) *mdag.ProtoNode {
			return g.Dir("A", g.Dir("../a", g.Symlink(victim)), "a", g.DirMode(0o777, "pwned", g.File("x")))
		}},
		"a link named ..": {"", `".."`, func(g *nubetest.DAG, _, _ string) *mdag.ProtoNode {
			return g.Dir("..", g.Dir("pwned", g.File("x")))
		}},
		"a link named .": {"", `"."`, func(g *nubetest.DAG, _, _ string) *mdag.ProtoNode {
			return g.Dir(".", g.Dir("pwned", g.File("x")))
		}},
		"a link with no name": {"", `""`, func(g *nubetest.DAG, _, _ string) *mdag.ProtoNode {
			return g.Dir("", g.File("x"))
		}},
		"a symlink, then a file named under it": {"", `"a/b"`, func(g *nubetest.DAG, victim, _ string) *mdag.ProtoNode {
			return g.Dir("a", g.Symlink(victim), "a/b", g.File("x"))
		}},
		"a name with a NUL": {"", `"a\x00b"`, func(g *nubetest.DAG, _, _ string) *mdag.ProtoNode {
			return g.Dir("a\x00b", g.File("x"))
		}},
		"a symlink, then a directory of its name": {"", `"a"`, func(g *nubetest.DAG, victim, _ string) *mdag.ProtoNode {
			return g.Dir("a", g.Symlink(victim), "a", g.DirMode(0o777, "pwned", g.File("x")))
		}},
		"a symlink, then a file of its name": {"", `"f"`, func(g *nubetest.DAG, _, victimFile string) *mdag.ProtoNode {
			return g.Dir("f", g.Symlink(victimFile), "f", g.File("x", 0o666))
		}},
	} {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			victim, victimFile := filepath.Join(base, "victim"), filepath.Join(base, "victim.txt")
			if err := os.Mkdir(victim, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(victimFile, []byte("original"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(victim, 0o700)
			os.Chmod(victimFile, 0o600)
			g := nubetest.NewDAG(t)
			root := tc.build(g, victim, victimFile)
			if _, errs, code := runIn(t, string(g.CAR(root)), "--data", d, "dag", "import", "-q"); code != 0 {
				t.Fatalf("dag import: %s", errs)
			}
			c := root.Cid().String()
			if out, errs, code := run(t, "--data", d, "ls", c+tc.dir); code == 0 || !strings.Contains(errs, "bad name "+tc.bad) {
				t.Errorf("ls: exit %d, %q %q; want a failure naming %s", code, out, errs, tc.bad)
			}
			if _, errs, code := run(t, "--data", d, "get", "-q", "-o", filepath.Join(base, "out"), c); code == 0 || !strings.Contains(errs, "bad name "+tc.bad) {
				t.Errorf("get: exit %d, %q; want a failure naming %s", code, errs, tc.bad)
			}
			ents, _ := os.ReadDir(base)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if got := strings.Join(names, " "); got != "out victim victim.txt" && got != "victim victim.txt" {
				t.Errorf("beside -o: %s", got)
			}
			if ents, _ := os.ReadDir(victim); len(ents) != 0 {
				t.Errorf("the victim directory holds %v", ents)
			}
			if m := mode(t, victim); m != 0o700 {
				t.Errorf("the victim directory's mode is %v", m)
			}
			if b, _ := os.ReadFile(victimFile); string(b) != "original" || mode(t, victimFile) != 0o600 {
				t.Errorf("the victim file: %q, mode %v", b, mode(t, victimFile))
			}
		})
	}
}
