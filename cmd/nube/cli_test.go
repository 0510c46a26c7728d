package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/netns"
)

// These tests run the real nube binary as separate processes.

var bin string

func TestMain(m *testing.M) {
	if playRole() {
		return
	}
	dir, err := os.MkdirTemp("", "nube-cli-test-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "nube")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nube: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loopback keeps a test daemon to loopback; its user is its own, so it
// serves the other test daemons as it would strangers: --offer-to anyone.
var loopback = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--no-mdns", "--no-ipfs", "--no-portmap", "--offer-to", "anyone"}

type daemon struct {
	cmd  *exec.Cmd
	info upInfo
	errb *bytes.Buffer
}

// startUp runs `nube up --json` with args and waits until it has printed
// its start-up JSON, which it does once the node and API are ready.
func startUp(t *testing.T, dataDir string, args ...string) *daemon {
	t.Helper()
	full := append([]string{"up", "--json", "--data", dataDir}, args...)
	cmd := exec.Command(bin, full...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, errb: &bytes.Buffer{}}
	cmd.Stderr = d.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	if err := json.NewDecoder(stdout).Decode(&d.info); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("nube up printed no start-up JSON: %v; stderr: %s", err, d.errb)
	}
	go io.Copy(io.Discard, stdout)
	return d
}

// stop sends SIGINT and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("nube up exited with %v after SIGINT; stderr: %s", err, d.errb)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Errorf("nube up did not stop within 30s of SIGINT")
	}
}

// run runs a nube command to completion and returns its stdout, stderr and
// exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, "", args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runAt(t, "", stdin, args...)
}

// runAt is run with stdin, in the working directory dir ("": this one).
func runAt(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
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

// waitPeers polls `nube peers --json` until the node has at least n peers.
func waitPeers(t *testing.T, dataDir string, n int) []client.PeerInfo {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, errs, code := run(t, "--data", dataDir, "peers", "--json")
		var peers []client.PeerInfo
		if code == 0 && json.Unmarshal([]byte(out), &peers) == nil && len(peers) >= n {
			return peers
		}
		if time.Now().After(deadline) {
			t.Fatalf("node on %s has %d peers after a minute, want %d (%s)", dataDir, len(peers), n, errs)
		}
		<-tick.C
	}
}

func TestUpAndCommands(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	a := startUp(t, d1, append([]string{"--api", "127.0.0.1:0"}, loopback...)...)
	b := startUp(t, d2, append([]string{"--api", "127.0.0.1:0", "--bootstrap", a.info.Addrs[0]}, loopback...)...)

	out, _, code := run(t, "--data", d1, "id")
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 3 || lines[0] != "peer  "+a.info.ID ||
		lines[1] != "user  "+a.info.UserID || !strings.HasPrefix(lines[2], "addr  /") {
		t.Fatalf("nube id: want the peer ID %s, the user ID and the addresses, each labelled:\n%s", a.info.ID, out)
	}
	peers := waitPeers(t, d1, 1)
	if peers[0].ID != b.info.ID {
		t.Fatalf("peers = %+v, want %s", peers, b.info.ID)
	}
	out, errs, code := run(t, "--data", d2, "ping", "-n", "1", a.info.ID)
	if code != 0 || !strings.Contains(out, "pong from "+a.info.ID) {
		t.Fatalf("nube ping: %d %s %s", code, out, errs)
	}
	// nube peers: a header, then the peer.
	out, errs, code = run(t, "--data", d1, "peers")
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 2 || strings.Join(strings.Fields(lines[0]), " ") != "PEER DIRECTION LATENCY ADDRESS" ||
		!strings.HasPrefix(lines[1], b.info.ID) {
		t.Fatalf("nube peers: want a header line, then %s: %d\n%s%s", b.info.ID, code, out, errs)
	}
	// The nube binary serves only the built-in listing: b lists it for a
	// with --all, and says it hides it without.
	out, errs, code = run(t, "--data", d2, "remote", "ls", "--all", a.info.ID)
	if code != 0 || !strings.Contains(out, "nube.functions") || !strings.Contains(out, "[]remote.FuncInfo") {
		t.Fatalf("nube remote ls --all: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", d2, "remote", "ls", a.info.ID)
	if code != 0 || strings.Contains(out, "nube.functions") || !strings.Contains(out, "no functions on "+a.info.ID) || !strings.Contains(out, "--all lists them") {
		t.Fatalf("nube remote ls: want nube's own functions hidden, and said so: %d %s %s", code, out, errs)
	}
	out, errs, code = run(t, "--data", d2, "remote", "ls", "--json", a.info.ID)
	var fr client.FunctionsResult
	if code != 0 || json.Unmarshal([]byte(out), &fr) != nil || fr.Functions == nil || len(fr.Functions) != 0 {
		t.Fatalf("nube remote ls --json: want an empty list: %d %s %s", code, out, errs)
	}
	// nube version --all: the CLI's and the daemon's.
	out, errs, code = run(t, "--data", d1, "version", "--all")
	if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 2 || lines[0] != "cli     "+nube.Version ||
		!strings.HasPrefix(lines[1], "daemon  "+nube.Version+" (") || !strings.Contains(lines[1], a.info.ID) {
		t.Fatalf("nube version --all: want the CLI's and the daemon's version, labelled: %d\n%s%s", code, out, errs)
	}
	out, _, code = run(t, "--data", d1, "version", "--all", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] != nube.Version || v["daemon"] != nube.Version {
		t.Fatalf("nube version --all --json: %d %s", code, out)
	}
	out, errs, code = run(t, "--data", d2, "remote", "ls", "not-a-peer")
	if code == 0 || !strings.Contains(errs, "bad peer ID") {
		t.Fatalf("nube remote ls with a bad peer ID: %d %s %s", code, out, errs)
	}
	out, _, code = run(t, "--data", d1, "status", "--json")
	var st nube.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.ID != a.info.ID || st.Peers < 1 {
		t.Fatalf("nube status --json: %s", out)
	}
	c := startUp(t, t.TempDir(), append([]string{"--api", "127.0.0.1:0"}, loopback...)...)
	out, errs, code = run(t, "--data", d1, "connect", c.info.Addrs[0])
	if code != 0 || !strings.Contains(out, c.info.ID) {
		t.Fatalf("nube connect: %d %s %s", code, out, errs)
	}

	// SIGINT stops the daemon cleanly and removes its endpoint, so that
	// commands then say no daemon runs.
	a.stop(t)
	if _, err := os.Stat(filepath.Join(d1, "api")); !os.IsNotExist(err) {
		t.Fatalf("endpoint file left after a clean stop: %v", err)
	}
	_, errs, code = run(t, "--data", d1, "peers")
	if code == 0 || !strings.Contains(errs, "no nube daemon is running") || !strings.Contains(errs, "nube up") {
		t.Fatalf("peers with no daemon: %d %q", code, errs)
	}
	out, errs, code = run(t, "--data", d1, "version", "--all")
	if code == 0 || !strings.Contains(errs, "the CLI is nube "+nube.Version) || !strings.Contains(errs, "no nube daemon is running") {
		t.Fatalf("version --all with no daemon: want the CLI's version and why the daemon's is missing: %d %q %q", code, out, errs)
	}
}

func TestUpErrors(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "127.0.0.1:0"}, loopback...)...)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	// A data dir anyone may write, and one whose node key anyone may read.
	openDir := t.TempDir()
	if err := os.Chmod(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	leaky := t.TempDir()
	if err := os.WriteFile(filepath.Join(leaky, nube.NodeKeyFile), []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"data dir in use", []string{"up", "--data", d, "--api", "127.0.0.1:0"}, "already running on " + d},
		{"api port in use", []string{"up", "--data", t.TempDir(), "--api", busy.Addr().String()}, "API address " + busy.Addr().String() + " is in use"},
		{"listen port in use", []string{"up", "--data", t.TempDir(), "--api", "127.0.0.1:0", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/" + portOf(busy)}, "address already in use"},
		{"bad listen multiaddr", []string{"up", "--data", t.TempDir(), "--listen", "/ip4/999.1.1.1/tcp/1"}, `bad multiaddr "/ip4/999.1.1.1/tcp/1"`},
		{"bad bootstrap", []string{"up", "--data", t.TempDir(), "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "no /p2p/<peer ID>"},
		{"unusable data dir", []string{"up", "--data", filepath.Join(file, "sub")}, "data dir"},
		{"listen and no-listen", []string{"up", "--data", t.TempDir(), "--no-listen", "--listen", "/ip4/127.0.0.1/tcp/0"}, "--no-listen and --listen contradict"},
		{"gateway port in use", []string{"up", "--data", t.TempDir(), "--api", "127.0.0.1:0", "--gateway", busy.Addr().String()}, "gateway address " + busy.Addr().String() + " is in use"},
		{"data dir others can write", []string{"up", "--data", openDir, "--api", "127.0.0.1:0"}, "fix with: chmod go-w " + openDir},
		{"key others can read", []string{"up", "--data", leaky, "--api", "127.0.0.1:0"}, "fix with: chmod 600 " + filepath.Join(leaky, nube.NodeKeyFile)},
		{"bad log level", []string{"up", "--data", t.TempDir(), "--log-level", "loud"}, "bad --log-level"},
		{"unknown flag", []string{"up", "--frobnicate"}, "unknown flag"},
		{"space delete without a key", []string{"space", "delete", "photos"}, "to remove the whole space: nube space destroy photos"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.args[0] == "up" && !contains(args, "--listen") {
				args = append(args, loopback...)
			}
			_, errs, code := run(t, args...)
			if code == 0 {
				t.Fatal("exit status 0")
			}
			lines := strings.Split(strings.TrimSpace(errs), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "nube: ") || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr is not the one line naming %q:\n%s", tc.want, errs)
			}
		})
	}
}

// TestRemoteAPIRefused points a data dir's api file away from this
// machine, as someone who could write the data dir might: the CLI refuses
// to send its token there, and says how to allow it. (It never dials.)
func TestRemoteAPIRefused(t *testing.T) {
	d := t.TempDir()
	if err := client.WriteEndpoint(d, "http://192.0.2.7:5050", "secret-token"); err != nil {
		t.Fatal(err)
	}
	_, errs, code := run(t, "--data", d, "id")
	if code == 0 || !strings.Contains(errs, "not on this machine") || !strings.Contains(errs, "--remote-api") {
		t.Fatalf("id with a remote API address: %d %q", code, errs)
	}
}

// TestOpenAndGateway starts a daemon and checks what a browser user gets:
// the gateway on an address apart from the API, no login code in what
// nube up prints, and login links that carry a one-time code, not the
// token, and work once.
func TestOpenAndGateway(t *testing.T) {
	d := t.TempDir()
	a := startUp(t, d, append([]string{"--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0"}, loopback...)...)
	if a.info.Gateway == "" || a.info.Gateway == a.info.API {
		t.Fatalf("gateway %q, API %q: want a gateway apart", a.info.Gateway, a.info.API)
	}
	tok, _ := os.ReadFile(filepath.Join(d, client.TokenFile))
	out, errs, code := run(t, "--data", d, "open", "--print")
	link := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(link, a.info.API+"/login#") || strings.Contains(link, strings.TrimSpace(string(tok))) {
		t.Fatalf("open --print: %d %q %s", code, out, errs)
	}
	if a.info.Dashboard != a.info.API+"/" {
		t.Fatalf("nube up printed dashboard %q, want the API's address %q and no login code", a.info.Dashboard, a.info.API+"/")
	}
	// On a machine with no browser (no $BROWSER, no display, no
	// xdg-open), open says so and prints the link; it writes no page.
	noBrowser := exec.Command(bin, "--data", d, "open")
	noBrowser.Env = []string{"PATH=" + t.TempDir(), "HOME=" + os.Getenv("HOME")}
	var nbOut, nbErr bytes.Buffer
	noBrowser.Stdout, noBrowser.Stderr = &nbOut, &nbErr
	if err := noBrowser.Run(); err != nil || !strings.Contains(nbErr.String(), "no browser on this machine") ||
		!strings.HasPrefix(strings.TrimSpace(nbOut.String()), a.info.API+"/login#") {
		t.Fatalf("open with no browser: want a line saying so, and the link: %v\nstdout: %s\nstderr: %s", err, nbOut.String(), nbErr.String())
	}
	if pages, _ := filepath.Glob(filepath.Join(d, "open-*.html")); len(pages) != 0 {
		t.Fatalf("open with no browser wrote login pages: %v", pages)
	}
	second, _, _ := run(t, "--data", d, "open", "--print")
	for _, l := range []string{link, strings.TrimSpace(second)} {
		// What the login page does: send the fragment's code for a session.
		api, code, _ := strings.Cut(l, "/login#")
		for i, want := range []int{http.StatusNoContent, http.StatusUnauthorized} {
			req, _ := http.NewRequest("POST", api+"/api/v0/session", strings.NewReader(`{"code":"`+code+`"}`))
			req.Header.Set("Origin", api)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("use %d of login link %s: %d, want %d", i+1, l, resp.StatusCode, want)
			}
		}
	}
	out, _, code = runIn(t, "hello gateway", "--data", d, "add", "-q")
	resp, err := http.Get(a.info.Gateway + "/ipfs/" + strings.TrimSpace(out))
	if code != 0 || err != nil {
		t.Fatalf("add: %d %q; gateway: %v", code, out, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello gateway" {
		t.Fatalf("gateway served %q", body)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func portOf(l net.Listener) string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// TestTwoProcessesFindEachOtherByMDNS is the foundation issue's LAN test:
// two `nube up` processes with nothing but distinct --data and --api find
// each other. It runs in a network namespace of its own, where loopback is
// the only (multicast) interface, so the mDNS traffic stays inside.
func TestTwoProcessesFindEachOtherByMDNS(t *testing.T) {
	if !netns.Isolate(t) {
		return
	}
	d1, d2 := t.TempDir(), t.TempDir()
	a := startUp(t, d1, "--api", "127.0.0.1:5050")
	b := startUp(t, d2, "--api", "127.0.0.1:5051")
	peers := waitPeers(t, d1, 1)
	if peers[0].ID != b.info.ID {
		t.Fatalf("node A's peer is %s, want B %s", peers[0].ID, b.info.ID)
	}
	if p := waitPeers(t, d2, 1); p[0].ID != a.info.ID {
		t.Fatalf("node B's peer is %s, want A %s", p[0].ID, a.info.ID)
	}
}

func TestDemo(t *testing.T) {
	cmd := exec.Command(bin, "demo", "--nodes", "3", "--json")
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var nodes []demoNode
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&nodes); err != nil {
		t.Fatalf("demo printed no JSON: %v; %s", err, errb.String())
	}
	if len(nodes) != 3 {
		t.Fatalf("demo started %d nodes, want 3", len(nodes))
	}
	for _, n := range nodes {
		if got := waitPeers(t, n.DataDir, 2); len(got) != 2 {
			t.Fatalf("demo node %s has %d peers", n.ID, len(got))
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit after SIGINT: %v; %s", err, errb.String())
	}
	if _, err := os.Stat(filepath.Dir(nodes[0].DataDir)); !os.IsNotExist(err) {
		t.Fatalf("demo left its data dirs behind: %v", err)
	}
}

// TestUpWithoutMulticast: on a machine with no multicast interface, nube
// up starts and says so in one line of its own; the mDNS library's own
// "[zeroconf] …" lines do not reach the user.
func TestUpWithoutMulticast(t *testing.T) {
	if !netns.Isolate(t) {
		return
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "multicast", "off").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo multicast off: %v: %s", err, out)
	}
	d := startUp(t, t.TempDir(), "--api", "127.0.0.1:0", "--gateway", "off", "--no-ipfs")
	d.stop(t)
	errs := d.errb.String()
	if strings.Contains(errs, "zeroconf") {
		t.Errorf("the mDNS library's own lines reached the user:\n%s", errs)
	}
	if n := strings.Count(errs, "mDNS"); n != 1 {
		t.Errorf("%d lines about mDNS, want one:\n%s", n, errs)
	}
}

// TestDemoDashboardLinks: what nube demo prints to reach a dashboard
// works and carries no token. It used to print the bare address, which
// answers a browser 401; now it names 'nube --data DIR open', which gives
// a one-time login whose code turns into a session, and the dashboard
// then answers.
func TestDemoDashboardLinks(t *testing.T) {
	cmd := exec.Command(bin, "demo", "--nodes", "1")
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(syscall.SIGINT)
	var printed strings.Builder
	var openArgs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		printed.WriteString(line + "\n")
		if f := strings.Fields(line); len(f) >= 5 && f[0] == "dashboard" {
			openArgs = f[2:5] // --data DIR open
		}
		if strings.HasPrefix(line, "Press Ctrl-C") {
			break
		}
	}
	out := printed.String()
	if strings.Contains(out, "token") {
		t.Fatalf("demo printed a token:\n%s", out)
	}
	if len(openArgs) != 3 || openArgs[0] != "--data" || openArgs[2] != "open" {
		t.Fatalf("demo's dashboard line names no 'nube --data DIR open':\n%s%s", out, errb.String())
	}
	link, errs, code := run(t, append(openArgs, "--print")...)
	link = strings.TrimSpace(link)
	before, codeFrag, ok := strings.Cut(link, "/login#")
	if code != 0 || !ok {
		t.Fatalf("open --print: %d %q %s", code, link, errs)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar}
	resp, err := hc.Post(before+"/api/v0/session", "application/json", strings.NewReader(`{"code":"`+codeFrag+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("login with the code: %s", resp.Status)
	}
	resp, err = hc.Get(before + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("dashboard after login: %s", resp.Status)
	}
}
