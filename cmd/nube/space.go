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

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/dirtar"
	"github.com/nubecloud/nube/internal/progress"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newSpaceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "space",
		Short: "Spaces: key/value data you own, placed where you say, readable by whom you say",
		Long: `A space is a named key/value store that belongs to your user key, not to a
node. You choose where it lives: only this node (--local), named nodes (--on),
or a number of copies on nodes that offer storage (--replicas). Values and key
names are sealed on your node before they leave it; holders see only
ciphertext and sizes.

The node that creates a space is its home: it applies every write and signs
each new version (a head). Grant others read or write with 'nube space grant';
move the space with 'nube space migrate' while programs keep using it.

A space is named NAME (yours) or OWNER/NAME (another user's, OWNER being their
user ID, as 'nube id' prints it).`,
		Example: `  nube space create photos --on 12D3KooB... --replicas 2
  nube space put photos 2026/beach.jpg beach.jpg
  nube space get photos 2026/beach.jpg > beach.jpg
  nube space grant photos 12D3KooU... --read --until 2027-01-01
  nube space migrate photos --to 12D3KooC...`,
	}
	cmd.AddCommand(newSpaceCreateCmd(g), newSpaceListCmd(g), newSpaceHoldingsCmd(g), newSpaceInfoCmd(g),
		newSpacePutCmd(g), newSpaceGetCmd(g), newSpaceDeleteCmd(g), newSpaceWatchCmd(g),
		newSpaceGrantCmd(g), newSpaceRevokeCmd(g), newSpaceMigrateCmd(g), newSpaceHomeCmd(g), newSpaceDestroyCmd(g))
	cmd.AddCommand(newSpacePublishCmd(g))
	return cmd
}

// policyFlags adds the placement flags to cmd.
func policyFlags(cmd *cobra.Command, p *client.SpacePolicy, onName string) {
	cmd.Flags().BoolVar(&p.Local, "local", false, "keep the space on this node only")
	cmd.Flags().StringArrayVar(&p.On, onName, nil, "a node (peer ID) that must hold a copy; repeat for more")
	cmd.Flags().IntVar(&p.Replicas, "replicas", 0, "how many nodes besides this one hold a copy (those named by --"+onName+" count)")
}

func newSpaceCreateCmd(g *globals) *cobra.Command {
	var p client.SpacePolicy
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a space owned by this node's user",
		Long: `Make the space NAME, owned by this node's user, with this node as its home,
placed as the flags say. With no flag, the space lives on this node only.`,
		Example: `  nube space create notes --local
  nube space create www --public
  nube space create photos --on 12D3KooB... --on 12D3KooC...
  nube space create backups --replicas 3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !p.Local && len(p.On) == 0 && p.Replicas == 0 {
				p.Local = true
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SpaceInfo, error) {
				return c.SpaceCreate(ctx, client.SpaceCreate{Name: args[0], SpacePolicy: p})
			}, g.printSpaceInfo)
		},
	}
	policyFlags(cmd, &p, "on")
	cmd.Flags().BoolVar(&p.Public, "public", false, "store the values unsealed, so 'nube space publish' shares their blocks (key names stay sealed; anyone with a value's CID reads it)")
	return cmd
}

func newSpaceHoldingsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "holdings",
		Short: "List the spaces this node holds for other users",
		Long: `List the spaces this node holds for their owners: what it keeps for others,
sealed, under pins that garbage collection leaves alone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.SpaceHolding, error) {
				return c.SpaceHoldings(ctx)
			}, func(hs []client.SpaceHolding) error {
				tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "SPACE\tVERSION\tKEYS\tSIZE\tSINCE")
				for _, h := range hs {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", h.Space, h.Seq, h.Keys, progress.Bytes(int64(h.Bytes)), h.Since.Local().Format(time.DateTime))
				}
				return tw.Flush()
			})
		},
	}
}

func newSpaceInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info [OWNER/]NAME",
		Short: "Show a space's placement, holders and their state, version and size",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SpaceInfo, error) {
				return c.SpaceInfo(ctx, args[0])
			}, g.printSpaceInfo)
		},
	}
}

func (g *globals) printSpaceInfo(i client.SpaceInfo) error {
	pol := "local"
	if !i.Policy.Local {
		var parts []string
		for _, o := range i.Policy.On {
			parts = append(parts, "on "+o)
		}
		if i.Policy.Replicas > len(i.Policy.On) {
			parts = append(parts, fmt.Sprintf("%d replicas", i.Policy.Replicas))
		}
		pol = strings.Join(parts, ", ")
	}
	g.printf("space      %s\nhome       %s\nplacement  %s\nversion    %d (updated %s)\nkeys       %d, %s\nroot       %s\nkey epoch  %d, %d readers\n",
		i.ID, i.Home, pol, i.Seq, i.Updated.Local().Format(time.DateTime), i.Keys, progress.Bytes(int64(i.Bytes)), i.Root, i.Epoch, len(i.Readers))
	if i.Deleted {
		g.printf("deleted\n")
	}
	for _, h := range i.Holders {
		g.printf("holder     %s  %s (version %d)\n", h.Peer, h.State, h.Seq)
	}
	for _, gr := range i.Grants {
		until := "no end"
		if !gr.Until.IsZero() {
			until = "until " + gr.Until.Local().Format(time.DateTime)
		}
		g.printf("grant      %s  %s to %s, %s\n", gr.ID, gr.Rights, gr.To, until)
	}
	return nil
}

func newSpacePutCmd(g *globals) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "put NAME KEY [FILE]",
		Short: "Set a key to a file's bytes (standard input by default)",
		Long: `Set KEY in the space to the bytes of FILE, or of standard input. The value is
sealed on this node, in a stream, so values of any size fit; a progress bar
shows on a terminal.`,
		Example: `  nube space put notes todo.txt todo.txt
  echo hello | nube space put notes greeting`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var in io.Reader = os.Stdin
			total := int64(-1)
			if len(args) == 3 && args[2] != "-" {
				f, err := os.Open(args[2])
				if err != nil {
					return err
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					total = st.Size()
				}
				in = f
			}
			bar := progress.New(os.Stderr, "put", total, quiet || g.json)
			err = c.SpacePut(cmd.Context(), args[0], args[1], &progress.Reader{R: in, Bar: bar})
			bar.Finish()
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(client.SpaceRef{Space: args[0], Key: args[1]})
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func newSpaceGetCmd(g *globals) *cobra.Command {
	var quiet, cached bool
	var out string
	cmd := &cobra.Command{
		Use:   "get [OWNER/]NAME KEY",
		Short: "Write a key's value to standard output (or a file)",
		Long: `Write KEY's value to standard output, or to the file -o names. The value is
read from the nearest holder that has it, checked block by block, and opened
on this node; a progress bar shows on a terminal. A file is written beside
-o and put in its place once the whole value has been read and checked: a
read that fails leaves what was there before.`,
		Example: `  nube space get notes todo.txt
  nube space get 12D3KooO.../photos 2026/beach.jpg -o beach.jpg`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			get := c.SpaceGet
			if cached {
				get = c.CacheGet
			}
			d, err := get(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			defer d.Close()
			bar := progress.New(os.Stderr, "get", d.Size, quiet)
			r := &progress.Reader{R: d, Bar: bar}
			if out != "" {
				// Through a part file, renamed once every byte has
				// been read and checked: a read that fails leaves
				// what was at out as it was.
				err = writeFile(r, out, dirtar.Meta{})
			} else {
				_, err = io.Copy(os.Stdout, r)
			}
			bar.Finish()
			return err
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the value to this file instead of standard output")
	cmd.Flags().BoolVar(&cached, "cached", false, "read through the node's cache of the space (nube cache): from memory when it may")
	return cmd
}

// newSpaceListCmd lists, as the library does, what it is given: with no
// space the spaces this node keeps (Spaces().List), with one that space's
// keys (Space.List). "ls" was the keys' word before 0.1.0 and still works,
// either way.
func newSpaceListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list [[OWNER/]NAME [PREFIX]]",
		Aliases: []string{"ls"},
		Short:   "List the spaces this node keeps, or a space's keys",
		Long: `With no NAME, list the spaces this node is home of or holds for others.
With NAME, list that space's keys, those starting with PREFIX if it is given.`,
		Example: `  nube space list
  nube space list photos
  nube space list photos 2026/`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.SpaceSummary, error) { return c.SpacesList(ctx) }, func(ss []client.SpaceSummary) error {
					tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "SPACE\tROLE\tVERSION\tKEYS\tSIZE\tPLACEMENT")
					for _, s := range ss {
						fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Role, s.Seq, s.Keys, progress.Bytes(int64(s.Bytes)), s.Policy)
					}
					return tw.Flush()
				})
			}
			prefix := ""
			if len(args) == 2 {
				prefix = args[1]
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.SpaceItem, error) {
				return c.SpaceList(ctx, args[0], prefix)
			}, func(items []client.SpaceItem) error {
				for _, it := range items {
					g.printf("%10s  %s  %s\n", progress.Bytes(int64(it.Size)), it.Time.Local().Format(time.DateTime), termsafe.Line(it.Key))
				}
				return nil
			})
		},
	}
}

// newSpaceDeleteCmd deletes one key. Before 0.1.0 "space delete NAME"
// destroyed the whole space; that spelling (one argument) is refused, not
// read either way, so that a dropped KEY never destroys a space.
func newSpaceDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete [OWNER/]NAME KEY",
		Aliases: []string{"rm"},
		Short:   "Delete one key (destroy removes the whole space)",
		Example: `  nube space delete photos 2026/beach.jpg`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return fmt.Errorf("space delete removes one key: nube space delete %s KEY; to remove the whole space: nube space destroy %s", args[0], args[0])
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.SpaceDelete(cmd.Context(), args[0], args[1])
		},
	}
}

func newSpaceDestroyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "destroy NAME",
		Short:   "Destroy a whole space, every key in it: its holders let go of it",
		Example: `  nube space destroy photos`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.SpaceDestroy(cmd.Context(), args[0])
		},
	}
}

func newSpaceWatchCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch [OWNER/]NAME",
		Short: "Print a space's changes as they happen",
		Long: `Print each change to the space (put or delete, and the key) as its home
applies it, until interrupted. With --json, one JSON document a line.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			for ev, err := range c.SpaceWatch(cmd.Context(), args[0]) {
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if ev.Error != "" {
					return errors.New(ev.Error)
				}
				if ev.Op == "watching" {
					continue
				}
				if g.json {
					if err := g.printJSON(ev); err != nil {
						return err
					}
					continue
				}
				g.printf("%s  %-6s  %s  (version %d)\n", ev.Time.Local().Format(time.DateTime), ev.Op, termsafe.Line(ev.Key), ev.Seq)
			}
			return nil
		},
	}
}

func newSpaceGrantCmd(g *globals) *cobra.Command {
	var req client.SpaceGrantRequest
	var until string
	cmd := &cobra.Command{
		Use:   "grant [OWNER/]NAME USERKEY",
		Short: "Give a user read or write on a space, and print the grant",
		Long: `Give the user USERKEY (a user ID, as 'nube id' prints it on their node) read
or write on the space, until a time or for good. Write includes read: a writer
seals values with the space's keys. With --delegate the user may grant the
same rights or fewer onward, for no longer. The owner grants from any of its
nodes that holds the user key; a delegate from its own node, naming the
space OWNER/NAME.

The grant is filed with the space's home, which gives a reader the space's
keys in its next version. It prints the grant's ID (for 'nube space revoke')
and its token.`,
		Example: `  nube space grant photos 12D3KooU... --read --until 2027-01-01
  nube space grant photos 12D3KooU... --write --delegate`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !req.Read && !req.Write {
				return errors.New("say what the grant gives: --read, --write or both")
			}
			if until != "" {
				t, err := parseUntil(until)
				if err != nil {
					return err
				}
				req.Until = t
			}
			req.Space, req.User = args[0], args[1]
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SpaceGrant, error) {
				return c.SpaceGrant(ctx, req)
			}, func(gr client.SpaceGrant) error {
				g.printf("grant %s: %s to %s\n%s\n", gr.ID, gr.Rights, gr.To, gr.Token)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&req.Read, "read", false, "the user may read")
	cmd.Flags().BoolVar(&req.Write, "write", false, "the user may write (and read)")
	cmd.Flags().BoolVar(&req.Delegate, "delegate", false, "the user may grant these rights or fewer onward")
	cmd.Flags().StringVar(&until, "until", "", "when the grant ends: RFC 3339, a date (2027-01-01), or a duration from now (72h)")
	return cmd
}

// parseUntil reads a time, a date or a duration from now.
func parseUntil(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(d), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateTime, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--until %q: want a time (2027-01-01T12:00:00Z), a date (2027-01-01) or a duration (72h)", s)
}

func newSpaceRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME GRANT",
		Short: "End a grant: no more writes, and no reading of later writes",
		Long: `End the grant GRANT (its ID, as 'grant' and 'info' print it) and every grant
delegated under it. Its users can no longer write, and the space's data key
rotates, so they cannot read what is written from now on. Runs on the home.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.SpaceRevoke(cmd.Context(), args[0], args[1])
		},
	}
}

func newSpaceHomeCmd(g *globals) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "home NAME --to PEER",
		Short: "Hand a space's home to another of your nodes while writers keep going",
		Long: `Make PEER, another node of your user, the home of the space NAME: the node that
applies its writes and signs its versions. PEER may be a node that joined your
user without the user key ('nube up --join-user'): your cert of it proves it
is yours, and it signs the space's versions with its node key under this
home's delegation. Writes that arrive during the handover wait, then go to
the new home; none is lost. Runs on the home.`,
		Example: `  nube space home photos --to 12D3KooW...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("say which node becomes the home: --to PEER")
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SpaceInfo, error) {
				return c.SpaceHome(ctx, args[0], to)
			}, g.printSpaceInfo)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the node (peer ID) that becomes the home")
	return cmd
}

func newSpaceMigrateCmd(g *globals) *cobra.Command {
	var p client.SpacePolicy
	var quiet bool
	cmd := &cobra.Command{
		Use:   "migrate NAME (--to PEER... | --local | --replicas N)",
		Short: "Move a space to other nodes while programs keep using it",
		Long: `Place the space anew: copy it onto the new holders and check every block,
publish a version naming them, then let the old holders go. Readers and
writers keep working throughout and follow the space by themselves. A
progress bar shows the copy on a terminal. Runs on the home.`,
		Example: `  nube space migrate photos --to 12D3KooC...
  nube space migrate photos --replicas 3
  nube space migrate photos --local`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var bar *progress.Bar
			for pr, err := range c.SpaceMigrate(cmd.Context(), client.SpaceMigrate{Space: args[0], SpacePolicy: p}) {
				if err != nil {
					return err
				}
				if pr.Error != "" {
					bar.Finish()
					return errors.New(pr.Error)
				}
				if pr.Holder == "" && pr.Done {
					break
				}
				if bar == nil {
					bar = progress.New(os.Stderr, "migrate", pr.Total, quiet || g.json)
				}
				bar.Set(pr.Bytes)
			}
			bar.Finish()
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.SpaceInfo, error) {
				return c.SpaceInfo(ctx, args[0])
			}, g.printSpaceInfo)
		},
	}
	policyFlags(cmd, &p, "to")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}
