package main

import (
	"bufio"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testRole makes the test binary play a part in TestOpenLeaksNoCode
// instead of running the tests: "browser" or "watcher".
const testRole = "NUBE_CLI_TEST_ROLE"

// playRole runs the part the environment names, if any, and reports
// whether it did.
func playRole() bool {
	switch os.Getenv(testRole) {
	case "browser":
		playBrowser()
	case "watcher":
		playWatcher()
	default:
		return false
	}
	return true
}

// playBrowser stands for the browser nube open starts: it hands its
// arguments to the test through one FIFO and stays alive, its arguments
// on show in /proc, until the test writes to another.
func playBrowser() {
	f, err := os.OpenFile(os.Getenv("NUBE_TEST_ARGV"), os.O_WRONLY, 0)
	if err != nil {
		os.Exit(2)
	}
	json.NewEncoder(f).Encode(os.Args[1:])
	f.Close()
	if r, err := os.Open(os.Getenv("NUBE_TEST_RELEASE")); err == nil {
		io.Copy(io.Discard, r)
		r.Close()
	}
	os.Exit(0)
}

// watchReport is what the watcher saw and did in one sweep of /proc.
type watchReport struct {
	Saw      []string // every argument of every process it could read
	Tried    int      // codes it tried to log in with
	LoggedIn bool
}

// hexRun is what a login code looks like, and an API token.
var hexRun = regexp.MustCompile(`[0-9a-fA-F]{16,}`)

// playWatcher is another user of the machine, out to log in to the
// dashboard: for each line on stdin it reads the arguments of every
// process in /proc, takes every run of hex digits in them and in any file
// they name as a code, tries each against the API and prints a report.
func playWatcher() {
	api := os.Getenv("NUBE_TEST_API")
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var rep watchReport
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range cmdlines {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			for _, arg := range strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") {
				rep.Saw = append(rep.Saw, arg)
				texts := []string{arg}
				if u, err := url.Parse(arg); err == nil && u.Scheme == "file" {
					arg = u.Path
				}
				if strings.HasPrefix(arg, "/") {
					if b, err := os.ReadFile(arg); err == nil {
						texts = append(texts, string(b))
					}
				}
				for _, t := range texts {
					for _, code := range hexRun.FindAllString(t, -1) {
						rep.Tried++
						if redeem(api, code) == http.StatusNoContent {
							rep.LoggedIn = true
						}
					}
				}
			}
		}
		out.Encode(rep)
	}
	os.Exit(0)
}

// redeem does what the login page does with a code and returns the
// status the API answers.
func redeem(api, code string) int {
	req, err := http.NewRequest("POST", api+"/api/v0/session", strings.NewReader(`{"code":"`+code+`"}`))
	if err != nil {
		return 0
	}
	req.Header.Set("Origin", api)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOpenLeaksNoCode runs nube open while another user of the machine
// (uid 65534) reads every process's arguments in /proc and tries whatever
// looks like a code: it must not log in. The browser (this binary in the
// browser role) stays alive while the watcher looks, and the watcher must
// see its arguments, or the test proves nothing. The user who ran nube
// open can log in with what the browser was handed.
func TestOpenLeaksNoCode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a watcher as another user")
	}
	d := t.TempDir()
	a := startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "off"}, loopback...)...)

	// A copy of this test binary that another user may run.
	shared, err := os.MkdirTemp("", "nube-open-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	actor := filepath.Join(shared, "actor")
	if err := os.WriteFile(actor, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}

	watcher := exec.Command(actor)
	watcher.Env = append(os.Environ(), testRole+"=watcher", "NUBE_TEST_API="+a.info.API)
	watcher.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	watchIn, err := watcher.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	watchOut, err := watcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Start(); err != nil {
		t.Skipf("cannot run a process as uid 65534 (permission): %v", err)
	}
	t.Cleanup(func() {
		watchIn.Close()
		watcher.Wait()
	})
	reports := json.NewDecoder(watchOut)

	fifos := t.TempDir()
	argvPath, releasePath := filepath.Join(fifos, "argv"), filepath.Join(fifos, "release")
	for _, p := range []string{argvPath, releasePath} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	open := exec.Command(bin, "--data", d, "open")
	open.Env = append(os.Environ(), "BROWSER="+actor, testRole+"=browser",
		"NUBE_TEST_ARGV="+argvPath, "NUBE_TEST_RELEASE="+releasePath)
	if out, err := open.CombinedOutput(); err != nil || !strings.Contains(string(out), "opened the dashboard") {
		t.Fatalf("nube open: %v: %s", err, out)
	}
	// The browser is blocked until it is released; release it at the
	// end whatever happens.
	t.Cleanup(func() {
		if w, err := os.OpenFile(releasePath, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})

	argvc := make(chan []string, 1)
	go func() {
		var argv []string
		if f, err := os.Open(argvPath); err == nil {
			json.NewDecoder(f).Decode(&argv)
			f.Close()
		}
		argvc <- argv
	}()
	var argv []string
	select {
	case argv = <-argvc:
	case <-time.After(time.Minute):
		t.Fatal("the browser nube open started never said what it was handed")
	}
	if len(argv) != 1 {
		t.Fatalf("browser handed %q, want one argument", argv)
	}

	// The browser is alive now, its arguments in /proc.
	if _, err := io.WriteString(watchIn, "sweep\n"); err != nil {
		t.Fatal(err)
	}
	var rep watchReport
	if err := reports.Decode(&rep); err != nil {
		t.Fatalf("watcher: %v", err)
	}
	if !contains(rep.Saw, argv[0]) {
		t.Fatalf("the watcher could not see the browser's arguments (/proc mounted with hidepid?): the test proves nothing")
	}
	if rep.LoggedIn {
		t.Fatalf("another user logged in with a code from a command line; the browser was handed %q", argv[0])
	}

	// The user who ran nube open can log in with what the browser got.
	u, err := url.Parse(argv[0])
	if err != nil || u.Scheme != "file" {
		t.Fatalf("browser handed %q, want a file: URL", argv[0])
	}
	fi, err := os.Stat(u.Path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login page %s: %v, mode %v; want 0600", u.Path, err, fi.Mode())
	}
	page, _ := os.ReadFile(u.Path)
	m := regexp.MustCompile(`url=([^"]+)"`).FindStringSubmatch(string(page))
	if m == nil {
		t.Fatalf("login page holds no redirect: %s", page)
	}
	apiURL, code, ok := strings.Cut(html.UnescapeString(m[1]), "/login#")
	if !ok || apiURL != a.info.API {
		t.Fatalf("login page sends the browser to %q, want %s/login#CODE", m[1], a.info.API)
	}
	if got := redeem(apiURL, code); got != http.StatusNoContent {
		t.Fatalf("logging in with the page's code: %d, want %d", got, http.StatusNoContent)
	}
}
