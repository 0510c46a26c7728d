package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/progress"
)

func newDagCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dag",
		Short: "Move whole DAGs in and out as CAR files",
		Long: `Export a DAG (a file, a directory, any block and what it links to) as a
CAR file, or import one. CAR (Content Addressable aRchive) is the file
format IPFS tools use for the same purpose: 'ipfs dag export' output imports
here, and the other way round.`,
	}
	cmd.AddCommand(newDagExportCmd(g), newDagImportCmd(g))
	return cmd
}

func newDagExportCmd(g *globals) *cobra.Command {
	var out string
	var quiet bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "export CID",
		Short: "Write the DAG under a CID as a CAR file",
		Long: `Write the DAG under CID as a CARv1 file, to standard output or to -o: each
block once, depth first, with CID as the file's only root. Blocks the node
lacks are fetched first, from every provider at once. If no reachable node
provides the CID within --timeout, export says so and fails.

A CAR file is not for a terminal: export refuses to write one there.`,
		Example: `  nube dag export bafybei... > site.car
  nube dag export -o site.car bafybei...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = g.out
			if out == "" {
				if f, ok := g.out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("refusing to write a CAR file to a terminal: redirect it, or pass -o FILE")
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			c.FindTimeout = timeout
			stop := lookingFor(cmd.Context(), c, args[0], timeout)
			d, err := c.DagExport(cmd.Context(), args[0])
			stop()
			if err != nil {
				return err
			}
			defer d.Close()
			var f *os.File
			if out != "" {
				if f, err = createPart(out, 0o644); err != nil {
					return err
				}
				defer os.Remove(f.Name())
				defer f.Close()
				w = f
			}
			bar := progress.New(os.Stderr, "export", -1, quiet || g.json)
			n, err := io.Copy(w, &progress.Reader{R: d, Bar: bar})
			bar.Finish()
			if err != nil {
				return err
			}
			if f != nil {
				if err := f.Close(); err != nil {
					return err
				}
				if err := os.Rename(f.Name(), out); err != nil {
					return err
				}
				if g.json {
					return g.printJSON(map[string]any{"path": out, "root": d.CID, "bytes": n})
				}
				if !quiet {
					g.printf("saved %s (%s)\n", out, progress.Bytes(n))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the CAR file here instead of to standard output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultFindTimeout, "how long to look for a provider before giving up (0: for ever)")
	return cmd
}

func newDagImportCmd(g *globals) *cobra.Command {
	var noPin, quiet bool
	var name string
	cmd := &cobra.Command{
		Use:   "import FILE.car|-",
		Short: "Store the blocks of a CAR file and pin its roots",
		Long: `Store every block of a CAR file (version 1 or 2) on the node and pin the
roots the file names, then announce them to the network.

Every block is checked against its CID before it is stored: a file with a
block whose bytes do not match, a block over 2 MiB, or a malformed header
is refused, and nothing is pinned. A root whose DAG the file does not hold
whole (and the node does not have) is not pinned either; the error names
the first block missing. With no argument or '-', the file is read from
standard input.`,
		Example: `  nube dag import site.car
  ipfs dag export bafybei... | nube dag import -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var body io.Reader = os.Stdin
			var total int64 = -1
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil {
					total = fi.Size()
				}
				body = f
			}
			bar := progress.New(os.Stderr, "import", total, quiet || g.json)
			res, err := c.DagImport(cmd.Context(), &progress.Reader{R: body, Bar: bar}, name, !noPin)
			bar.Finish()
			if err != nil {
				return err
			}
			return g.printImport(res, quiet)
		},
	}
	cmd.Flags().BoolVar(&noPin, "no-pin", false, "do not pin the roots: the next 'nube gc' removes the blocks")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the roots, no progress bar")
	cmd.Flags().StringVar(&name, "name", "", "a name for the pins")
	return cmd
}

func (g *globals) printImport(res client.ImportResult, quiet bool) error {
	switch {
	case g.json:
		return g.printJSON(res)
	case quiet:
		if len(res.Roots) > 0 {
			g.printf("%s\n", strings.Join(res.Roots, "\n"))
		}
		return nil
	}
	g.printf("imported %d blocks (%s)\n", res.Blocks, progress.Bytes(res.Bytes))
	verb := "pinned"
	if !res.Pinned {
		verb = "root (not pinned)"
	}
	for _, r := range res.Roots {
		g.printf("%s %s\n", verb, r)
	}
	return nil
}
