package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These tests keep what packagers and operators take from contrib/ true
// to the code: the systemd unit and the container image run nube up with
// flags it has, and build it as the README says.

// parseINI reads a systemd unit file: each section's keys, each with its
// values in order (a key may repeat).
func parseINI(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	var section string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: %q is not KEY=VALUE in a section", path, n, line)
			}
			k = strings.TrimSpace(k)
			out[section][k] = append(out[section][k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkUpArgs fails unless args (after the binary) are nube up with flags
// it takes: cobra refuses an unknown flag or a bad value before --help.
func checkUpArgs(t *testing.T, what string, args []string) {
	t.Helper()
	if len(args) < 1 || args[0] != "up" {
		t.Fatalf("%s runs %q, want nube up", what, args)
	}
	if out, errs, code := run(t, append(args, "--help")...); code != 0 || !strings.Contains(out, "Start a nube node") {
		t.Fatalf("%s: nube %s --help: %d %s", what, strings.Join(args, " "), code, errs)
	}
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("..", "..", "contrib", "systemd", "nube.service")
	unit := parseINI(t, path)
	svc := unit["Service"]
	one := func(key string) string {
		if len(svc[key]) != 1 {
			t.Fatalf("%s: [Service] has %d %s=, want one", path, len(svc[key]), key)
		}
		return svc[key][0]
	}
	argv := strings.Fields(one("ExecStart"))
	if !filepath.IsAbs(argv[0]) || filepath.Base(argv[0]) != "nube" {
		t.Fatalf("ExecStart runs %s, want an absolute path to nube", argv[0])
	}
	checkUpArgs(t, "ExecStart", argv[1:])
	data := ""
	for i, a := range argv {
		if a == "--data" && i+1 < len(argv) {
			data = argv[i+1]
		}
	}
	for key, want := range map[string]string{
		"NoNewPrivileges":    "yes",
		"ProtectSystem":      "strict",
		"ReadWritePaths":     data,
		"Restart":            "on-failure",
		"StateDirectory":     strings.TrimPrefix(data, "/var/lib/"),
		"StateDirectoryMode": "0700", // nube up refuses a data dir others may write
	} {
		if got := one(key); got != want || want == "" {
			t.Errorf("%s=%s, want %q (ExecStart's --data %q)", key, got, want, data)
		}
	}
	if u := one("User"); u == "" || u == "root" || u == "0" {
		t.Errorf("User=%s: want a dedicated user", u)
	}
	if len(unit["Install"]["WantedBy"]) == 0 {
		t.Errorf("no [Install] WantedBy=: systemctl enable would do nothing")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: the unit is checked as INI only")
		return
	}
	// systemd-analyze checks that ExecStart's program exists: point it
	// at the binary under test.
	b, _ := os.ReadFile(path)
	tmp := filepath.Join(t.TempDir(), "nube.service")
	if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), "ExecStart="+argv[0], "ExecStart="+bin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	if err != nil {
		if s := strings.ToLower(string(out)); strings.Contains(s, "permission") || strings.Contains(s, "access denied") || strings.Contains(s, "root") {
			t.Skipf("systemd-analyze verify cannot run here without root or the permission it needs: %s", out)
		}
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify warns:\n%s", out)
	}
}

func TestContainerfile(t *testing.T) {
	path := filepath.Join("..", "..", "contrib", "docker", "Containerfile")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The README's install command: the first go install of its
	// Install section.
	_, install, _ := strings.Cut(string(readme), "\n## Install")
	m := regexp.MustCompile("(?m)^(go install [^#\n]*)").FindStringSubmatch(install)
	if m == nil {
		t.Fatal("README.md's Install section has no go install line")
	}
	want := strings.TrimSpace(m[1])

	var runs []string
	var cmd []string
	var from []string
	for _, line := range strings.Split(string(b), "\n") {
		switch k, v, _ := strings.Cut(strings.TrimSpace(line), " "); k {
		case "RUN":
			runs = append(runs, strings.TrimSpace(v))
		case "FROM":
			from = append(from, v)
		case "CMD":
			if err := json.Unmarshal([]byte(v), &cmd); err != nil {
				t.Fatalf("CMD %s: want the exec (JSON) form: %v", v, err)
			}
		}
	}
	if !contains(runs, want) {
		t.Errorf("the Containerfile builds with %q, not the README's %q", runs, want)
	}
	// The build image's Go is the one go.mod asks for.
	mod, _ := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if len(from) != 2 || goVersion == nil || !strings.Contains(from[0], "golang:"+string(goVersion[1])) {
		t.Errorf("FROM %q: want two stages, the first golang:%s as go.mod says", from, goVersion[1])
	}
	checkUpArgs(t, "the Containerfile's CMD", cmd)
}

// TestUpOnAllInterfaces: an API on every interface, as the container
// image runs it, is written into the data dir as its loopback address, so
// that the CLI beside it works without --remote-api.
func TestUpOnAllInterfaces(t *testing.T) {
	d := t.TempDir()
	startUp(t, d, append([]string{"--api", "0.0.0.0:0", "--gateway", "off"}, loopback...)...)
	if out, errs, code := run(t, "--data", d, "id"); code != 0 || !strings.HasPrefix(out, "peer  ") {
		t.Fatalf("nube id on an API listening on 0.0.0.0: %d %q %s", code, out, errs)
	}
	url, _ := os.ReadFile(filepath.Join(d, "api"))
	if !strings.HasPrefix(string(url), "http://127.0.0.1:") {
		t.Fatalf("api file says %q, want the loopback address", url)
	}
}
