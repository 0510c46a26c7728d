package main

// The config file: nube up's settings kept in the data dir.
//
// The file is DATA/config.json, one JSON object whose keys are the names of
// nube up's flags, without the dashes:
//
//	{
//	  "api": "127.0.0.1:5001",
//	  "no-mdns": true,
//	  "listen": ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"],
//	  "space-repair-grace": "30m"
//	}
//
// A flag given on the command line wins over the file; the file wins over
// the flag's default. A switch is a JSON boolean, a number a JSON number, a
// repeatable flag (listen, bootstrap, ipfs-bootstrap, trust) an array, and
// everything else (durations and sizes too) a string. nube up refuses to
// start on a file with an unknown key or a value its flag would refuse,
// naming the key: a typo must not quietly leave a node open or closed.
//
// nube config show, get, set and unset read and write the file, as
// 'ipfs config' does kubo's: they need no daemon, and check every value as
// nube up would. A running daemon reads the file only as it starts.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/internal/atomicfile"
)

// ConfigFile is the config file's name in the data dir.
const ConfigFile = "config.json"

// settings returns the flags a config file may set: nube up's own, on a
// command of their own so that nothing is parsed into them.
func settings() *pflag.FlagSet {
	fl := newUpCmd(&globals{}).Flags()
	fl.SortFlags = true
	return fl
}

// settingKeys lists the keys a config file may hold, sorted.
func settingKeys(fl *pflag.FlagSet) []string {
	var keys []string
	fl.VisitAll(func(f *pflag.Flag) { keys = append(keys, f.Name) })
	slices.Sort(keys)
	return keys
}

// settingFlag returns the flag of key, or an error naming the keys there
// are.
func settingFlag(fl *pflag.FlagSet, key string) (*pflag.Flag, error) {
	if f := fl.Lookup(key); f != nil && key != "help" {
		return f, nil
	}
	return nil, errcode.With(errcode.BadRequest, fmt.Errorf("unknown config key %q: the keys are nube up's flags: %s",
		key, strings.Join(settingKeys(fl), ", ")))
}

// acceptedForm says in words what a flag of type typ takes.
func acceptedForm(typ string) string {
	switch typ {
	case "bool":
		return "true or false"
	case "int":
		return "an integer"
	case "uint64":
		return "a whole number, 0 or more"
	case "duration":
		return "a duration such as 90s, 30m or 2h"
	case "stringArray":
		return "a value, or a JSON array of values"
	}
	return "a string"
}

// checks holds what a value must be beyond its flag's type, as nube up
// checks it: each returns the accepted form when v is not.
var checks = map[string]func(v string) (want string){
	"api": func(v string) string {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return "HOST:PORT, such as 127.0.0.1:5050 (port 0 picks a free one)"
		}
		return ""
	},
	"gateway": func(v string) string {
		if _, _, err := net.SplitHostPort(v); err != nil && v != "off" {
			return `HOST:PORT, such as 127.0.0.1:8080, or "off"`
		}
		return ""
	},
	"listen":         multiaddrCheck,
	"bootstrap":      multiaddrCheck,
	"ipfs-bootstrap": multiaddrCheck,
	"log-level": func(v string) string {
		var l slog.Level
		if l.UnmarshalText([]byte(strings.ToUpper(v))) != nil {
			return "debug, info, warn or error"
		}
		return ""
	},
	"offer": func(v string) string {
		if _, _, err := (upFlags{offer: v, offerTo: "own"}).offerTerms(); err != nil {
			return "compute, storage, compute,storage or none"
		}
		return ""
	},
	"offer-to": func(v string) string {
		if v != "own" && v != "anyone" {
			return "own or anyone"
		}
		return ""
	},
	"trust": func(v string) string {
		if _, err := peer.Decode(v); err != nil {
			return "a user or peer ID, such as 12D3KooW…"
		}
		return ""
	},
	"compute-memory": sizeCheck,
	"offer-disk":     sizeCheck,
	"compute-slots":  nonNegative,
	"offer-jobs":     nonNegative,
	"space-repair-grace": func(v string) string {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return "a positive duration such as 30m"
		}
		return ""
	},
}

func multiaddrCheck(v string) string {
	if _, err := ma.NewMultiaddr(v); err != nil {
		return "a multiaddr, such as /ip4/203.0.113.7/udp/4040/quic-v1"
	}
	return ""
}

func sizeCheck(v string) string {
	if _, err := parseSize(v); err != nil {
		return "a size in bytes or with a unit, such as 64MiB or 20GiB"
	}
	return ""
}

func nonNegative(v string) string {
	if strings.HasPrefix(strings.TrimSpace(v), "-") {
		return "0 (the default) or more"
	}
	return ""
}

// setValues sets flag f of fl to vals as if given on the command line,
// checking each; the error names key and the accepted form.
func setValues(fl *pflag.FlagSet, f *pflag.Flag, vals []string) error {
	for _, v := range vals {
		bad := func(want string) error {
			return errcode.With(errcode.BadRequest, fmt.Errorf("config key %q: %q is not accepted: want %s", f.Name, v, want))
		}
		if err := fl.Set(f.Name, v); err != nil {
			return bad(acceptedForm(f.Value.Type()))
		}
		if check := checks[f.Name]; check != nil {
			if want := check(v); want != "" {
				return bad(want)
			}
		}
	}
	return nil
}

// jsonValues turns a setting's JSON value into the strings its flag
// parses: an array's elements (only for a repeatable flag), a string's
// text, or a number's or boolean's literal.
func jsonValues(f *pflag.Flag, raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	bad := func() error {
		return errcode.With(errcode.BadRequest, fmt.Errorf("config key %q: %s is not accepted: want %s", f.Name, raw, acceptedForm(f.Value.Type())))
	}
	switch {
	case len(raw) == 0 || raw[0] == '{' || string(raw) == "null":
		return nil, bad()
	case raw[0] == '[':
		var vs []string
		if f.Value.Type() != "stringArray" || json.Unmarshal(raw, &vs) != nil {
			return nil, bad()
		}
		return vs, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad()
		}
		return []string{s}, nil
	}
	return []string{string(raw)}, nil
}

// config is a config file's contents: each key's JSON value.
type config map[string]json.RawMessage

// configPath is the config file of the data dir dir.
func configPath(dir string) string { return filepath.Join(dir, ConfigFile) }

// readConfig reads the config file of dir; a missing file, or data dir,
// is an empty config (nube up then says what is wrong with the data dir).
func readConfig(dir string) (config, error) {
	b, err := os.ReadFile(configPath(dir))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the config file of data dir %s: %w", dir, err)
	}
	c := config{}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, errcode.With(errcode.BadRequest, fmt.Errorf("config file %s is not a JSON object of settings: %w", configPath(dir), err))
	}
	return c, nil
}

// writeConfig writes c as dir's config file, keys sorted, creating the
// data dir as nube up would (mode 0700) if it is not there yet.
func writeConfig(dir string, c config) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ") // maps marshal sorted
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := atomicfile.Write(configPath(dir), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// applyConfig sets fl's flags from dir's config file, each one not given
// on the command line, and refuses a file with an unknown key or a bad
// value, given on the command line or not. fl is nube up's flag set,
// already parsed.
func applyConfig(fl *pflag.FlagSet, dir string) error {
	c, err := readConfig(dir)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	check := settings()
	for _, k := range keys {
		if err := applySetting(fl, check, k, c[k]); err != nil {
			return fmt.Errorf("%s: %w", configPath(dir), err)
		}
	}
	return nil
}

// applySetting checks the setting key: raw on check, a flag set of its
// own, so that a bad value is refused even where the command line
// overrides it, then sets it on fl unless the command line gave it.
func applySetting(fl, check *pflag.FlagSet, key string, raw json.RawMessage) error {
	f, err := settingFlag(check, key)
	if err != nil {
		return err
	}
	vals, err := jsonValues(f, raw)
	if err != nil {
		return err
	}
	if err := setValues(check, f, vals); err != nil {
		return err
	}
	if fl.Changed(key) {
		return nil // the command line wins
	}
	return setValues(fl, fl.Lookup(key), vals)
}

// encodeSetting checks the command-line form of a setting (what 'nube
// config set KEY VALUE' is given) and returns it as the file holds it.
func encodeSetting(key, value string) (json.RawMessage, error) {
	fl := settings()
	f, err := settingFlag(fl, key)
	if err != nil {
		return nil, err
	}
	vals := []string{value}
	if f.Value.Type() == "stringArray" && strings.HasPrefix(strings.TrimSpace(value), "[") {
		if err := json.Unmarshal([]byte(value), &vals); err != nil {
			return nil, errcode.With(errcode.BadRequest, fmt.Errorf("config key %q: %q is not accepted: want %s", key, value, acceptedForm(f.Value.Type())))
		}
	}
	if err := setValues(fl, f, vals); err != nil {
		return nil, err
	}
	switch f.Value.Type() {
	case "stringArray":
		return json.Marshal(vals)
	case "bool", "int", "uint64":
		return json.RawMessage(f.Value.String()), nil // the parsed value: true, 42
	}
	return json.Marshal(value)
}

// effective returns every setting as nube up would use it with no flags:
// the file's value, else the flag's default.
func effective(dir string) (config, error) {
	c, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	fl := settings()
	out := config{}
	for _, k := range settingKeys(fl) {
		if v, ok := c[k]; ok {
			out[k] = v
			continue
		}
		f := fl.Lookup(k)
		switch f.Value.Type() {
		case "stringArray":
			out[k] = json.RawMessage("[]")
		case "bool", "int", "uint64":
			out[k] = json.RawMessage(f.DefValue)
		default:
			out[k], _ = json.Marshal(f.DefValue)
		}
	}
	return out, nil
}

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change nube up's settings in the data dir's config file",
		Long: `Show or change the settings nube up reads from the data dir's config file,
` + ConfigFile + ` (DATA/` + ConfigFile + `; by default ` + configPath(defaultDataDir()) + `).

The keys are nube up's flag names (api, no-mdns, listen, offer-to, ...); a
flag given to nube up wins over the file. Every value is checked as nube up
checks its flag: an unknown key or a value the flag refuses is an error that
names the key and what it accepts. A repeatable flag (listen, bootstrap,
ipfs-bootstrap, trust) takes one value or a JSON array of them.

These commands read and write the file only: they need no daemon, and a
running daemon uses a change once it is restarted.`,
		Example: `  nube config set api 127.0.0.1:5001
  nube config set no-mdns true
  nube config set listen '["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]'
  nube config get api
  nube config show           # the file
  nube config show --all     # every setting, the file's or the default
  nube config unset api`,
	}
	var all bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the config file as JSON (with --all, every setting as nube up would use it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			read := readConfig
			if all {
				read = effective
			}
			c, err := read(g.dataDir)
			if err != nil {
				return err
			}
			return g.printJSON(c)
		},
	}
	show.Flags().BoolVar(&all, "all", false, "every setting: the file's value, else nube up's default")
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print one setting: the file's value, else nube up's default",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := settingFlag(settings(), args[0]); err != nil {
				return err
			}
			c, err := effective(g.dataDir)
			if err != nil {
				return err
			}
			var v bytes.Buffer
			if err := json.Compact(&v, c[args[0]]); err != nil {
				return fmt.Errorf("config key %q: %w", args[0], err)
			}
			var s string
			if !g.json && json.Unmarshal(v.Bytes(), &s) == nil {
				g.printf("%s\n", s) // a string bare, for scripts
				return nil
			}
			g.printf("%s\n", v.Bytes())
			return nil
		},
	}
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set one setting, checked as nube up checks its flag",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := encodeSetting(args[0], args[1])
			if err != nil {
				return err
			}
			return updateConfig(g, func(c config) { c[args[0]] = v })
		},
	}
	unset := &cobra.Command{
		Use:   "unset KEY",
		Short: "Remove one setting from the file: nube up's default applies again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := settingFlag(settings(), args[0]); err != nil {
				return err
			}
			return updateConfig(g, func(c config) { delete(c, args[0]) })
		},
	}
	cmd.AddCommand(show, get, set, unset)
	return cmd
}

// updateConfig changes the config file with change, and says so to a
// user whose daemon is running.
func updateConfig(g *globals, change func(config)) error {
	c, err := readConfig(g.dataDir)
	if err != nil {
		return err
	}
	change(c)
	if err := writeConfig(g.dataDir, c); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(g.dataDir, client.EndpointFile)); err == nil {
		fmt.Fprintf(os.Stderr, "nube: the daemon running on %s uses this once restarted\n", g.dataDir)
	}
	return nil
}
