package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
	"github.com/nubecloud/nube/ledger"
)

func newLedgerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "The credit ledger: form it, join it, see its state",
		Long: `The credit ledger keeps every user's account of credit: what their nodes earned
running jobs and keeping data for others, and what they spent having others do
it for them. It is a replicated group (Raft) of a few ledger nodes; every other
node finds it through the network and sends it signed transactions.

Keeping the ledger is a matter of trust, not of offer: a node forms or grows
a ledger only with nodes of its own user and of users its owner trusts
('nube up --trust USER'); --offer-to anyone serves strangers compute and
storage, never a seat on the ledger. Form it once, on one node, naming the
other ledger nodes (three or five, so that it survives one or two of them
down); each must trust this node's user. Add a node later with 'nube ledger
join' on it: a majority of the ledger's nodes must trust its user.

The users of the nodes that form the ledger found it: each is granted
--limit credits to go below zero with, and vouches for others from it
('nube credit vouch'). Every other user starts with no credit.

A node that keeps no ledger learns which ledger is the real one from a node it
trusts (one of its own user's, or of a user it was started with --trust for),
and from then on believes only answers the ledger's nodes signed.

Create and join give up after --timeout, and say what they were waiting for.`,
		Example: `  nube ledger create 12D3KooA... 12D3KooB... --limit 100
  nube ledger join 12D3KooA...        # on a new ledger node
  nube ledger info`,
	}
	var limit string
	var timeout time.Duration
	create := &cobra.Command{
		Use:   "create PEER...",
		Short: "Form the ledger from this node and the peers named",
		Example: `  nube ledger create                                      # this node alone keeps the ledger
  nube ledger create 12D3KooA... 12D3KooB... --limit 100  # three ledger nodes; each founder may go 100 below zero`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lim := int64(0)
			if limit != "" {
				var err error
				if lim, err = ledger.ParseCredits(limit); err != nil {
					return fmt.Errorf("--limit: %w", err)
				}
			}
			g.waiting(fmt.Sprintf("forming the ledger: waiting for %d peers to agree and for its genesis", len(args)), timeout)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+answerMargin)
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.LedgerInfo, error) {
				return c.LedgerCreate(ctx, args, lim, timeout)
			}, g.printLedgerInfo)
		},
	}
	create.Flags().StringVar(&limit, "limit", "", "credit each founding user may go below zero, in credits (default 100)")
	create.Flags().DurationVar(&timeout, "timeout", ledger.CreateTimeout, "give up after this long")
	join := &cobra.Command{
		Use:     "join PEER",
		Short:   "Make this node a ledger node, through the ledger node PEER",
		Example: "  nube ledger join 12D3KooA...           # on the new ledger node; A is one already",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			g.waiting("joining the ledger through "+args[0]+": waiting for its members to agree and for the ledger's state", timeout)
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+answerMargin)
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.LedgerInfo, error) {
				return c.LedgerJoin(ctx, args[0], timeout)
			}, g.printLedgerInfo)
		},
	}
	join.Flags().DurationVar(&timeout, "timeout", ledger.JoinTimeout, "give up after this long")
	info := &cobra.Command{
		Use:     "info",
		Short:   "Show the ledger: its nodes, accounts, escrow, and that its balances sum to zero",
		Example: "  nube ledger info\n  nube ledger info --json | jq .nodes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ledgerCall(cmd.Context())
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.LedgerInfo, error) {
				return c.LedgerInfo(ctx)
			}, g.printLedgerInfo)
		},
	}
	cmd.AddCommand(create, join, info)
	return cmd
}

// answerMargin is how long past a create's or join's own deadline the CLI
// waits for the daemon's answer, which says what it waited for.
const answerMargin = 15 * time.Second

// ledgerCall bounds a question to the ledger: the daemon gives up after
// ledger.CallTimeout and says why; the CLI waits a little longer for that.
func ledgerCall(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, ledger.CallTimeout+answerMargin)
}

// waiting says on a terminal what a long command waits for, and until
// when at most (d 0: no deadline).
func (g *globals) waiting(what string, d time.Duration) {
	if g.json || !term.IsTerminal(int(os.Stderr.Fd())) {
		return
	}
	fmt.Fprintln(os.Stderr, waitingLine(what, d, time.Now()))
}

// waitingLine is the line waiting prints at now.
func waitingLine(what string, d time.Duration, now time.Time) string {
	if d <= 0 {
		return what + " (no time limit; Ctrl-C stops it)..."
	}
	return fmt.Sprintf("%s (up to %v, until %s)...", what, d, now.Add(d).Format(time.TimeOnly))
}

func (g *globals) printLedgerInfo(in client.LedgerInfo) error {
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ledger\t%s\n", in.ID)
	fmt.Fprintf(tw, "created\t%s\n", in.Created.Local().Format(time.DateTime))
	if len(in.Founders) == 0 {
		fmt.Fprintf(tw, "limit\t%s credits per account (a ledger from before trust lines)\n", ledger.Credits(in.Limit))
	} else {
		fmt.Fprintf(tw, "limit\t%s credits for each founding user\n", ledger.Credits(in.Limit))
	}
	for i, u := range in.Founders {
		label := ""
		if i == 0 {
			label = "founders"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, u)
	}
	fmt.Fprintf(tw, "transactions\t%d\n", in.Seq)
	fmt.Fprintf(tw, "accounts\t%d\n", in.Accounts)
	fmt.Fprintf(tw, "escrow\t%s credits in %d reserves\n", ledger.Credits(in.Escrow), in.Reserves)
	fmt.Fprintf(tw, "sum\t%s (every balance and the escrow)\n", ledger.Credits(in.Sum))
	for i, n := range in.Nodes {
		label := ""
		if i == 0 {
			label = "nodes"
		}
		role := ""
		if n == in.Leader {
			role = " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", label, n, role)
	}
	if in.Member {
		fmt.Fprintf(tw, "this node\tis a ledger node\n")
	}
	return tw.Flush()
}

func newCreditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credit",
		Short: "Your credit: balance, transfers, history, limits",
		Long: `Credit is what nodes earn running jobs and keeping data for other users, and
spend having others do the same for them. Every account (a user key) starts at
zero. It may go below zero only as far as its limit: the users who founded the
ledger are granted one, and vouch for others ('credit vouch'), answering for
the credit they extend with their own; a new user with no voucher earns
before it spends. A payment moves credit from one account to another: all
balances always sum to zero. Credit can be sent to another user, which is how
it is sold.

Amounts are in credits, with up to three decimals (a millicredit is the
smallest amount; service prices are set in millicredits).`,
		Example: `  nube credit balance
  nube credit send 12D3KooWUser... 2.5 --memo "for the renders"
  nube credit vouch 12D3KooWUser... 20
  nube credit history
  nube credit limits`,
	}
	balance := &cobra.Command{
		Use:     "balance [USER]",
		Short:   "Show the balance of your account, or of USER's",
		Example: "  nube credit balance\n  nube credit balance 12D3KooWUser...   # another user's",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			ctx, cancel := ledgerCall(cmd.Context())
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.Account, error) {
				return c.CreditAccount(ctx, user, false, false)
			}, func(a client.Account) error {
				g.printf("%s credits (user %s)\n", ledger.Credits(a.Balance), a.User)
				if a.Reserved > 0 {
					g.printf("%s held for runs under way\n", ledger.Credits(a.Reserved))
				}
				g.printf("%s available (limit %s)\n", ledger.Credits(a.Available), ledger.Credits(a.Limit))
				return nil
			})
		},
	}
	var memo string
	send := &cobra.Command{
		Use:   "send PAYEE AMOUNT",
		Short: "Send AMOUNT credits to PAYEE: a user the ledger knows (a founder, or one that has paid), or a node (its user is paid)",
		Long: `Send AMOUNT credits to PAYEE, which is either a user ID the ledger knows (one
that has paid or been paid before; 'nube id' prints a node's user on the line
"user"), or the peer ID of one of the payee's nodes that is online: that node
says whose it is, and its user is paid. The output says which user was paid.
Any other ID is refused: credit sent to it could never be spent.`,
		Example: `  nube credit send 12D3KooWUser... 2.5 --memo "for the renders"
  nube credit send 12D3KooWNode... 1     # pays the user of that node`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := ledger.ParseCredits(args[1])
			if err != nil {
				return err
			}
			ctx, cancel := ledgerCall(cmd.Context())
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.Outcome, error) {
				return c.CreditSend(ctx, args[0], amount, memo)
			}, func(o client.Outcome) error {
				to := "user " + o.Payee
				if o.Node != "" {
					to += ", the user of node " + o.Node
				}
				g.printf("sent %s credits to %s; your balance is %s\n", ledger.Credits(amount), to, ledger.Credits(o.Balance))
				return nil
			})
		},
	}
	send.Flags().StringVar(&memo, "memo", "", fmt.Sprintf("a note for the payee (at most %d bytes)", ledger.MaxMemo))
	vouch := &cobra.Command{
		Use:   "vouch USER AMOUNT",
		Short: "Let USER spend AMOUNT credits below zero, which you answer for (0 withdraws)",
		Long: `Vouch for another user: a trust line of AMOUNT credits that USER may spend
below zero. You answer for it: the line counts against your own available
credit for as long as it stands, so you can extend no more than you have.
Vouching again replaces the line; 0 withdraws it, down to what USER has
already spent of it and no lower (they must earn it back first).`,
		Example: `  nube credit vouch 12D3KooWUser... 20     # a line of 20 credits
  nube credit vouch 12D3KooWUser... 0      # withdraw it`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := ledger.ParseCredits(args[1])
			if err != nil {
				return err
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.Outcome, error) {
				return c.CreditVouch(ctx, args[0], amount)
			}, func(o client.Outcome) error {
				if amount == 0 {
					g.printf("withdrew your line to %s\n", args[0])
				} else {
					g.printf("you vouch for %s with a line of %s credits\n", args[0], ledger.Credits(amount))
				}
				return nil
			})
		},
	}
	history := &cobra.Command{
		Use:     "history",
		Short:   "List the latest entries of your account, oldest first",
		Example: "  nube credit history\n  nube credit history --json | jq '.history[] | select(.kind == \"transfer\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ledgerCall(cmd.Context())
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.Account, error) {
				return c.CreditAccount(ctx, "", true, false)
			}, func(a client.Account) error {
				if len(a.History) == 0 {
					g.printf("no entries yet: your balance is %s\n", ledger.Credits(a.Balance))
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "TIME\tKIND\tAMOUNT\tWITH\tMEMO\n")
				for _, e := range a.History {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Kind,
						ledger.Credits(e.Amount), orDash(clip(e.Peer, 20)), termsafe.Line(e.Memo))
				}
				fmt.Fprintf(tw, "\t\t%s\tbalance\t\n", ledger.Credits(a.Balance))
				return tw.Flush()
			})
		},
	}
	limits := &cobra.Command{
		Use:     "limits",
		Short:   "Show your credit limit and trust lines, and what this node offers others and at what price",
		Example: "  nube credit limits",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := ledgerCall(cmd.Context())
			defer cancel()
			return query(ctx, g, func(ctx context.Context, c *client.Client) (client.Account, error) {
				return c.CreditAccount(ctx, "", false, true)
			}, func(a client.Account) error {
				tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "credit limit\t%s credits below zero\n", ledger.Credits(a.Limit))
				fmt.Fprintf(tw, "available\t%s credits\n", ledger.Credits(a.Available))
				if a.Granted != 0 {
					fmt.Fprintf(tw, "granted\t%s credits by the ledger's genesis\n", ledger.Credits(a.Granted))
				}
				for _, l := range a.Lines {
					if l.To == a.User {
						fmt.Fprintf(tw, "vouched by\t%s for %s credits\n", l.From, ledger.Credits(l.Amount))
					} else {
						fmt.Fprintf(tw, "you vouch for\t%s with %s credits\n", l.To, ledger.Credits(l.Amount))
					}
				}
				if o := a.Offer; o != nil {
					fmt.Fprintf(tw, "offers\tcompute %s, storage %s\n", yesNo(o.Compute), yesNo(o.Storage))
					fmt.Fprintf(tw, "to\t%s\n", o.To)
					fmt.Fprintf(tw, "price floor\t%d mc per call, %d mc per CPU-second\n", o.MinPrice.PerCall, o.MinPrice.PerCPUSecond)
					fmt.Fprintf(tw, "storage price\t%d mc per GiB-day asked, at most %d paid\n", o.StoragePrice, o.MaxStoragePrice)
					if o.Jobs > 0 {
						fmt.Fprintf(tw, "cpu budget\t%d runs for others at once\n", o.Jobs)
					}
					if o.Disk > 0 {
						fmt.Fprintf(tw, "disk budget\t%d bytes for others' spaces\n", o.Disk)
					}
				}
				return tw.Flush()
			})
		},
	}
	cmd.AddCommand(balance, send, vouch, history, limits)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
