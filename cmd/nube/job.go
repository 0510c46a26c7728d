package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/progress"
	"github.com/nubecloud/nube/internal/termsafe"
)

// lineSplit is the piece size of --split lines: Hadoop's text input cuts
// at its block size; 64 MiB keeps a map task's input a few seconds of work.
const lineSplit = 64 << 20

func newJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Jobs: map and reduce over content where it lives",
		Long: `A job runs a map service beside each piece of an input spread over many
nodes, shuffles the map outputs into R partitions, runs a reduce service on
each, and gives back the result as a directory CID whose files hold
key<TAB>value lines. This node coordinates the jobs it starts: it retries a
failed task elsewhere, runs a backup copy of a straggler, pays each run
through the ledger's escrow within --budget, and resumes its jobs after a
restart. MAPREDUCE.md says what a map or reduce service reads and writes.

The input is a CID of a file or directory (every file under it), CID/path,
or a space's keys under a prefix as space:OWNER/NAME/PREFIX.`,
		Example: `  nube job run --map wordcount-map --reduce wordcount-reduce --reducers 4 bafybei...
  nube job run --map grep-errors --split 64MiB --budget 5000 bafybei.../logs
  nube job publish wordcount --map wordcount-map --reduce wordcount-reduce bafybei...
  nube job run --published wordcount
  nube job ls
  nube job status 4f1c2a
  nube job logs 4f1c2a
  nube job cancel 4f1c2a`,
	}
	cmd.AddCommand(newJobRunCmd(g), newJobPublishCmd(g), newJobStatusCmd(g), newJobListCmd(g), newJobCancelCmd(g), newJobLogsCmd(g))
	return cmd
}

// jobRunFlags are nube job run's flags as given.
type jobRunFlags struct {
	mapSvc, reduceSvc, split string
	reducers                 int
	budget                   uint64
	verify                   float64
	taskTimeout, timeout     time.Duration
	nodes                    []string
	detach, noBackup         bool
	published                string
}

// spec checks the flags and makes the job's spec for input.
func (f jobRunFlags) spec(input string) (client.JobSpec, error) {
	s := client.JobSpec{Input: strings.TrimSpace(input), Map: f.mapSvc, Reduce: f.reduceSvc, Reducers: f.reducers,
		Budget: f.budget, VerifyFraction: f.verify, TaskTimeout: f.taskTimeout, Timeout: f.timeout, NoBackup: f.noBackup, Nodes: f.nodes}
	switch {
	case s.Input == "":
		return s, errors.New("no input: give a CID, CID/path or space:OWNER/NAME/PREFIX")
	case s.Map == "":
		return s, errors.New("--map is required: the map service's name, name@version or CID")
	case f.reducers < 0:
		return s, fmt.Errorf("--reducers %d: at least 1", f.reducers)
	case f.reducers > 0 && f.reduceSvc == "":
		return s, errors.New("--reducers needs --reduce: without a reduce service the maps' outputs are the result")
	case f.verify < 0 || f.verify > 1:
		return s, fmt.Errorf("--verify-fraction %g: a share from 0 to 1", f.verify)
	case f.taskTimeout < 0 || f.timeout < 0:
		return s, errors.New("--task-timeout and --timeout are more than zero")
	}
	sp := strings.TrimSpace(f.split)
	switch strings.ToLower(sp) {
	case "", "file":
	case "lines":
		s.Split.Size = lineSplit
	default:
		n, err := parseSize(sp)
		if err != nil || n <= 0 {
			return s, fmt.Errorf("--split %q: want file, lines, or a size such as 64MiB", f.split)
		}
		s.Split.Size = n
	}
	return s, nil
}

func newJobRunCmd(g *globals) *cobra.Command {
	var f jobRunFlags
	cmd := &cobra.Command{
		Use:   "run --map SVC [--reduce SVC] [--reducers R] [--split SIZE|file|lines] INPUT",
		Short: "Run a map/reduce job over INPUT; print its result CID",
		Long: `Start a job with this node as its coordinator and wait for it: a live
progress line on stderr (tasks done, running and failed, map input bytes
read where they lie and fetched, nodes used, time left) and, at the end,
the result directory's CID on stdout.

--split says how the input is cut into map tasks: one per file (file, the
default), pieces of a size cut at newlines (64MiB), or lines (pieces of
64 MiB cut at newlines). --budget caps what the job pays, in millicredits
(without it, only free services run). --verify-fraction F runs that share
of map tasks (of a deterministic service) a second time elsewhere and
names the nodes whose output differed.

--published REF runs a job published with 'nube job publish' (its CID, or
the name it was published under on this node) instead of one described by
flags.

Ctrl-C stops waiting, not the job: 'nube job cancel ID' stops it. With
--detach the command prints the job's ID and returns at once.`,
		Example: `  nube job run --map wordcount-map --reduce wordcount-reduce --reducers 4 bafybei...
  nube job run --map wordcount-map --reduce wordcount-reduce --split 64MiB bafybei...
  nube job run --map index-map --reduce index-reduce --budget 20000 space:12D3KooU.../docs/2026/
  nube job run --map wordcount-map --verify-fraction 0.1 --detach bafybei...
  nube job run --published wordcount
  nube cat $(nube job run --map wordcount-map --reduce wordcount-reduce bafybei...)/part-0`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec client.JobSpec
			switch {
			case f.published != "" && (len(args) > 0 || f.mapSvc != ""):
				return errors.New("--published runs a published job as it is: give no INPUT and no --map")
			case f.published == "" && len(args) == 0:
				return errors.New("no input: give a CID, CID/path or space:OWNER/NAME/PREFIX (or --published REF)")
			case f.published == "":
				var err error
				if spec, err = f.spec(args[0]); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var st client.JobStatus
			if f.published != "" {
				st, err = c.JobRunPublished(ctx, f.published)
			} else {
				st, err = c.JobRun(ctx, spec)
			}
			if err != nil {
				return err
			}
			if f.detach {
				if g.json {
					return g.printJSON(st)
				}
				g.printf("%s\n", st.ID)
				return nil
			}
			return g.waitJob(ctx, c, st, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mapSvc, "map", "", "the map service (name, name@version or descriptor CID); required")
	fl.StringVar(&f.reduceSvc, "reduce", "", "the reduce service; none: the result holds the maps' outputs")
	fl.IntVar(&f.reducers, "reducers", 0, "R, the partitions of the map outputs and reduce tasks (default 1)")
	fl.StringVar(&f.split, "split", "file", "how to cut the input: file, lines (64 MiB at newlines) or a size such as 16MiB")
	fl.Uint64Var(&f.budget, "budget", 0, "the most the job may pay, in millicredits (0: free services only)")
	fl.Float64Var(&f.verify, "verify-fraction", 0, "the share of map tasks (0 to 1) run again elsewhere and compared")
	fl.DurationVar(&f.taskTimeout, "task-timeout", 0, "bound one run of a task (default: the service's limit)")
	fl.DurationVar(&f.timeout, "timeout", 0, "bound the whole job (default 1h)")
	fl.StringArrayVar(&f.nodes, "node", nil, "run tasks only on this node (peer ID); repeat for more")
	fl.BoolVar(&f.noBackup, "no-backup", false, "run no backup copies of slow tasks")
	fl.BoolVar(&f.detach, "detach", false, "print the job's ID and return; follow it with nube job status")
	fl.StringVar(&f.published, "published", "", "run a published job: its CID, or its name on this node")
	return cmd
}

func newJobPublishCmd(g *globals) *cobra.Command {
	var f jobRunFlags
	cmd := &cobra.Command{
		Use:   "publish NAME --map SVC [--reduce SVC] [flags] INPUT",
		Short: "Publish a job as a value: print the CID that runs it again",
		Long: `Publish the job the flags describe, as a pipeline is published: its spec
becomes a small JSON document in content, its map and reduce services pinned
to the descriptors their names resolve to now, so that every run of it runs
the same code. Run it with 'nube job run --published CID' on any node that
can fetch the document, or by NAME on this node.`,
		Example: `  nube job publish wordcount --map wordcount-map --reduce wordcount-reduce --reducers 4 bafybei...
  nube job run --published wordcount
  nube cat bafkrei...     # the published document, JSON`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(args[1])
			if err != nil {
				return err
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.JobPublished, error) {
				return c.JobPublish(ctx, args[0], spec)
			}, func(p client.JobPublished) error {
				g.printf("%s\n", p.CID)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.mapSvc, "map", "", "the map service (name, name@version or descriptor CID); required")
	fl.StringVar(&f.reduceSvc, "reduce", "", "the reduce service; none: the result holds the maps' outputs")
	fl.IntVar(&f.reducers, "reducers", 0, "R, the partitions of the map outputs and reduce tasks (default 1)")
	fl.StringVar(&f.split, "split", "file", "how to cut the input: file, lines (64 MiB at newlines) or a size such as 16MiB")
	fl.Uint64Var(&f.budget, "budget", 0, "the most the job may pay, in millicredits (0: free services only)")
	fl.Float64Var(&f.verify, "verify-fraction", 0, "the share of map tasks (0 to 1) run again elsewhere and compared")
	fl.DurationVar(&f.taskTimeout, "task-timeout", 0, "bound one run of a task (default: the service's limit)")
	fl.DurationVar(&f.timeout, "timeout", 0, "bound the whole job (default 1h)")
	return cmd
}

// waitJob follows job st until it ends, drawing its progress on errw when
// that is a terminal, then prints its result CID (or its status as JSON).
func (g *globals) waitJob(ctx context.Context, c *client.Client, st client.JobStatus, errw io.Writer) error {
	draw := isTerminal(errw)
	last := st
	var werr error
	for s, err := range c.JobWatch(ctx, st.ID, 0) {
		if err != nil {
			werr = err
			break
		}
		last = s
		if draw {
			fmt.Fprint(errw, "\r"+jobLine(s)+"\x1b[K")
		}
	}
	if draw {
		fmt.Fprintln(errw)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(errw, "job %s still runs; follow it with 'nube job status %s', stop it with 'nube job cancel %s'\n", st.ID, st.ID, st.ID)
		return ctx.Err()
	}
	if werr != nil && last.Running() {
		return fmt.Errorf("job %s: following it: %w", st.ID, werr)
	}
	if g.json {
		if err := g.printJSON(last); err != nil {
			return err
		}
	}
	switch last.State {
	case "done":
		if !g.json {
			g.printf("%s\n", last.Result)
		}
		return nil
	case "running", "":
		return fmt.Errorf("job %s: the node ended the watch while the job still runs", st.ID)
	default:
		return fmt.Errorf("job %s %s: %s", st.ID, last.State, last.Error)
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// jobLine is a job's progress on one line.
func jobLine(s client.JobStatus) string {
	p := s.Progress
	phase := p.Phase
	if phase == "" {
		phase = s.State
	}
	local := "-"
	if in := p.BytesLocal + p.BytesFetched; in > 0 {
		local = fmt.Sprintf("%.0f%%", 100*float64(p.BytesLocal)/float64(in))
	}
	eta := "?"
	if p.ETA > 0 {
		eta = p.ETA.Round(time.Second).String()
	}
	return fmt.Sprintf("%s %s: %d/%d tasks, %d running, %d failed · read %s local, %s fetched (%s local) · %d nodes · %s · ETA %s",
		s.ID, phase, p.Done, p.Tasks, p.Running, p.Failed, progress.Bytes(p.BytesLocal), progress.Bytes(p.BytesFetched), local,
		p.Nodes, p.Elapsed.Round(time.Second), eta)
}

func newJobStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Show a job's state, progress, result or error",
		Example: `  nube job status 4f1c2a
  nube job status 4f1c2a --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.JobStatus, error) {
				return c.JobStatus(ctx, args[0])
			}, func(s client.JobStatus) error {
				tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "job\t%s\n", s.ID)
				fmt.Fprintf(tw, "state\t%s\n", s.State)
				fmt.Fprintf(tw, "input\t%s\n", termsafe.Text(s.Spec.Input))
				red := s.Spec.Reduce
				if red == "" {
					red = "(none)"
				}
				fmt.Fprintf(tw, "map, reduce\t%s, %s ×%d\n", termsafe.Text(s.Spec.Map), termsafe.Text(red), max(s.Spec.Reducers, 1))
				fmt.Fprintf(tw, "progress\t%s\n", jobLine(s))
				fmt.Fprintf(tw, "spent\t%d millicredits (budget %d)\n", s.Progress.Spent, s.Spec.Budget)
				fmt.Fprintf(tw, "started\t%s\n", s.Started.Local().Format(time.DateTime))
				if !s.Ended.IsZero() {
					fmt.Fprintf(tw, "ended\t%s\n", s.Ended.Local().Format(time.DateTime))
				}
				if s.Result != "" {
					fmt.Fprintf(tw, "result\t%s\n", s.Result)
				}
				if s.Error != "" {
					fmt.Fprintf(tw, "error\t%s\n", termsafe.Text(s.Error))
				}
				for _, d := range s.Disagreements {
					fmt.Fprintf(tw, "disagreement\t%s: %s differed\n", d.Task, strings.Join(d.Minority, ", "))
				}
				return tw.Flush()
			})
		},
	}
}

func newJobListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the jobs this node coordinates, newest first",
		Example: `  nube job ls
  nube job list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.JobStatus, error) {
				return c.JobsList(ctx)
			}, func(js []client.JobStatus) error {
				if len(js) == 0 {
					g.printf("no jobs here yet: nube job run --map SVC INPUT\n")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "JOB\tSTATE\tPHASE\tTASKS\tFAILED\tMAP\tSTARTED\tRESULT")
				for _, s := range js {
					res := s.Result
					if res == "" {
						res = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\t%s\n", s.ID, s.State, orDash(s.Progress.Phase), s.Progress.Done, s.Progress.Tasks,
						s.Progress.Failed, termsafe.Text(s.Spec.Map), s.Started.Local().Format(time.DateTime), res)
				}
				return tw.Flush()
			})
		},
	}
}

func newJobCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "cancel ID",
		Short:   "Stop a job: no task of it keeps running, no escrow stays held",
		Example: `  nube job cancel 4f1c2a`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.JobRef, error) {
				return client.JobRef{ID: args[0]}, c.JobCancel(ctx, args[0])
			}, func(r client.JobRef) error {
				g.printf("cancelled job %s\n", r.ID)
				return nil
			})
		},
	}
}

func newJobLogsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logs ID",
		Short: "Print a job's log: each task's runs, where and how they ended",
		Example: `  nube job logs 4f1c2a
  nube job logs 4f1c2a --json | jq -r '.[] | select(.task != "") | .msg'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.JobLogLine, error) {
				return c.JobLogs(ctx, args[0])
			}, func(ls []client.JobLogLine) error {
				for _, l := range ls {
					where := ""
					if l.Task != "" {
						where = " " + l.Task
					}
					if l.Node != "" {
						where += " on " + shortID(l.Node)
					}
					g.printf("%s%s: %s\n", l.At.Local().Format("15:04:05.000"), where, termsafe.Text(l.Msg))
				}
				return nil
			})
		},
	}
}

// shortID is a peer ID's last characters, as a log line names a node.
func shortID(id string) string {
	if len(id) > 8 {
		return "…" + id[len(id)-8:]
	}
	return id
}
