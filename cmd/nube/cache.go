package main

import (
	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "The caches open on the running node: list, stats, drop",
		Long: `A cache keeps a source's values (a space, a group's map) in the memory of the
nodes that read them and drops them when the source changes. Programs open
caches through the library; "nube space get --cached" reads a space through
one. These commands show and drop what the running node keeps.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the caches open on the node",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.CachesList(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			for _, st := range list {
				g.printf("%s\t%d entries\t%d bytes\t%d peers\thits %d\tmisses %d\n",
					termsafe.Line(st.Name), st.Entries, st.Bytes, len(st.Peers), st.Hits, st.Misses)
			}
			return nil
		},
	}, &cobra.Command{
		Use:   "stats NAME",
		Short: "Show what one cache holds and did on the node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.CacheStats(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			printCacheStats(g, st)
			return nil
		},
	}, &cobra.Command{
		Use:   "drop NAME",
		Short: "Close a cache on the node and drop its entries",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.CacheDrop(cmd.Context(), args[0])
		},
	})
	return cmd
}

func printCacheStats(g *globals, st client.CacheStats) {
	g.printf("name:          %s\n", termsafe.Line(st.Name))
	g.printf("entries:       %d (%d of %d bytes)\n", st.Entries, st.Bytes, st.MaxBytes)
	g.printf("peers:         %d\n", len(st.Peers))
	g.printf("version:       %d, confirmed %s (bound %s, strict %v)\n", st.Version, st.Confirmed.Format("15:04:05.000"), st.Bound, st.Strict)
	g.printf("hits:          %d here, %d on owners\n", st.Hits, st.RemoteHits)
	g.printf("misses:        %d (%d loads, %d stale fills dropped)\n", st.Misses, st.Loads, st.StaleFills)
	g.printf("invalidations: %d\n", st.Invalidations)
	g.printf("evictions:     %d\n", st.Evictions)
}
