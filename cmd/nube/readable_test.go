package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api/client"
)

// TestHelpExamples walks the command tree: every ledger, credit, group,
// pin and topic command shows an example in its help.
func TestHelpExamples(t *testing.T) {
	root := newRoot(io.Discard)
	var missing []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Example == "" {
			missing = append(missing, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, name := range []string{"ledger", "credit", "group", "pin", "topic", "job"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("no command %q: %v", name, err)
		}
		if len(c.Commands()) == 0 {
			t.Fatalf("%q has no subcommands: the walk proves nothing", name)
		}
		walk(c)
	}
	if len(missing) > 0 {
		t.Fatalf("commands without an Example in their help: %s", strings.Join(missing, ", "))
	}
}

// TestPrintPeers: 'nube peers' has column headers, and an address two
// connections share shows once.
func TestPrintPeers(t *testing.T) {
	var b strings.Builder
	err := printPeers(&b, []client.PeerInfo{
		{ID: "12D3KooWAAA", Direction: "outbound", LatencyMS: 1.5,
			Addrs: []string{"/ip4/10.0.0.1/tcp/4040", "/ip4/10.0.0.1/tcp/4040", "/ip4/10.0.0.1/udp/4040/quic-v1"}},
		{ID: "12D3KooWBBB", Direction: "inbound", Relayed: true, Addrs: []string{"/ip4/10.0.0.2/tcp/4040"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "PEER DIRECTION LATENCY ADDRESS" {
		t.Fatalf("header %q, want PEER DIRECTION LATENCY ADDRESS:\n%s", lines[0], out)
	}
	if n := strings.Count(out, "/ip4/10.0.0.1/tcp/4040"); n != 1 {
		t.Fatalf("an address two connections share shows %d times:\n%s", n, out)
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "12D3KooWAAA") || !strings.Contains(lines[1], "1.50ms") ||
		strings.TrimSpace(lines[2]) != "/ip4/10.0.0.1/udp/4040/quic-v1" ||
		!strings.HasPrefix(lines[3], "12D3KooWBBB") || !strings.Contains(lines[3], "inbound, relayed") {
		t.Fatalf("want a header, a line a peer and a line for each further address:\n%s", out)
	}
	// The address column lines up under its header.
	col := strings.Index(lines[0], "ADDRESS")
	if strings.Index(lines[1], "/ip4/") != col || strings.Index(lines[2], "/ip4/") != col {
		t.Fatalf("addresses not under their header:\n%s", out)
	}
	b.Reset()
	if err := printPeers(&b, nil); err != nil || b.String() != "no peers connected yet\n" {
		t.Fatalf("no peers: %q, %v", b.String(), err)
	}
}
