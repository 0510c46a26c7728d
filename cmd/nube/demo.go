package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
)

func newDemoCmd(g *globals) *cobra.Command {
	var n int
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a small cloud of nodes in this process, to try things",
		Long: `Start N nodes in this one process, on loopback only. Each knows only the
first node; they find one another through the DHT. Each node gets a data dir
of its own under a temporary folder and an API, so every other nube command
works against any of them with --data; 'nube --data DIR open' opens a
node's dashboard, logged in. Ctrl-C stops them and removes the temporary
folder.`,
		Example: `  nube demo --nodes 5
  # then, in another terminal, with a data dir the demo printed:
  nube --data /tmp/nube-demo-123/node-2 peers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runDemo(cmd.Context(), g, n, logLevel) },
	}
	cmd.Flags().IntVar(&n, "nodes", 3, "how many nodes (1 to 64)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error (logs go to stderr)")
	return cmd
}

// demoNode is one node of the demo, as nube demo --json prints it. The
// dashboard asks for a login: 'nube --data DATA_DIR open' gives one, with
// a one-time code (no link carries the API token).
type demoNode struct {
	ID        string `json:"id"`
	API       string `json:"api"`
	Dashboard string `json:"dashboard"`
	DataDir   string `json:"data_dir"`
}

func runDemo(ctx context.Context, g *globals, n int, logLevel string) error {
	if n < 1 || n > 64 {
		return fmt.Errorf("--nodes must be between 1 and 64, not %d", n)
	}
	log, err := newLogger(logLevel)
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "nube-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	var nodes []*nube.Node
	var out []demoNode
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("node-%d", i))
		cfg := nube.Config{
			DataDir:     dir,
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			NoMDNS:      true,
			NoIPFS:      true,
			NoPortMap:   true,
			MaxMemory:   128 << 20,
			Logger:      log.With("node", i),
		}
		if i > 0 {
			cfg.Bootstrap = []string{nodes[0].Addrs()[0].String()}
		}
		nd, err := nube.Start(ctx, cfg)
		if err != nil {
			return fmt.Errorf("start node %d: %w", i, err)
		}
		nodes = append(nodes, nd)
		token := api.NewToken()
		srv, err := api.Listen(nd, "127.0.0.1:0", token, log)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		defer srv.Close()
		if err := client.WriteEndpoint(dir, srv.URL(), token); err != nil {
			return err
		}
		out = append(out, demoNode{ID: nd.ID().String(), API: srv.URL(), Dashboard: srv.URL() + "/", DataDir: dir})
	}

	// Wait (bounded) until every node is connected to every other: the
	// DHT has done its work and the demo is what it claims to be.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	meshed := true
	for _, nd := range nodes {
		if err := nd.WaitPeers(wctx, n-1); err != nil {
			meshed = false
			break
		}
	}
	cancel()

	if g.json {
		if err := g.printJSON(out); err != nil {
			return err
		}
	} else {
		g.printf("nube demo: %d nodes in this process, on loopback\n\n", n)
		for i, d := range out {
			g.printf("node %d  %s\n", i, d.ID)
			g.printf("        API        %s\n", d.API)
			g.printf("        dashboard  nube --data %s open   (logs you in at %s)\n", d.DataDir, d.Dashboard)
			g.printf("        data dir   %s\n", d.DataDir)
		}
		if meshed {
			g.printf("\nEvery node found every other through the DHT.\n")
		} else {
			g.printf("\nThe nodes are still finding one another; try 'nube peers' on each in a moment.\n")
		}
		g.printf("Try:  nube --data %s peers\n", out[len(out)-1].DataDir)
		g.printf("Press Ctrl-C to stop the demo (its data dirs are removed).\n")
	}
	<-ctx.Done()
	return nil
}
