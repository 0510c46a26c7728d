package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestConfigRoundTrip sets, reads and removes settings with no daemon: what
// set writes, get and show give back, in the form nube up reads.
func TestConfigRoundTrip(t *testing.T) {
	d := filepath.Join(t.TempDir(), "fresh") // set creates the data dir
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{
		{"api", "127.0.0.1:5001"},
		{"no-mdns", "true"},
		{"compute-slots", "3"},
		{"space-repair-grace", "30m"},
		{"listen", `["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]`},
		{"trust", id.String()},
	} {
		if out, errs, code := run(t, "--data", d, "config", "set", kv[0], kv[1]); code != 0 {
			t.Fatalf("config set %s %s: %d %s %s", kv[0], kv[1], code, out, errs)
		}
	}
	if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir made by config set: %v %v, want mode 0700", fi, err)
	}
	for key, want := range map[string]string{
		"api":                "127.0.0.1:5001",
		"no-mdns":            "true",
		"compute-slots":      "3",
		"space-repair-grace": "30m",
		"listen":             `["/ip4/0.0.0.0/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1"]`,
		"trust":              `["` + id.String() + `"]`,
		"offer-to":           "own", // not set: the default
	} {
		out, errs, code := run(t, "--data", d, "config", "get", key)
		if got := strings.TrimSpace(out); code != 0 || got != want {
			t.Errorf("config get %s = %q (%d %s), want %q", key, got, code, errs, want)
		}
	}

	out, _, code := run(t, "--data", d, "config", "show")
	var file map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &file) != nil || len(file) != 6 ||
		file["no-mdns"] != true || file["compute-slots"] != float64(3) || file["api"] != "127.0.0.1:5001" {
		t.Fatalf("config show: want the six settings, typed:\n%s", out)
	}
	disk, _ := os.ReadFile(filepath.Join(d, ConfigFile))
	if string(disk) != out {
		t.Fatalf("config show printed\n%s\nthe file holds\n%s", out, disk)
	}
	out, _, code = run(t, "--data", d, "config", "show", "--all")
	var all map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || all["offer-to"] != "own" || all["api"] != "127.0.0.1:5001" || all["no-ipfs"] != false {
		t.Fatalf("config show --all: want the file's values and every default:\n%s", out)
	}

	if _, errs, code := run(t, "--data", d, "config", "unset", "api"); code != 0 {
		t.Fatalf("config unset api: %s", errs)
	}
	if out, _, _ := run(t, "--data", d, "config", "get", "api"); strings.TrimSpace(out) != "127.0.0.1:5050" {
		t.Fatalf("config get api after unset = %q, want the default", out)
	}
}

// TestConfigRefused: an unknown key and a value the flag would refuse are
// errors that name the key and what it accepts, and leave the file as it
// was; nube up refuses a file holding either.
func TestConfigRefused(t *testing.T) {
	d := t.TempDir()
	if _, errs, code := run(t, "--data", d, "config", "set", "offer-to", "anyone"); code != 0 {
		t.Fatal(errs)
	}
	before, _ := os.ReadFile(filepath.Join(d, ConfigFile))
	for _, tc := range []struct {
		key, value string
		want       []string
	}{
		{"frobnicate", "1", []string{`unknown config key "frobnicate"`, "api", "no-mdns"}},
		{"data", "/tmp/x", []string{`unknown config key "data"`}},
		{"compute-slots", "many", []string{`config key "compute-slots"`, `"many"`, "want an integer"}},
		{"compute-slots", "-2", []string{`config key "compute-slots"`, "0 (the default) or more"}},
		{"no-mdns", "maybe", []string{`config key "no-mdns"`, "want true or false"}},
		{"offer-to", "everyone", []string{`config key "offer-to"`, "want own or anyone"}},
		{"space-repair-grace", "soon", []string{`config key "space-repair-grace"`, "duration"}},
		{"api", "localhost", []string{`config key "api"`, "HOST:PORT"}},
		{"listen", "/ip4/999.1.1.1/tcp/1", []string{`config key "listen"`, "multiaddr"}},
		{"listen", `["/ip4/127.0.0.1/tcp/1"`, []string{`config key "listen"`, "JSON array"}},
		{"offer-disk", "lots", []string{`config key "offer-disk"`, "20GiB"}},
		{"log-level", "loud", []string{`config key "log-level"`, "debug, info, warn or error"}},
	} {
		_, errs, code := run(t, "--data", d, "config", "set", "--", tc.key, tc.value)
		for _, w := range tc.want {
			if code == 0 || !strings.Contains(errs, w) {
				t.Errorf("config set %s %s: %d %q, want an error naming %q", tc.key, tc.value, code, errs, w)
			}
		}
	}
	if _, errs, code := run(t, "--data", d, "config", "get", "frobnicate"); code == 0 || !strings.Contains(errs, `unknown config key "frobnicate"`) {
		t.Errorf("config get of an unknown key: %d %q", code, errs)
	}
	if after, _ := os.ReadFile(filepath.Join(d, ConfigFile)); string(after) != string(before) {
		t.Fatalf("refused settings changed the file:\n%s", after)
	}

	// A file written by hand is checked as strictly when nube up starts,
	// even a value the command line overrides (loopback gives --no-mdns
	// and --listen).
	for file, want := range map[string]string{
		`{"no-mdsn": true}`:   `unknown config key "no-mdsn"`,
		`{"no-mdns": "yes"}`:  `config key "no-mdns"`,
		`{"listen": {"a":1}}`: `config key "listen"`,
		`[1, 2]`:              "not a JSON object of settings",
	} {
		bad := t.TempDir()
		if err := os.WriteFile(filepath.Join(bad, ConfigFile), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs, code := run(t, append([]string{"up", "--data", bad, "--api", "127.0.0.1:0"}, loopback...)...)
		if code == 0 || !strings.Contains(errs, want) || !strings.Contains(errs, filepath.Join(bad, ConfigFile)) {
			t.Errorf("nube up with config %s: %d %q, want an error naming the file and %q", file, code, errs, want)
		}
	}
}

// TestUpUsesConfig starts nube up on a data dir whose config file says how
// to run, and a flag that overrides one setting: the node listens where
// the file says, has no gateway, and its API is where the flag says, not
// on the file's address (which another listener holds).
func TestUpUsesConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	d := t.TempDir()
	for _, kv := range [][2]string{
		{"api", busy.Addr().String()},
		{"gateway", "off"},
		{"listen", `["/ip4/127.0.0.1/tcp/0"]`},
		{"no-mdns", "true"},
		{"no-ipfs", "true"},
		{"no-portmap", "true"},
	} {
		if _, errs, code := run(t, "--data", d, "config", "set", kv[0], kv[1]); code != 0 {
			t.Fatalf("config set %s: %s", kv[0], errs)
		}
	}
	a := startUp(t, d, "--api", "127.0.0.1:0")
	if a.info.API == "http://"+busy.Addr().String() || !strings.HasPrefix(a.info.API, "http://127.0.0.1:") {
		t.Errorf("API on %s: want the flag's address, not the file's %s", a.info.API, busy.Addr())
	}
	if a.info.Gateway != "" {
		t.Errorf("gateway on %s: the file says off", a.info.Gateway)
	}
	for _, addr := range a.info.Addrs {
		if !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") {
			t.Errorf("listening on %s: the file says TCP on loopback only (%v)", addr, a.info.Addrs)
		}
	}
	// With the daemon running, a change is written and the user told
	// when it takes effect.
	_, errs, code := run(t, "--data", d, "config", "set", "log-level", "info")
	if code != 0 || !strings.Contains(errs, "once restarted") {
		t.Errorf("config set with a daemon running: %d %q, want a word that it applies on restart", code, errs)
	}
}

// TestHelpNamesConfigAndCompletion: nube up --help says where the config
// file is, and cobra's completion command is there for the README's
// instructions.
func TestHelpNamesConfigAndCompletion(t *testing.T) {
	out, _, code := run(t, "up", "--help")
	if code != 0 || !strings.Contains(out, "DATA/"+ConfigFile) || !strings.Contains(out, "nube config set") {
		t.Fatalf("nube up --help does not say where the config file is:\n%s", out)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errs, code := run(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "nube") || len(out) < 500 {
			t.Errorf("nube completion %s: %d %q", sh, code, errs)
		}
	}
}
