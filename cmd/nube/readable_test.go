package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpExamples walks the command tree: every ledger, credit, group
// and pin command shows an example in its help.
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
	for _, name := range []string{"ledger", "credit", "group", "pin"} {
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
