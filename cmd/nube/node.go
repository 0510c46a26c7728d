package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api/client"
)

func newIDCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Print the node's peer ID, its user ID and its addresses",
		Long: `Print the running node's peer ID, the ID of its user (whose account on the
ledger it pays from and is paid to; a payment names the user, or a node of
the user's), and the multiaddrs other nodes can reach it at: give one of
those to 'nube connect' or '--bootstrap' on another machine. Each line says
which it is.`,
		Example: `  nube id
  nube id --json | jq -r .id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.ID, error) {
				return c.ID(ctx)
			}, func(id client.ID) error {
				g.printf("peer  %s\n", id.ID)
				g.printf("user  %s\n", id.UserID)
				for _, a := range id.Addrs {
					g.printf("addr  %s\n", a)
				}
				return nil
			})
		},
	}
}

func newPeersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "peers",
		Short:   "List the peers the node is connected to",
		Long:    "List the running node's peers, a line each: peer ID, direction of the connection, latency and the remote address (one more line for each further address, if several connections reach the peer).",
		Example: "  nube peers\n  nube peers --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.PeerInfo, error) {
				return c.Peers(ctx)
			}, func(peers []client.PeerInfo) error {
				return printPeers(g.out, peers)
			})
		},
	}
}

// printPeers writes peers as a table with a header, each remote address
// once: two connections to a peer from one address show one address.
func printPeers(w io.Writer, peers []client.PeerInfo) error {
	if len(peers) == 0 {
		_, err := fmt.Fprintln(w, "no peers connected yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tDIRECTION\tLATENCY\tADDRESS")
	for _, p := range peers {
		lat := "-"
		if p.LatencyMS > 0 {
			lat = fmt.Sprintf("%.2fms", p.LatencyMS)
		}
		dir := p.Direction
		if p.Relayed {
			dir += ", relayed"
		}
		var addrs []string
		for _, a := range p.Addrs {
			if !slices.Contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			addrs = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, dir, lat, addrs[0])
		for _, a := range addrs[1:] {
			fmt.Fprintf(tw, "\t\t\t%s\n", a)
		}
	}
	return tw.Flush()
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Summarise the node's state",
		Long:    "Summarise the running node's state: identity, uptime, peers, DHT, reachability.",
		Example: "  nube status\n  nube status --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.Status, error) {
				return c.Status(ctx)
			}, func(st client.Status) error {
				printStatus(g, st)
				return nil
			})
		},
	}
}

func printStatus(g *globals, st client.Status) {
	g.printf("peer ID       %s\n", st.ID)
	g.printf("user          %s\n", st.UserID)
	g.printf("version       %s\n", st.Version)
	g.printf("up for        %s\n", st.Uptime)
	g.printf("network       %s\n", st.Network)
	g.printf("peers         %d connected, %d in the DHT routing table\n", st.Peers, st.RoutingTable)
	reach := st.Reachability
	if st.RelayService {
		reach += ", relaying for others"
	}
	g.printf("reachability  %s\n", reach)
	mdns := "on"
	if !st.MDNS {
		mdns = "off"
	}
	g.printf("mDNS          %s\n", mdns)
	if st.IPFSRoutingTable >= 0 {
		g.printf("IPFS DHT      %d in its routing table\n", st.IPFSRoutingTable)
	} else {
		g.printf("IPFS DHT      off\n")
	}
	g.printf("data dir      %s\n", st.DataDir)
	for i, a := range st.Addrs {
		label := "addresses"
		if i > 0 {
			label = ""
		}
		g.printf("%-13s %s\n", label, a)
	}
}

func newConnectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "connect MULTIADDR",
		Short: "Connect the node to a peer",
		Long: `Connect the running node to the peer at MULTIADDR, which must end in
/p2p/<peer ID> (as 'nube id' prints on the other machine).`,
		Example: "  nube connect /ip4/192.0.2.10/udp/4040/quic-v1/p2p/12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			g.printf("connected to %s\n", res.ID)
			return nil
		},
	}
}

func newPingCmd(g *globals) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Measure the round trip to a peer",
		Long: `Ping PEER (a peer ID) from the running node and print each round-trip
time, then a summary. The node finds the peer through the DHT if it is not
connected to it.`,
		Example: "  nube ping 12D3KooW...\n  nube ping -n 10 --json 12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 || count > 100 {
				return fmt.Errorf("-n must be between 1 and 100, not %d", count)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			all := client.PingResult{Peer: args[0]}
			for i := 0; i < count; i++ {
				r, err := c.Ping(cmd.Context(), args[0], 1)
				if err != nil {
					return err
				}
				all.Peer = r.Peer
				all.RTTMS = append(all.RTTMS, r.RTTMS...)
				if !g.json {
					g.printf("pong from %s: time=%.3f ms\n", r.Peer, r.RTTMS[0])
				}
				if i+1 < count {
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(time.Second):
					}
				}
			}
			if g.json {
				return g.printJSON(all)
			}
			lo, hi, sum := math.Inf(1), 0.0, 0.0
			for _, v := range all.RTTMS {
				lo, hi, sum = math.Min(lo, v), math.Max(hi, v), sum+v
			}
			g.printf("%d pings: min %.3f ms, avg %.3f ms, max %.3f ms\n", len(all.RTTMS), lo, sum/float64(len(all.RTTMS)), hi)
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "n", 3, "how many pings, one a second (1 to 100)")
	return cmd
}

func newVersionCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print nube's version (with --all, the running daemon's too)",
		Long: `Print this nube command's version. With --all, ask the daemon running on
the data dir for its version too: after an upgrade, the daemon runs the old
binary until it is restarted.`,
		Example: "  nube version\n  nube version --all\n  nube version --all --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all {
				if g.json {
					return g.printJSON(map[string]string{"version": nube.Version})
				}
				g.printf("nube %s\n", nube.Version)
				return nil
			}
			c, err := g.client()
			if err != nil {
				return fmt.Errorf("the CLI is nube %s; the daemon's version: %w", nube.Version, err)
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return fmt.Errorf("the CLI is nube %s; the daemon's version: %w", nube.Version, err)
			}
			if g.json {
				return g.printJSON(map[string]string{"version": nube.Version, "daemon": st.Version})
			}
			g.printf("cli     %s\n", nube.Version)
			g.printf("daemon  %s (%s, peer %s)\n", st.Version, c.URL, st.ID)
			if st.Version != nube.Version {
				g.printf("the daemon runs another version than this command; restart it ('nube up') to run this one\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also print the version of the daemon running on the data dir")
	return cmd
}
