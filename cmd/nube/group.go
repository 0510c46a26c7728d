package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newGroupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Replicated groups: a map that several nodes agree on (Raft)",
		Long: `A group is a set of nodes that keep one replicated map by consensus (Raft),
over the connections they already have: no cluster to set up, no addresses to
configure. Every write goes to the group's leader and is applied once a
majority has it; reads are linearizable. Any member can be asked anything:
calls go to whoever leads, and on to the next leader if that one dies.

A group of 3 survives one member down, of 5 two. Form one on one node with
'nube group create NAME PEER...' and run 'nube group join NAME PEER' on each
of the others (or 'create' with the same members). Members restart with their
log and catch up by themselves.`,
		Example: `  nube group create jobs 12D3KooA... 12D3KooB...   # on node C
  nube group join jobs 12D3KooC...                 # on nodes A and B
  nube group put jobs queue/1 "render frame 1"
  nube group get jobs queue/1
  nube group cas jobs owner --absent me            # take it if nobody has
  nube group status jobs`,
	}
	cmd.AddCommand(newGroupCreateCmd(g), newGroupJoinCmd(g), newGroupListCmd(g), newGroupStatusCmd(g),
		newGroupMembersCmd(g), newGroupMemberCmd(g, "add"), newGroupMemberCmd(g, "remove"),
		newGroupGetCmd(g), newGroupPutCmd(g), newGroupCASCmd(g), newGroupDeleteCmd(g))
	return cmd
}

func newGroupCreateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME [PEER...]",
		Short: "Form a group of this node and the peers named",
		Long: `Form the group NAME of this node and the peers named (peer IDs). Each of them
then runs 'nube group join NAME <this node's ID>' (or 'create' with the same
members, in any order). With no peers, the group is this node alone, and
grows with 'nube group add'.`,
		Example: `  nube group create jobs 12D3KooA... 12D3KooB...   # then, on A and B: nube group join jobs <this node's ID>
  nube group create solo                           # this node alone, for now`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupStatus, error) {
				return c.GroupCreate(ctx, args[0], args[1:])
			}, g.printGroupStatus)
		},
	}
}

func newGroupJoinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "join NAME PEER",
		Short: "Take this node's place in a group, through one of its members",
		Long: `Join the group NAME through its member PEER. This node must be a member
already: named when the group was created, or added since with
'nube group add NAME <this node's ID>' on a member. It waits (up to 30s)
until this node has caught up through the group's leader, then prints the
group's state.`,
		Example: "  nube group join jobs 12D3KooC...   # C is a member that is up",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.waiting("joining group "+args[0]+" through "+args[1]+": waiting to catch up through its leader", api.GroupJoinWait)
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupStatus, error) {
				return c.GroupJoin(ctx, args[0], args[1])
			}, g.printGroupStatus)
		},
	}
}

func newGroupStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "status NAME",
		Short:   "Show a group's leader, term, log indexes and members",
		Example: "  nube group status jobs\n  nube group status jobs --json | jq -r .leader",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupStatus, error) {
				return c.GroupStatus(ctx, args[0])
			}, g.printGroupStatus)
		},
	}
}

func newGroupMembersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "members NAME",
		Short:   "List a group's members and whether each is up",
		Example: "  nube group members jobs",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.GroupMember, error) {
				st, err := c.GroupStatus(ctx, args[0])
				return st.Members, err
			}, g.printMembers)
		},
	}
}

func (g *globals) printGroupStatus(st client.GroupStatus) error {
	leader := st.Leader
	if leader == "" {
		leader = "(none: no majority reachable)"
	}
	g.printf("group    %s\nleader   %s\nterm     %d\nthis     %s, log %d, committed %d, applied %d\n",
		termsafe.Line(st.Name), leader, st.Term, st.State, st.LastIndex, st.Commit, st.Applied)
	return g.printMembers(st.Members)
}

func (g *globals) printMembers(ms []client.GroupMember) error {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATE\tLAST CONTACT")
	for _, m := range ms {
		seen := "-"
		if !m.LastContact.IsZero() {
			seen = time.Since(m.LastContact).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.ID, m.State, seen)
	}
	return tw.Flush()
}

func newGroupMemberCmd(g *globals, verb string) *cobra.Command {
	short, long := "Add a member to a group", `Add PEER to the group NAME as a voting member. PEER then runs
'nube group join NAME <a member's ID>' and catches up from the leader. Until
it does, it counts as a member that is down.`
	if verb == "remove" {
		short, long = "Take a member out of a group", `Take PEER out of the group NAME: to retire it, or to replace a
member that is down for good (remove it, then add the new one).`
	}
	return &cobra.Command{
		Use:     verb + " NAME PEER",
		Short:   short,
		Long:    long,
		Example: "  nube group " + verb + " jobs 12D3KooD...",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if verb == "add" {
				err = c.GroupAdd(cmd.Context(), args[0], args[1])
			} else {
				err = c.GroupRemove(cmd.Context(), args[0], args[1])
			}
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(struct{}{})
			}
			g.printf("%sed %s\n", map[string]string{"add": "add", "remove": "remov"}[verb], args[1])
			return nil
		},
	}
}

func newGroupGetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME KEY",
		Short: "Print a key's value (a linearizable read)",
		Long: `Print the value of KEY in the group NAME's map, exactly as stored, to stdout.
With --json, print {key, value (base64), version}. A key with no value is an
error (exit status 1).`,
		Example: "  nube group get jobs config > config.json\n  nube group get jobs queue/1 --json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupEntry, error) {
				return c.GroupGet(ctx, args[0], args[1])
			}, func(e client.GroupEntry) error {
				_, err := g.out.Write(e.Value)
				return err
			})
		},
	}
}

func newGroupPutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "put NAME KEY [VALUE]",
		Short: "Set a key (its value from the argument or stdin)",
		Long: `Set KEY in the group NAME's map to VALUE, or to what stdin holds if VALUE is
left out (up to 1 MiB). It returns once a majority of the members has the
write, and prints its version (the write's log index).`,
		Example: `  nube group put jobs queue/1 "render frame 1"
  nube group put jobs config < config.json`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			var value []byte
			if len(args) == 3 {
				value = []byte(args[2])
			} else {
				var err error
				if value, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1)); err != nil {
					return err
				}
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupResult, error) {
				return c.GroupPut(ctx, args[0], args[1], value)
			}, func(r client.GroupResult) error {
				g.printf("version %d\n", r.Version)
				return nil
			})
		},
	}
}

func newGroupCASCmd(g *globals) *cobra.Command {
	var absent bool
	cmd := &cobra.Command{
		Use:   "cas NAME KEY OLD NEW | cas NAME KEY --absent NEW",
		Short: "Compare and swap: set a key only if it holds what you expect",
		Long: `Set KEY to NEW only if its value is OLD now, or, with --absent, only if it
has no value. Prints "swapped" or "not swapped"; exits 2 if it did not swap,
so scripts can take a lock or a job with one command.`,
		Example: `  nube group cas jobs owner --absent me && echo "the job is mine"
  nube group cas jobs counter 41 42`,
		Args: cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			var old, value []byte
			switch {
			case absent && len(args) == 3:
				value = []byte(args[2])
			case !absent && len(args) == 4:
				old, value = []byte(args[2]), []byte(args[3])
			default:
				return fmt.Errorf("want NAME KEY OLD NEW, or NAME KEY --absent NEW")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			r, err := c.GroupCompareAndSwap(cmd.Context(), args[0], args[1], old, value)
			if err != nil {
				return err
			}
			if g.json {
				err = g.printJSON(r)
			} else if r.OK {
				g.printf("swapped\n")
			} else {
				g.printf("not swapped\n")
			}
			if err == nil && !r.OK {
				return exitCode(2)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&absent, "absent", false, "swap only if the key has no value")
	return cmd
}

func newGroupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME KEY",
		Aliases: []string{"rm"},
		Short:   "Delete a key",
		Example: "  nube group delete jobs queue/1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GroupResult, error) {
				return c.GroupDelete(ctx, args[0], args[1])
			}, func(r client.GroupResult) error {
				if r.OK {
					g.printf("deleted %s\n", termsafe.Line(args[1]))
				} else {
					g.printf("%s had no value\n", termsafe.Line(args[1]))
				}
				return nil
			})
		},
	}
}

// newGroupListCmd lists, as the library does, what it is given: with no
// group the groups this node keeps (Groups().List), with one that group's
// keys (Group.List). "ls" was the groups' word before 0.1.0 and still
// works, either way.
func newGroupListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list [NAME [PREFIX]]",
		Aliases: []string{"ls"},
		Short:   "List the groups this node is in, or a group's keys (and values)",
		Long: `With no NAME, list the groups this node is a member of. With NAME, list
that group's keys and values, those starting with PREFIX if it is given.`,
		Example: `  nube group list
  nube group list jobs
  nube group list jobs queue/`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]string, error) {
					return c.GroupsList(ctx)
				}, func(names []string) error {
					for _, n := range names {
						g.printf("%s\n", n)
					}
					return nil
				})
			}
			prefix := ""
			if len(args) == 2 {
				prefix = args[1]
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.GroupEntry, error) {
				return c.GroupList(ctx, args[0], prefix)
			}, func(es []client.GroupEntry) error {
				for _, e := range es {
					g.printf("%s\t%s\n", termsafe.Line(e.Key), termsafe.Line(string(e.Value)))
				}
				return nil
			})
		},
	}
}
