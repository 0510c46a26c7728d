package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newNameCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "name",
		Short: "IPNS names: point a key's name at content, and resolve names",
		Long: `An IPNS name is a key's public name (k51...). 'nube name publish' signs a record
pointing it at a path and stores it in nube's DHT and, when the node is on the
IPFS DHT, there too, where kubo finds it; the node republishes it while it
runs. The user key ("self") is the default key; make more with 'nube key gen'.
'nube name resolve' follows a name, or a DNSLink domain, to an /ipfs/ path.`,
		Example: `  nube name publish bafybei...                 # under the user key
  nube name publish --key site /ipfs/bafybei.../docs --ttl 1m
  nube name resolve k51qzi5uqu5d...
  nube name resolve example.com                  # DNSLink`,
	}
	cmd.AddCommand(newNamePublishCmd(g), newNameResolveCmd(g))
	return cmd
}

func newNamePublishCmd(g *globals) *cobra.Command {
	var req client.NamePublishRequest
	cmd := &cobra.Command{
		Use:   "publish CID|/ipfs/PATH|/ipns/NAME",
		Short: "Point a key's name at a path",
		Long: `Sign an IPNS record (V2, as kubo reads it) pointing the name of --key (default
"self", the user key) at the path, and store it. It returns once nube's DHT
holds it; the public IPFS DHT gets it in the background. The record is valid
for --lifetime (48h) and may be cached for --ttl (5m); the node signs it again
before then while it runs. On a node that joined its user without the user
key, publish under a key of its own (--key).`,
		Example: `  nube name publish bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi
  nube name publish --key site /ipfs/bafybei.../www --lifetime 24h --ttl 1m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Value = args[0]
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.NamePublished, error) {
				return c.NamePublish(ctx, req)
			}, func(p client.NamePublished) error {
				g.printf("published %s: /ipns/%s (sequence %d, valid until %s)\n", termsafe.Line(p.Value), p.Name, p.Sequence, p.Validity)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&req.Key, "key", "", `the key whose name to publish under (default "self", the user key)`)
	cmd.Flags().StringVar(&req.Lifetime, "lifetime", "", "how long the record is valid (default 48h)")
	cmd.Flags().StringVar(&req.TTL, "ttl", "", "how long resolvers may cache it (default 5m)")
	return cmd
}

func newNameResolveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resolve NAME",
		Short: "Follow an IPNS name or a DNSLink domain to an /ipfs/ path",
		Long: `Resolve NAME (k51..., a peer ID, /ipns/NAME[/path], or a domain with a DNSLink)
to the /ipfs/ path it points at, following names that point at names. It asks
the network each time: nothing is cached.`,
		Example: "  nube name resolve k51qzi5uqu5d...\n  nube name resolve /ipns/example.com/docs",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.NameResolved, error) {
				return c.NameResolve(ctx, args[0])
			}, func(r client.NameResolved) error {
				g.printf("%s\n", termsafe.Line(r.Path))
				return nil
			})
		},
	}
}

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Keys to publish IPNS names under",
		Long: `Each key is a name: 'nube name publish --key NAME' points it at content. The
user key is "self", always there; 'gen' makes more (ed25519), kept in the data
dir's names/ directory.`,
		Example: "  nube key gen site\n  nube key list\n  nube key remove site",
	}
	gen := &cobra.Command{
		Use:     "gen NAME",
		Short:   "Make an ed25519 key",
		Example: "  nube key gen site",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.Key, error) {
				return c.KeyGen(ctx, args[0])
			}, func(k client.Key) error {
				g.printf("%s\n", k.ID)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the keys and their names",
		Example: "  nube key list\n  nube key ls --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.Key, error) {
				return c.KeyList(ctx)
			}, func(keys []client.Key) error {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tNAME")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\n", termsafe.Line(k.Name), k.ID)
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a key (its name's record lives on in the DHT until it expires)",
		Example: "  nube key remove site",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (struct{}, error) {
				return struct{}{}, c.KeyRemove(ctx, args[0])
			}, func(struct{}) error {
				g.printf("removed key %s\n", termsafe.Line(args[0]))
				return nil
			})
		},
	}
	cmd.AddCommand(gen, list, remove)
	return cmd
}

func newRoutingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routing",
		Short: "Read and store raw IPNS records in the DHTs",
		Long: `'get' prints the raw record stored under /ipns/NAME (the best one found, checked);
'put' stores one, from a file or stdin, once it validates as that name's. They
do what 'ipfs routing get|put' do for /ipns/ keys.`,
		Example: `  nube routing get /ipns/k51qzi5uqu5d... > name.ipns-record
  nube routing put /ipns/k51qzi5uqu5d... name.ipns-record`,
	}
	get := &cobra.Command{
		Use:     "get /ipns/NAME",
		Short:   "Print the raw record of a name",
		Example: "  nube routing get /ipns/k51qzi5uqu5d... > name.ipns-record",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rec, err := c.RoutingGet(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = g.out.Write(rec)
			return err
		},
	}
	put := &cobra.Command{
		Use:     "put /ipns/NAME [FILE]",
		Short:   "Store a raw record of a name (from FILE, or stdin)",
		Example: "  nube routing put /ipns/k51qzi5uqu5d... name.ipns-record",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := io.Reader(os.Stdin)
			if len(args) == 2 {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			rec, err := io.ReadAll(io.LimitReader(in, 10<<10+1))
			if err != nil {
				return err
			}
			if len(rec) > 10<<10 {
				return fmt.Errorf("the record is over 10 KiB, the IPNS limit")
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (struct{}, error) {
				return struct{}{}, c.RoutingPut(ctx, args[0], rec)
			}, func(struct{}) error {
				g.printf("stored the record of %s\n", termsafe.Line(args[0]))
				return nil
			})
		},
	}
	cmd.AddCommand(get, put)
	return cmd
}

func newSpacePublishCmd(g *globals) *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "publish NAME [--key K]",
		Short: "Publish a space as a website under an IPNS name",
		Long: `Make a UnixFS snapshot of the space NAME (each key a path: "index.html",
"css/site.css"), pin it on this node and point the name of --key (default
"self", the user key) at it. While the node runs, a change to the space
makes a new snapshot and points the name at it (2 s after the last change of
a burst). Any gateway then serves it: http://GATEWAY/ipns/NAME/index.html.
The snapshot is public, whatever the space's own sealing: publish only what
is meant for everyone.`,
		Example: `  nube space create www --local
  nube space put www index.html index.html
  nube space publish www --key site        # prints /ipns/k51...
  curl http://127.0.0.1:8080/ipns/k51.../index.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SitePublished, error) {
				return c.SpacePublish(ctx, args[0], key)
			}, func(p client.SitePublished) error {
				g.printf("published space %s (snapshot %s): /ipns/%s\n", termsafe.Line(p.Space), p.Root, p.Name)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", `the key whose name to publish under (default "self", the user key)`)
	return cmd
}
