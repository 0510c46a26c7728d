package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newRemoteCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remote",
		Short: "Functions other nodes serve for remote calls",
		Long: `Programs built on nube call Go functions on other nodes by name
(package remote). Each node serves the functions linked into its binary,
to the peers its policy allows.`,
	}
	cmd.AddCommand(newRemoteLsCmd(g))
	return cmd
}

// internalPrefix starts the names of the functions nube itself serves
// (nube.functions, which lists the others): 'remote ls' hides them
// unless --all.
const internalPrefix = "nube."

func newRemoteLsCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ls PEER",
		Short: "List the functions a peer serves to this node",
		Long: `List the functions PEER (a peer ID) lets this node call, with their input
and output types in Go syntax. A streaming function yields many results.
The node finds the peer through the DHT if it is not connected to it.

Functions nube serves itself (their names start with "nube.") are left out,
of the text and of --json, unless --all.`,
		Example: "  nube remote ls 12D3KooW...\n  nube remote ls --all 12D3KooW...\n  nube remote ls --json 12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hidden := 0
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.FunctionsResult, error) {
				res, err := c.RemoteLs(ctx, args[0])
				if err != nil || all {
					return res, err
				}
				shown := []client.FuncInfo{}
				for _, f := range res.Functions {
					if strings.HasPrefix(f.Name, internalPrefix) {
						hidden++
						continue
					}
					shown = append(shown, f)
				}
				res.Functions = shown
				return res, nil
			}, func(res client.FunctionsResult) error {
				note := ""
				if hidden > 0 {
					note = fmt.Sprintf(" (and %d of nube's own; --all lists them)", hidden)
				}
				if len(res.Functions) == 0 {
					g.printf("no functions on %s%s\n", res.Peer, note)
					return nil
				}
				g.printf("%d functions on %s%s\n", len(res.Functions), res.Peer, note)
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "NAME\tKIND\tINPUT\tOUTPUT\n")
				for _, f := range res.Functions {
					kind := "call"
					if f.Stream {
						kind = "stream"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", termsafe.Line(f.Name), kind, termsafe.Line(f.In), termsafe.Line(f.Out))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list nube's own functions (nube.*) too")
	return cmd
}
