package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/progress"
	"github.com/nubecloud/nube/internal/termsafe"
)

// maxMessage is the largest message a topic carries (topic.MaxMessage;
// the CLI links none of the node).
const maxMessage = 1 << 20

func newTopicCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Topics: event streams you own, live to subscribers or kept to replay",
		Long: `A topic is a named stream of messages that belongs to your user key. Every
message is signed by its publisher's user key and checked by each node that
relays or keeps it; only you and those you grant may publish or subscribe.

A topic made without --retain is live: subscribers get each message as it is
published (gossipsub: no server in the middle), and nothing is kept. With
--retain it is durable: its holders (--on, --replicas, --local, as a space's)
keep its messages in one order, each with an offset, within the retention;
a publish returns once a majority of them stored it, and a subscriber may
start from an offset or a time. A named consumer (nube sub --consumer) keeps
its place on the holders and gets each message at least once; several
subscribers of one consumer share its messages (a work queue).

Publish with 'nube pub', subscribe with 'nube sub'. A topic is named NAME
(yours) or OWNER/NAME (another user's, OWNER being their user ID).`,
		Example: `  nube topic create events                             # live only
  nube topic create orders --retain 1000000 --retain 24h --replicas 3
  echo '{"order": 17}' | nube pub orders -
  nube sub orders --from 0
  nube sub orders --consumer billing                   # resumes where it left
  nube topic grant orders 12D3KooU... --subscribe`,
	}
	cmd.AddCommand(newTopicCreateCmd(g), newTopicListCmd(g), newTopicInfoCmd(g),
		newTopicGrantCmd(g), newTopicRevokeCmd(g), newTopicMigrateCmd(g), newTopicDeleteCmd(g))
	return cmd
}

// parseRetain reads --retain values into a retention: a count (1000000),
// an age (24h, 90m, 7d) or a size with its unit (512MiB, 1GiB, 64M; as
// parseSize reads them, a K, M or G is a power of 1024). Each kind may be
// given once.
func parseRetain(vals []string) (client.TopicRetention, error) {
	var r client.TopicRetention
	for _, v := range vals {
		s := strings.TrimSpace(v)
		if s == "" {
			return r, errors.New("--retain: empty; want a count (1000000), a size (1GiB) or an age (24h, 7d)")
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			if n <= 0 {
				return r, fmt.Errorf("--retain %s: a count is at least 1", s)
			}
			if r.Count != 0 {
				return r, fmt.Errorf("--retain %s: a count was given already (%d)", s, r.Count)
			}
			r.Count = n
			continue
		}
		if d, err := parseAge(s); err == nil {
			if d <= 0 {
				return r, fmt.Errorf("--retain %s: an age is more than zero", s)
			}
			if r.Age != 0 {
				return r, fmt.Errorf("--retain %s: an age was given already (%s)", s, r.Age)
			}
			r.Age = d
			continue
		}
		// A size names its unit: a bare number is a count, and 1e6 is
		// neither.
		b, err := parseSize(s)
		if last := s[len(s)-1]; err != nil || b <= 0 || !(last >= 'A' && last <= 'Z' || last >= 'a' && last <= 'z') {
			return r, fmt.Errorf("--retain %q: want a count (1000000), a size (512MiB, 1GiB) or an age (24h, 7d)", v)
		}
		if r.Bytes != 0 {
			return r, fmt.Errorf("--retain %s: a size was given already (%d bytes)", s, r.Bytes)
		}
		r.Bytes = b
	}
	return r, nil
}

// parseAge reads a Go duration, or a number of days ("7d").
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("bad number of days %q", days)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// formatRetain says what a retention keeps, for people.
func formatRetain(r client.TopicRetention) string {
	if !r.Durable() {
		return "none (live only)"
	}
	var parts []string
	if r.Count > 0 {
		parts = append(parts, fmt.Sprintf("%d messages", r.Count))
	}
	if r.Bytes > 0 {
		parts = append(parts, progress.Bytes(r.Bytes))
	}
	if r.Age > 0 {
		parts = append(parts, r.Age.String())
	}
	return "the newest " + strings.Join(parts, ", ") + ", whichever bound comes first"
}

func newTopicCreateCmd(g *globals) *cobra.Command {
	var req client.TopicCreate
	var retain []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a topic owned by this node's user, live or durable",
		Long: `Make the topic NAME, owned by this node's user. Without --retain it is live:
messages go to the subscribers of the moment and are not kept. With --retain
it is durable: its holders keep its messages in one order, within the bounds
--retain sets (repeat it to set several; the first bound met drops the
oldest messages):

  --retain 1000000    the newest million messages
  --retain 1GiB       the newest gibibyte (K, M, G: powers of 1024)
  --retain 24h        the messages of the last day (a Go duration, or 7d)

A durable topic's holders are placed as a space's: this node only (--local,
the default), named nodes (--on), or a number of nodes that offer storage
(--replicas). A publish returns once a majority of them stored it. --sealed
encrypts every message under a key that only subscribers get.`,
		Example: `  nube topic create events
  nube topic create orders --retain 1000000 --retain 24h --replicas 3
  nube topic create audit --retain 30d --on 12D3KooB... --on 12D3KooC... --sealed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRetain(retain)
			if err != nil {
				return err
			}
			req.Name, req.Retain = args[0], r
			if !req.Local && len(req.On) == 0 && req.Replicas == 0 {
				req.Local = true
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.TopicInfo, error) {
				return c.TopicCreate(ctx, req)
			}, g.printTopicInfo)
		},
	}
	cmd.Flags().StringArrayVar(&retain, "retain", nil, "keep messages, up to a count (1000000), a size (1GiB) or an age (24h, 7d); repeat for several bounds")
	cmd.Flags().BoolVar(&req.Sealed, "sealed", false, "encrypt every message under a key only subscribers get")
	cmd.Flags().BoolVar(&req.Local, "local", false, "keep a durable topic on this node only")
	cmd.Flags().StringArrayVar(&req.On, "on", nil, "a node (peer ID) that must hold a durable topic; repeat for more")
	cmd.Flags().IntVar(&req.Replicas, "replicas", 0, "how many nodes besides this one hold a durable topic (those named by --on count)")
	return cmd
}

func newTopicListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the topics this node owns, holds or subscribes to",
		Long: `List the topics this node owns, holds for their owners, or subscribes to,
with what this node counted of each since it started: messages published,
delivered to subscribers, and dropped by its checks (a bad signature, a
publisher without a grant).`,
		Example: `  nube topic ls
  nube topic list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.TopicSummary, error) {
				return c.TopicsList(ctx)
			}, func(ts []client.TopicSummary) error {
				if len(ts) == 0 {
					g.printf("no topics here yet: nube topic create NAME\n")
					return nil
				}
				tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tROLE\tKIND\tPUBLISHED\tDELIVERED\tDROPPED")
				for _, t := range ts {
					kind := "live"
					if t.Durable {
						kind = "durable"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", t.ID, t.Role, kind, t.Rates.Published, t.Rates.Delivered, t.Rates.Dropped)
				}
				return tw.Flush()
			})
		},
	}
}

func newTopicInfoCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info [OWNER/]NAME",
		Short: "Show a topic's retention, holders, offsets, consumers and their lag",
		Long: `Show a topic: whether it is sealed, what it retains, its holders and their
leader, the offsets it holds (first, and the next one a message gets), its
size, its durable consumers with their lag, its grants, and this node's
counts.`,
		Example: `  nube topic info orders
  nube topic info 12D3KooO.../orders --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.TopicInfo, error) {
				return c.TopicInfo(ctx, args[0])
			}, g.printTopicInfo)
		},
	}
}

func (g *globals) printTopicInfo(i client.TopicInfo) error {
	sealed := "no"
	if i.Sealed {
		sealed = "yes"
	}
	g.printf("topic      %s\nsealed     %s\nretains    %s\n", i.ID, sealed, formatRetain(i.Retain))
	if i.Retain.Durable() {
		if i.Next > i.First {
			g.printf("offsets    %d to %d (next %d), %s\n", i.First, i.Next-1, i.Next, progress.Bytes(i.Bytes))
		} else {
			g.printf("offsets    none held (next %d)\n", i.Next)
		}
		if i.Leader != "" {
			g.printf("leader     %s\n", i.Leader)
		}
	}
	for _, h := range i.Holders {
		g.printf("holder     %s\n", h)
	}
	for _, c := range i.Consumers {
		g.printf("consumer   %s  acked below %d, %d pending, lag %d\n", termsafe.Line(c.Name), c.Acked, c.Pending, c.Lag)
	}
	for _, gr := range i.Grants {
		until := "no end"
		if !gr.Until.IsZero() {
			until = "until " + gr.Until.Local().Format(time.DateTime)
		}
		g.printf("grant      %s  %s to %s, %s\n", gr.ID, gr.Rights, gr.To, until)
	}
	g.printf("here       %d published, %d delivered, %d dropped\n", i.Rates.Published, i.Rates.Delivered, i.Rates.Dropped)
	return nil
}

func newTopicGrantCmd(g *globals) *cobra.Command {
	var req client.TopicGrantRequest
	var until string
	cmd := &cobra.Command{
		Use:   "grant [OWNER/]NAME USERKEY",
		Short: "Let a user publish on or subscribe to a topic, and print the grant",
		Long: `Let the user USERKEY (a user ID, as 'nube id' prints it on their node)
publish, subscribe, or both, until a time or for good. With --delegate the
user may grant the same rights or fewer onward, for no longer. The grant is
filed with the topic's home; a sealed topic's subscribers get its key. It
prints the grant's ID (for 'nube topic revoke') and its token.`,
		Example: `  nube topic grant orders 12D3KooU... --publish --until 2027-01-01
  nube topic grant orders 12D3KooU... --subscribe --delegate`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !req.Publish && !req.Subscribe {
				return errors.New("say what the grant gives: --publish, --subscribe or both")
			}
			if until != "" {
				t, err := parseUntil(until)
				if err != nil {
					return err
				}
				req.Until = t
			}
			req.Topic, req.User = args[0], args[1]
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.TopicGrant, error) {
				return c.TopicGrant(ctx, req)
			}, func(gr client.TopicGrant) error {
				g.printf("grant %s: %s to %s\n%s\n", gr.ID, gr.Rights, gr.To, gr.Token)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&req.Publish, "publish", false, "the user may publish")
	cmd.Flags().BoolVar(&req.Subscribe, "subscribe", false, "the user may subscribe")
	cmd.Flags().BoolVar(&req.Delegate, "delegate", false, "the user may grant these rights or fewer onward")
	cmd.Flags().StringVar(&until, "until", "", "when the grant ends: RFC 3339, a date (2027-01-01), or a duration from now (72h)")
	return cmd
}

func newTopicRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME GRANT",
		Short: "End a grant: no more publishing, and no reading of later messages",
		Long: `End the grant GRANT (its ID, as 'grant' and 'info' print it) and every grant
delegated under it. Its users' messages are dropped from then on at the
first node that sees them, and a sealed topic's key rotates, so they cannot
read what is published next. Runs on the topic's home.`,
		Example: `  nube topic revoke orders 7f3a9c...`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.TopicRevoke(cmd.Context(), args[0], args[1])
		},
	}
}

func newTopicMigrateCmd(g *globals) *cobra.Command {
	var p client.SpacePolicy
	cmd := &cobra.Command{
		Use:   "migrate NAME (--to PEER... | --local | --replicas N)",
		Short: "Move a durable topic to other holders while it is in use",
		Long: `Place a durable topic anew: the new holders catch up with its log and join
its order, then the old ones let go. Publishers and subscribers keep going
throughout; no acknowledged message is lost or doubled. Each step prints as
it is done (with --json, one JSON document a line). Runs on the home.`,
		Example: `  nube topic migrate orders --to 12D3KooC... --to 12D3KooD...
  nube topic migrate orders --replicas 5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			for pr, err := range c.TopicMigrate(cmd.Context(), client.TopicMigrate{Topic: args[0], SpacePolicy: p}) {
				if err != nil {
					return err
				}
				if g.json {
					if err := g.printJSON(pr); err != nil {
						return err
					}
				} else if pr.Step != "" {
					fmt.Fprintln(os.Stderr, termsafe.Line(pr.Step))
				}
				if pr.Error != "" {
					return errors.New(pr.Error)
				}
				if pr.Done {
					break
				}
			}
			if g.json {
				return nil
			}
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.TopicInfo, error) {
				return c.TopicInfo(ctx, args[0])
			}, g.printTopicInfo)
		},
	}
	policyFlags(cmd, &p, "to")
	return cmd
}

func newTopicDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a topic and every message it kept",
		Long: `Delete the topic: its holders drop its log and its consumers, and its
subscriptions end. Its name may be used again for a new topic.`,
		Example: `  nube topic delete orders`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.TopicDelete(cmd.Context(), args[0])
		},
	}
}

// pubOptions are nube pub's flags.
type pubOptions struct {
	id    string
	whole bool
}

func newPubCmd(g *globals) *cobra.Command {
	var o pubOptions
	cmd := &cobra.Command{
		Use:   "pub [OWNER/]NAME [MESSAGE|-]",
		Short: "Publish a message on a topic (or each line of standard input)",
		Long: `Publish MESSAGE on the topic, signed by this node's user, and print its
offset (offsets count from 1; a live-only topic keeps none: it prints
"published"). With '-'
or no MESSAGE, each line of standard input is a message, published in turn;
with --whole, all of standard input is one message (up to 1 MiB).

A durable topic answers once a majority of its holders stored the message.
--id names the message: a publish repeated with the same ID (a retry after
a lost answer) is stored once and answered with the first offset. With
several lines, line N gets the ID ID-N. With --json, one JSON document a line.`,
		Example: `  nube pub events 'deploy finished'
  tail -f app.log | nube pub logs -
  nube pub orders --id order-17 < order17.json --whole
  nube pub 12D3KooO.../chat hello          # on another user's topic, with a grant`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return publish(cmd.Context(), g, c, args, o, os.Stdin)
		},
	}
	cmd.Flags().StringVar(&o.id, "id", "", "the message's ID: a repeat is stored once (lines get ID-1, ID-2, …)")
	cmd.Flags().BoolVar(&o.whole, "whole", false, "with standard input: all of it is one message, not one a line")
	return cmd
}

// publish is nube pub: the message of args, or stdin's lines (or all of
// it), one publish each, printing each ack.
func publish(ctx context.Context, g *globals, c *client.Client, args []string, o pubOptions, stdin io.Reader) error {
	topic := args[0]
	one := func(data []byte, id string) error {
		ack, err := c.TopicPublish(ctx, topic, data, id)
		if err != nil {
			return err
		}
		if g.json {
			return json.NewEncoder(g.out).Encode(ack)
		}
		switch {
		case !ack.Durable && ack.Offset == 0:
			g.printf("published (a live-only topic: no offset)\n")
		case ack.Duplicate:
			g.printf("offset %d (a duplicate: stored before)\n", ack.Offset)
		default:
			g.printf("offset %d\n", ack.Offset)
		}
		return nil
	}
	if len(args) == 2 && args[1] != "-" {
		if o.whole {
			return errors.New("--whole reads standard input: give '-' or no MESSAGE")
		}
		return one([]byte(args[1]), o.id)
	}
	if o.whole {
		data, err := io.ReadAll(io.LimitReader(stdin, maxMessage+1))
		if err != nil {
			return err
		}
		if len(data) > maxMessage {
			return fmt.Errorf("standard input is over %d bytes, the largest message a topic carries", maxMessage)
		}
		return one(data, o.id)
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxMessage)
	n := 0
	for sc.Scan() {
		n++
		id := ""
		if o.id != "" {
			id = o.id + "-" + strconv.Itoa(n)
		}
		if err := one(sc.Bytes(), id); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return fmt.Errorf("line %d is over %d bytes, the largest message a topic carries", n+1, maxMessage)
	}
	return sc.Err()
}

// subOptions are nube sub's flags.
type subOptions struct {
	from     string
	since    string
	consumer string
	ackWait  time.Duration
}

// request turns nube sub's flags into a subscription.
func (o subOptions) request(topic string, now time.Time) (client.TopicSubscribe, error) {
	req := client.TopicSubscribe{Topic: topic, Consumer: o.consumer, AckWait: o.ackWait}
	if o.from != "" && o.since != "" {
		return req, errors.New("--from and --since exclude each other: start at an offset or at a time")
	}
	if o.from != "" {
		off, err := strconv.ParseUint(o.from, 10, 64)
		if err != nil {
			return req, fmt.Errorf("--from %q: want an offset, as 'nube pub' and 'nube topic info' print them", o.from)
		}
		req.From = &off
	}
	if o.since != "" {
		t, err := parseSince(o.since, now)
		if err != nil {
			return req, err
		}
		req.Since = t
	}
	if o.ackWait < 0 {
		return req, errors.New("--ack-wait must be more than zero")
	}
	if o.ackWait > 0 && o.consumer == "" {
		return req, errors.New("--ack-wait is for a consumer: add --consumer NAME")
	}
	// A consumer's message is acked once printed: the CLI acks each
	// after writing it out.
	req.ClientAck = o.consumer != ""
	return req, nil
}

// parseSince reads a time, a date, or a duration back from now ("10m").
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseAge(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %s: a duration back from now is positive", s)
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateTime, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a time (2026-12-08T09:00:00Z), a date (2026-12-08) or a duration back from now (10m, 2d)", s)
}

func newSubCmd(g *globals) *cobra.Command {
	var o subOptions
	cmd := &cobra.Command{
		Use:   "sub [OWNER/]NAME",
		Short: "Print a topic's messages as they come, until interrupted",
		Long: `Subscribe to the topic and print each message, a line each, until
interrupted (with --json, one JSON document a line, the message's bytes in
base64 under "data", with its offset, ID, publisher and time).

By default the subscription starts with the next message published. On a
durable topic, --from starts at an offset and --since at a time (RFC 3339,
a date, or a duration back from now: 10m, 2d).

--consumer names a durable consumer kept on the topic's holders: it resumes
where it left, and each message is printed at least once; each is acked
once printed. A message not acked within --ack-wait (the CLI was stopped
midway) goes again. Several 'nube sub --consumer NAME' share the messages:
each goes to one of them (a work queue). A consumer behind the topic's
retention fails with the first offset it can still read.`,
		Example: `  nube sub events
  nube sub orders --from 0
  nube sub orders --since 1h --json | jq -r '.data | @base64d'
  nube sub orders --consumer billing --ack-wait 2m
  nube sub 12D3KooO.../chat`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0], time.Now())
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return subscribe(cmd.Context(), g, c, req)
		},
	}
	cmd.Flags().StringVar(&o.from, "from", "", "start at this offset of a durable topic")
	cmd.Flags().StringVar(&o.since, "since", "", "start at this time: RFC 3339, a date, or a duration back from now (10m)")
	cmd.Flags().StringVar(&o.consumer, "consumer", "", "a durable consumer: resume where it left, each message at least once")
	cmd.Flags().DurationVar(&o.ackWait, "ack-wait", 0, "how long a consumer's message waits for its ack before it goes again (default 30s)")
	return cmd
}

// subscribe prints a subscription's messages until ctx ends, acking each
// consumer's delivery once written.
func subscribe(ctx context.Context, g *globals, c *client.Client, req client.TopicSubscribe) error {
	out := bufio.NewWriter(g.out)
	for m, err := range c.TopicSubscribe(ctx, req) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if m.Subscribed {
			continue
		}
		ack := m.Ack
		if g.json {
			m.Ack = "" // the CLI's to spend, not the reader's
			if err := json.NewEncoder(out).Encode(m); err != nil {
				return err
			}
		} else {
			out.WriteString(termsafe.Line(string(m.Data)))
			out.WriteByte('\n')
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if ack != "" {
			// Printed, so acked, even if Ctrl-C came meanwhile: the
			// next subscriber of the consumer starts after it.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := c.TopicAck(actx, ack)
			cancel()
			if err != nil {
				return fmt.Errorf("ack offset %d: %w", m.Offset, err)
			}
		}
	}
	return nil
}
