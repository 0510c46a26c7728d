package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"
)

func newOpenCmd(g *globals) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open the node's dashboard in your browser",
		Long: `Open the running node's dashboard in the default browser, logged in.

The link carries a one-time code, good for ten minutes: it sets a session
cookie in the browser that opens it and then no longer works. It is not the
API token. With --print the link is printed instead, to open elsewhere.`,
		Example: "  nube open\n  nube open --print",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			link, err := c.LoginLink(cmd.Context())
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(link)
			}
			if !printOnly {
				err := openBrowser(link.URL)
				if err == nil {
					g.printf("opened the dashboard in your browser\n")
					return nil
				}
				fmt.Fprintf(os.Stderr, "could not open a browser (%v); open this link instead:\n", err)
			}
			g.printf("%s\n", link.URL)
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the link instead of opening a browser")
	return cmd
}

// openBrowser asks the desktop to open url in the default browser.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The opener hands the link to the browser and ends; once this
	// process has exited, init reaps it.
	return cmd.Process.Release()
}
