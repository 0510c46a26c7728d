package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
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

func newRemoteLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls PEER",
		Short: "List the functions a peer serves to this node",
		Long: `List the functions PEER (a peer ID) lets this node call, with their input
and output types in Go syntax. A streaming function yields many results.
The node finds the peer through the DHT if it is not connected to it.`,
		Example: "  nube remote ls 12D3KooW...\n  nube remote ls --json 12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.FunctionsResult, error) {
				return c.RemoteLs(ctx, args[0])
			}, func(res client.FunctionsResult) error {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				g.printf("%d functions on %s\n", len(res.Functions), res.Peer)
				fmt.Fprintf(tw, "NAME\tKIND\tINPUT\tOUTPUT\n")
				for _, f := range res.Functions {
					kind := "call"
					if f.Stream {
						kind = "stream"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, kind, f.In, f.Out)
				}
				return tw.Flush()
			})
		},
	}
}
