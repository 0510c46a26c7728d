// Command nube runs a nube node and talks to it.
//
//	nube up                  start a node (daemon) with its API and dashboard
//	nube config show | get | set | unset    nube up's settings in the data dir
//	nube id | peers | status what the running node is and sees
//	nube connect MULTIADDR   connect to a peer
//	nube ping PEER           measure the round trip to a peer
//	nube add | get | cat | ls | pin | gc | repo verify    content, IPFS-compatible
//	nube remote ls PEER      the functions a peer serves for remote calls
//	nube service publish | ls | info | runs    WebAssembly services
//	nube call NAME [--n N]   run a service (or 'a | b') on stdin, on N nodes
//	nube space …             key/value spaces you own, placed where you say
//	nube topic … | pub | sub event streams you own: live, durable, work queues
//	nube open                log a browser into the node's dashboard
//	nube demo --nodes 3      a small cloud of nodes in one process, to try things
//
// Every command but up, config and demo finds the running daemon through its data
// dir (--data, default $NUBE_DATA or ~/.nube). Output is text for people,
// or JSON with --json.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/termsafe"
)

// globals holds the flags every command shares.
type globals struct {
	dataDir   string
	json      bool
	remoteAPI bool
	out       io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout).ExecuteContext(ctx)
	interrupted := ctx.Err() != nil // before stop, which ends ctx too
	stop()
	var code exitCode
	switch {
	case errors.As(err, &code):
		os.Exit(int(code))
	case err != nil && interrupted:
		// Ctrl-C or SIGTERM: one short line, not the call it cut short.
		fmt.Fprintln(os.Stderr, "nube: interrupted")
		os.Exit(130)
	case err != nil:
		// Errors may carry other people's words (a module's stderr, a
		// peer's message): no control character reaches the terminal.
		fmt.Fprintln(os.Stderr, "nube: "+termsafe.Text(err.Error()))
		os.Exit(1)
	}
}

// exitCode is a command's answer given by its exit status alone, such as
// "not swapped": main exits with it and prints nothing more.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

func newRoot(out io.Writer) *cobra.Command {
	g := &globals{out: out}
	root := &cobra.Command{
		Use:   "nube",
		Short: "nube: a peer-to-peer cloud in one binary",
		Long: `nube turns any set of machines into one cloud that no company controls.

Start a node with 'nube up'. It finds other nodes on your network by itself
(mDNS) and across the internet through its DHT and bootstrap peers. The other
commands talk to the running node through its local API.`,
		Example: `  nube up                         # start a node on ~/.nube
  nube id                         # its peer ID and addresses
  nube peers                      # who it is connected to
  nube add -r ./photos            # store a directory, print its CID
  nube get bafybei...             # fetch it on another node
  nube service publish upper.wasm # publish a WebAssembly service
  echo hi | nube call upper --n 3 # run it on three nodes
  nube group create jobs PEER PEER # a replicated map with two other nodes
  nube topic create events        # an event stream; nube pub / nube sub
  nube demo --nodes 3             # three nodes in one process, to try things`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.PersistentFlags().StringVar(&g.dataDir, "data", defaultDataDir(),
		"the node's data dir (keys, peer book, API address); default $NUBE_DATA or ~/.nube")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print JSON instead of text, for scripts")
	root.PersistentFlags().BoolVar(&g.remoteAPI, "remote-api", false,
		"let the CLI send the API token to a daemon whose API address (in the data dir's api file) is not on this machine")
	root.AddCommand(
		newUpCmd(g), newConfigCmd(g),
		newIDCmd(g), newPeersCmd(g), newStatusCmd(g), newConnectCmd(g), newPingCmd(g),
		newAddCmd(g), newGetCmd(g), newCatCmd(g), newLsCmd(g), newPinCmd(g), newGCCmd(g), newRepoCmd(g), newDagCmd(g),
		newRemoteCmd(g),
		newServiceCmd(g), newCallCmd(g),
		newGroupCmd(g),
		newSpaceCmd(g),
		newTopicCmd(g), newPubCmd(g), newSubCmd(g),
		newJobCmd(g),
		newLedgerCmd(g), newCreditCmd(g),
		newUserCmd(g),
		newNameCmd(g), newKeyCmd(g), newRoutingCmd(g),
		newOpenCmd(g),
		newDemoCmd(g),
		newVersionCmd(g),
		newCacheCmd(g),
	)
	return root
}

func defaultDataDir() string {
	if d := os.Getenv("NUBE_DATA"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".nube"
	}
	return filepath.Join(home, ".nube")
}

// client opens the API client of the daemon on g.dataDir. The API address
// comes from a file in the data dir, so, unless --remote-api says
// otherwise, it must be a loopback address: whoever could write that file
// must not be able to collect the token.
func (g *globals) client() (*client.Client, error) {
	c, err := client.Open(g.dataDir)
	if err != nil {
		return nil, err
	}
	if !g.remoteAPI && !loopbackURL(c.URL) {
		return nil, fmt.Errorf("the API address in %s is %q, not on this machine; the CLI sends its token only to loopback addresses (pass --remote-api if you meant it)",
			filepath.Join(g.dataDir, client.EndpointFile), c.URL)
	}
	return c, nil
}

// loopbackURL reports whether u is an http URL on a loopback address.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "http" {
		return false
	}
	h := p.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// printJSON writes v as indented JSON.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (g *globals) printf(format string, a ...any) {
	fmt.Fprintf(g.out, format, a...)
}

// query is most commands: it asks the daemon with fetch, then prints the
// answer as JSON with --json, else as text says.
func query[T any](ctx context.Context, g *globals, fetch func(context.Context, *client.Client) (T, error), text func(T) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	v, err := fetch(ctx, c)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(v)
	}
	return text(v)
}
