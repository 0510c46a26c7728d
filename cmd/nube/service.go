package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/progress"
	"github.com/nubecloud/nube/internal/termsafe"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

func newServiceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Publish and find services: WebAssembly modules any node can run",
		Long: `A service is a WebAssembly module (WASI preview 1: GOOS=wasip1 GOARCH=wasm
in Go, wasm32-wasip1 in Rust, TinyGo...) described by a descriptor that your
user key signs. Publishing stores both as content and announces the name.
Any node that runs code can then run it: it fetches the module by CID, checks
it, compiles it once and runs it in a sandbox with no files or sockets.

Call services with 'nube call'.`,
	}
	cmd.AddCommand(newServicePublishCmd(g), newServiceLsCmd(g), newServiceInfoCmd(g), newServiceRunsCmd(g))
	return cmd
}

func newServicePublishCmd(g *globals) *cobra.Command {
	var opt client.PublishOptions
	var memory string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "publish FILE.wasm",
		Short: "Publish a WebAssembly module as a service",
		Long: `Publish FILE.wasm as a service called --name (default: the file's name).

The module is added as content, compiled once to check it, and described by a
descriptor signed with your user key: name, version, module CID, description,
input and output formats, the limits it asks for and its price. The command
prints the descriptor's CID, which names this exact version everywhere; the
name finds the newest version you published.

A module is a WASI command (exports _start, read stdin, write stdout), or,
for calls in microseconds rather than milliseconds, a reactor that exports
nube_run (in Go: a //go:wasmexport nube_run function, built with
-buildmode=c-shared).

A module may import the host API nube_v1 (HOSTAPI.md; in Go, the package
github.com/nubecloud/nube/guest) to read content, read and write spaces and
call other services, within what each caller grants its run. --want says
what it needs (space:read, space:write, call:NAME): a call that grants less
is refused before anything runs. --deterministic declares that its output
depends only on its input, the content it reads and the caller's seed, so
that callers can check it with 'nube call --verify K'.`,
		Example: `  GOOS=wasip1 GOARCH=wasm go build -o upper.wasm ./upper
  nube service publish upper.wasm --name upper --version 1.0.0 --desc "upper-cases text"
  nube service publish resize.wasm --memory 256MiB --timeout 30s --price-call 5
  nube service publish space-wc.wasm --name space-wc --want space:read
  nube service publish hash.wasm --deterministic`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opt.Name == "" {
				opt.Name = strings.ToLower(strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0])))
			}
			if err := service.CheckName(opt.Name); err != nil {
				return fmt.Errorf("%v (set one with --name)", err)
			}
			var err error
			if opt.Limits.Memory, err = parseSize(memory); err != nil {
				return fmt.Errorf("--memory: %w", err)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := g.client()
			if err != nil {
				return err
			}
			info, err := c.Publish(cmd.Context(), f, opt)
			if err != nil {
				return err
			}
			switch {
			case g.json:
				return g.printJSON(info)
			case quiet:
				g.printf("%s\n", info.CID)
			default:
				label := info.Name
				if info.Version != "" {
					label += "@" + info.Version
				}
				g.printf("published %s\n", label)
				g.printf("descriptor  %s\n", info.CID)
				g.printf("module      %s\n", info.Module)
				g.printf("publisher   %s\n", info.Publisher)
				g.printf("\ncall it:    echo hello | nube call %s\n", info.Name)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opt.Name, "name", "", "the service's name (lower-case letters, digits, . _ -); default: the file's name")
	fl.StringVar(&opt.Version, "version", "", "a version label, such as 1.0.0")
	fl.StringVar(&opt.Description, "desc", "", "what the service does (nube service ls searches these words)")
	fl.StringVar(&opt.Input, "input", "", "media type of the input, such as text/plain")
	fl.StringVar(&opt.Output, "output", "", "media type of the output")
	fl.StringVar(&memory, "memory", "", "memory the module needs, such as 128MiB (default: the node's, 64MiB)")
	fl.DurationVar(&opt.Limits.Timeout, "timeout", 0, "time one run may take (default 10s)")
	fl.Uint64Var(&opt.Price.PerCall, "price-call", 0, "price per call, in millicredits")
	fl.Uint64Var(&opt.Price.PerCPUSecond, "price-cpu", 0, "price per CPU-second, in millicredits")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the descriptor's CID")
	fl.StringArrayVar(&opt.Wants, "want", nil, "a right the module needs from callers: space:read, space:write or call:NAME (repeatable)")
	fl.BoolVar(&opt.Deterministic, "deterministic", false, "declare the output a function of the input, content read and seed alone (callers may --verify it)")
	return cmd
}

func newServiceLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [QUERY]",
		Short: "Find services on the network by name or words of their description",
		Long: `List the services that this node and its connected peers know (and, for a
one-word query, the nodes the DHT names for that service) whose name or
description holds every word of QUERY. No QUERY lists them all.`,
		Example: "  nube service ls\n  nube service ls image resize\n  nube service ls --json upper",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.ServiceInfo, error) {
				return c.ServiceLs(ctx, strings.Join(args, " "))
			}, func(list []client.ServiceInfo) error {
				if len(list) == 0 {
					g.printf("no services found\n")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "NAME\tVERSION\tDESCRIPTOR\tRUNNERS\tDESCRIPTION\n")
				for _, s := range list {
					kind := ""
					if len(s.Stages) > 0 {
						kind = "(pipeline) "
					}
					// Names and descriptions are the publisher's words:
					// one line each, with no control characters.
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s%s\n", termsafe.Line(s.Name), termsafe.Line(orDash(s.Version)), s.CID, len(s.Runners), kind, clip(termsafe.Line(s.Description), 50))
				}
				return tw.Flush()
			})
		},
	}
}

func newServiceInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "info NAME|CID",
		Short:   "Show a service's descriptor and the nodes that have it ready",
		Example: "  nube service info upper\n  nube service info upper@1.0.0\n  nube service info bafkrei...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.ServiceInfo, error) {
				return c.ServiceInfo(ctx, args[0])
			}, func(s client.ServiceInfo) error {
				row := func(k, v string) {
					if v != "" {
						g.printf("%-12s %s\n", k, termsafe.Line(v))
					}
				}
				row("name", s.Name)
				row("version", s.Version)
				row("descriptor", s.CID)
				row("description", s.Description)
				row("module", s.Module)
				for i, st := range s.Stages {
					row(fmt.Sprintf("stage %d", i+1), st)
				}
				row("input", s.Input)
				row("output", s.Output)
				row("memory", sizeOrDefault(s.Limits.Memory, wasm.DefaultMemory))
				row("timeout", durationOrDefault(s.Limits.TimeoutMS, wasm.DefaultTimeout))
				if s.Price.PerCall > 0 || s.Price.PerCPUSecond > 0 {
					row("price", fmt.Sprintf("%d mc per call + %d mc per CPU-second", s.Price.PerCall, s.Price.PerCPUSecond))
				} else {
					row("price", "free")
				}
				row("publisher", s.Publisher)
				row("published", s.Created.Local().Format(time.DateTime))
				if len(s.Runners) == 0 {
					row("ready on", "no node seen yet (any node that computes fetches it on the first call)")
				}
				for i, p := range s.Runners {
					label := ""
					if i == 0 {
						label = "ready on"
					}
					g.printf("%-12s %s\n", label, p)
				}
				return nil
			})
		},
	}
}

// touched sums up in a few words what a run did through the host API and
// what it was allowed: "read 2 keys (1.2 MiB), 1 call; allowed space:…".
func touched(r client.RunRecord) string {
	var parts []string
	if t := r.Touched; t != nil {
		if n := len(t.Read); n > 0 {
			parts = append(parts, fmt.Sprintf("read %d keys", n))
		}
		if n := len(t.Wrote); n > 0 {
			parts = append(parts, fmt.Sprintf("wrote %d keys", n))
		}
		if n := len(t.Opened); n > 0 {
			parts = append(parts, fmt.Sprintf("opened %d CIDs", n))
		}
		if t.BytesRead+t.BytesWritten > 0 {
			parts = append(parts, fmt.Sprintf("%s in, %s out", progress.Bytes(t.BytesRead), progress.Bytes(t.BytesWritten)))
		}
		if n := len(t.Calls); n > 0 {
			parts = append(parts, fmt.Sprintf("%d calls", n))
		}
	}
	if len(r.Allowed) > 0 {
		parts = append(parts, "allowed "+strings.Join(r.Allowed, " "))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func newServiceRunsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "runs",
		Short: "List the latest runs this node did for callers, with what each used and earned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.RunRecord, error) {
				return c.ServiceRuns(ctx)
			}, func(runs []client.RunRecord) error {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "TIME\tSERVICE\tCALLER\tCPU\tWALL\tMEMORY\tIN\tOUT\tEARNED\tRESULT\tTOUCHED\n")
				for _, r := range runs {
					result := "ok"
					if r.Error != "" {
						// A module's stderr: one line, no escapes obeyed.
						result = clip(termsafe.Line(r.Error), 60)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", r.At.Local().Format(time.TimeOnly), termsafe.Line(r.Service), clip(r.Caller, 16),
						r.Usage.CPU.Round(time.Microsecond), r.Usage.Wall.Round(time.Microsecond), progress.Bytes(r.Usage.Memory),
						progress.Bytes(r.Usage.In), progress.Bytes(r.Usage.Out), ledger.Credits(r.Earned), result, termsafe.Line(touched(r)))
				}
				return tw.Flush()
			})
		},
	}
}

func newCallCmd(g *globals) *cobra.Command {
	var n int
	var timeout time.Duration
	var memory string
	var on []string
	var opt client.CallOptions
	cmd := &cobra.Command{
		Use:   "call NAME|CID|'A | B | ...'",
		Short: "Run a service (or a pipeline of them) on stdin, writing the result to stdout",
		Long: `Send stdin to a service and write its output to stdout.

The service runs on a node that computes: one that has the module ready if
one is known, else this node or a peer, which fetches the module by CID,
checks and compiles it first. A node that cannot run it is replaced by
another.

With --n N the service runs on N different nodes at once, and each result
is printed as it arrives under a line naming the node: for redundancy, to
compare, or for throughput.

--on PEER (repeatable) runs it only on the nodes named, in that order:
where the data must stay, or to compare two nodes.

A pipeline 'a | b | c' feeds each stage's output to the next, all on the
same node; quote it so the shell does not.

A run may touch nothing but public content unless you grant it more with
--allow (repeatable): space:OWNER/NAME[:read|:write][:PREFIX] lets it read
(or read and write) the keys of a space under PREFIX, within your own
rights there (NAME alone is a space of yours); call:NAME lets it call that
service. Each run gets a
capability signed by your user key for that module on that node, valid for
minutes; the space's keys reach the runner wrapped to its node key and are
forgotten when the run ends.

--near CID|OWNER/NAME runs it on a node that holds the data and runs code
for you, so the data does not cross the network; when none does, it runs
elsewhere and says so on stderr. --out-cid leaves the output as content on
the runner and prints its CID. --verify K runs a deterministic service on K
nodes and compares their outputs: it prints the output if all agree, and
fails naming each node and its output's hash if not.

--cached returns the output of the same run (same deterministic service,
input and seed) that this node, your other nodes or the nodes it would
call have a signed record of, instead of running it; with --verify K, a
record by another user's node counts once K runs agree with it. Runs
given a space (--allow space:...) are never memoized.`,
		Example: `  echo hello | nube call upper
  nube call wc < book.txt
  nube call 'upper | wc' < book.txt
  echo hello | nube call upper --n 3
  echo hello | nube call upper --on 12D3KooW...
  nube call resize --timeout 30s --memory 256MiB < photo.jpg > small.jpg
  me=$(nube id | awk '$1 == "user" {print $2}')
  echo "$me/notes todo" | nube call space-wc --allow space:notes:read
  echo "$me/photos big.txt" | nube call space-wc --allow space:photos:read --near photos
  nube call hash --verify 3 --out-cid < data.bin
  nube call hash --cached < data.bin`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 || n > 64 {
				return fmt.Errorf("--n %d: want 1 to 64 nodes", n)
			}
			lim := client.Limits{Timeout: timeout}
			var err error
			if lim.Memory, err = parseSize(memory); err != nil {
				return fmt.Errorf("--memory: %w", err)
			}
			if max := service.DefaultMaxLimits.Memory; lim.Memory > max {
				return fmt.Errorf("--memory %s: no node lets one run use more than %s", memory, wasm.Size(max))
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				fmt.Fprintln(os.Stderr, "(reading the input from the terminal; end it with Ctrl-D)")
			}
			ref := strings.Join(args, " ")
			for _, a := range opt.Allow {
				if _, err := service.ParseAllow(a); err != nil {
					return err
				}
			}
			if opt.Verify == 1 || opt.Verify < 0 || opt.Verify > 16 {
				return fmt.Errorf("--verify %d: want 2 to 16 nodes", opt.Verify)
			}
			if opt.Cached && n > 1 {
				return errors.New("--cached and --n: a memoized call is one call")
			}
			if opt.Verify > 0 && n > 1 {
				return errors.New("--verify and --n both choose how many nodes run it: use one")
			}
			opt.N, opt.On, opt.Limits = n, on, lim
			failed, total, lastErr := 0, 0, ""
			err = c.CallWith(cmd.Context(), ref, opt, in, func(r client.CallResult) error {
				total++
				if r.Error != "" {
					failed++
					lastErr = r.Error
				}
				if opt.Near != "" && r.Error == "" && !r.Near && !g.json {
					fmt.Fprintf(os.Stderr, "nube: no node that holds %s ran it for you; it ran on %s, and the data crossed the network\n", opt.Near, r.Peer)
				}
				if r.Memo != "" && !g.json {
					fmt.Fprintf(os.Stderr, "nube: nothing ran: the output is %s's signed record of the same run\n", r.Memo)
				}
				if r.Verified > 0 && !g.json {
					fmt.Fprintf(os.Stderr, "nube: %d nodes gave the same output\n", r.Verified)
				}
				if r.OutputCID != "" && !g.json && r.Error == "" {
					r.Output = []byte(r.OutputCID + "\n")
				}
				return printCallResult(g, r, n)
			})
			if err != nil {
				return err
			}
			switch {
			case failed == 0:
				return nil
			case n == 1:
				return errors.New(lastErr)
			default:
				return fmt.Errorf("%d of %d nodes failed", failed, total)
			}
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&n, "n", 1, "run on this many different nodes at once, printing each result labelled by node")
	fl.StringArrayVar(&on, "on", nil, "run only on this node (a peer ID; repeatable)")
	fl.DurationVar(&timeout, "timeout", 0, "time one run may take (default: the service's, else 10s)")
	fl.StringVar(&memory, "memory", "", "memory one run may use, such as 128MiB (default: the service's, else 64MiB)")
	fl.StringArrayVar(&opt.Allow, "allow", nil, "grant each run a right: space:OWNER/NAME[:read|:write][:PREFIX] or call:NAME (repeatable)")
	fl.StringVar(&opt.Near, "near", "", "run on a node that holds this CID or space (OWNER/NAME), if one runs code for you")
	fl.BoolVar(&opt.OutCID, "out-cid", false, "leave the output as content on the runner and print its CID")
	fl.BoolVar(&opt.Cached, "cached", false, "return a signed record of the same deterministic run instead of running it, if one is found")
	fl.IntVar(&opt.Verify, "verify", 0, "run a deterministic service on this many nodes and compare their outputs")
	fl.Uint64Var(&opt.Budget, "budget", 0, "millicredits each run's own calls of priced services may spend (on your own nodes)")
	return cmd
}

func printCallResult(g *globals, r client.CallResult, n int) error {
	if g.json {
		return g.printJSON(r)
	}
	if n == 1 {
		if r.Cost > 0 {
			// Beside the output, not in it: stdout stays the service's.
			fmt.Fprintf(os.Stderr, "nube: the call cost %s credits\n", ledger.Credits(r.Cost))
		}
		if r.Error != "" {
			return nil // the command returns it
		}
		_, err := g.out.Write(r.Output)
		return err
	}
	how := fmt.Sprintf("%.1f ms", r.ElapsedMS)
	if r.Cold {
		how += ", cold"
	}
	if r.Cost > 0 {
		how += ", cost " + ledger.Credits(r.Cost)
	}
	if r.Error != "" {
		g.printf("== %s (%s): error: %s\n", orDash(r.Peer), how, termsafe.Text(r.Error))
		return nil
	}
	g.printf("== %s (%s)\n", r.Peer, how)
	if _, err := g.out.Write(r.Output); err != nil {
		return err
	}
	if len(r.Output) > 0 && r.Output[len(r.Output)-1] != '\n' {
		g.printf("\n")
	}
	return nil
}

// parseSize reads a byte count such as 512, 64MiB, 64M or 1GiB ("" is 0).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num := strings.TrimRight(s, "KMGTiBkb ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 {
		return 0, fmt.Errorf("%q is not a size; use bytes or a unit, such as 64MiB", s)
	}
	return int64(v * float64(mult)), nil
}

func sizeOrDefault(n int64, def int64) string {
	if n == 0 {
		return wasm.Size(def) + " (default)"
	}
	return wasm.Size(n)
}

func durationOrDefault(ms int64, def time.Duration) string {
	if ms == 0 {
		return def.String() + " (default)"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n runes at most, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
