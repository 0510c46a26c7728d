package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/invite"
)

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Your user's nodes: invite a node to join, list them, remove one",
		Long: `Your nodes are yours by your user key's word: a cert, signed by user.key, that
names each node. The first node you start makes the key (user.key in its data
dir); every other machine of yours joins it with a one-time invite, and never
holds a copy of the key.

'nube user invite' on a node that holds user.key prints an invite: the node's
peer ID and addresses and a random secret, good for one join within --ttl
(ten minutes by default). Pass it, as you would a password, to the new
machine: 'nube up --join-user INVITE' on a fresh data dir there. The new node
dials the inviter (libp2p checks it is that peer and encrypts the channel),
proves the secret, and gets its cert.

A node that joined is one of your nodes for everything your nodes give each
other: it runs your code and holds your spaces with no --offer-to anyone, and
your other nodes serve it. It cannot sign as you: publishing services, owning
spaces, paying and vouching, inviting and removing nodes are for a node that
holds user.key.

'nube user remove NODE' revokes a node's cert (a lost or given-away machine):
the revocation goes to your nodes this node reaches, and they refuse the
node from then on.`,
		Example: `  nube user invite                       # on a node with user.key
  nube up --join-user nubeinvite1:...    # on the new machine, a fresh data dir
  nube user nodes
  nube user remove 12D3KooB...`,
	}
	var ttl time.Duration
	inv := &cobra.Command{
		Use:   "invite",
		Short: "Print a one-time invite for another node to join this user",
		Example: `  nube user invite
  nube user invite --ttl 1h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl <= 0 {
				return fmt.Errorf("--ttl %v: want a positive duration", ttl)
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.UserInvite, error) {
				return c.UserInvite(ctx, ttl)
			}, func(in client.UserInvite) error {
				g.printf("%s\n", in.Invite)
				fmt.Fprintf(os.Stderr, "good for one node until %s: on it, run\n  nube up --join-user %s\n",
					in.Expires.Local().Format(time.Kitchen), in.Invite)
				return nil
			})
		},
	}
	inv.Flags().DurationVar(&ttl, "ttl", invite.DefaultTTL, "how long the invite is good for")
	join := &cobra.Command{
		Use:   "join INVITE",
		Short: "Make this node one of the user's nodes that INVITE names",
		Long: `Make the running node one of the nodes of the user that INVITE names (from
'nube user invite' on one of them). The node keeps the cert it gets in its
data dir, and its own user key, if it made one, is set aside
(user.key.before-join-TIME): it acts as the invite's user from its next start.
On a new machine, 'nube up --join-user INVITE' joins at the first start.`,
		Example: `  nube user join nubeinvite1:...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.UserNode, error) {
				return c.UserJoin(ctx, args[0])
			}, func(n client.UserNode) error {
				g.printf("joined user %s\n", n.User)
				if n.Restart {
					g.printf("restart the node (nube up) to act as that user\n")
				}
				return nil
			})
		},
	}
	nodes := &cobra.Command{
		Use:     "nodes",
		Short:   "List the user's nodes this node knows, and which were removed",
		Example: `  nube user nodes --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.UserNode, error) {
				return c.UserNodes(ctx)
			}, func(ns []client.UserNode) error {
				tw := tabwriter.NewWriter(g.out, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tSINCE\tSTATE")
				for _, n := range ns {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n.ID, since(n.Since), nodeState(n))
				}
				return tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NODE",
		Short: "Revoke a node's cert: the user's nodes refuse it from then on",
		Long: `Revoke NODE's cert under the user key (on a node that holds user.key) and hand
the revocation to the user's nodes this node reaches. A removed node joins
again only under a new node key (a fresh data dir and a new invite).`,
		Example: `  nube user remove 12D3KooB...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.UserNode, error) {
				return c.UserRemove(ctx, args[0])
			}, func(n client.UserNode) error {
				g.printf("removed %s from user %s\n", n.ID, n.User)
				return nil
			})
		},
	}
	cmd.AddCommand(inv, join, nodes, remove)
	return cmd
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func nodeState(n client.UserNode) string {
	switch {
	case n.Removed != nil:
		return "removed " + since(*n.Removed)
	case n.Self && n.Key:
		return "this node (holds user.key)"
	case n.Self:
		return "this node (joined)"
	}
	return "joined"
}
