package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nubecloud/nube/api"
)

func newOpenCmd(g *globals) *cobra.Command {
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "open",
		Short: "Open the node's dashboard in your browser",
		Long: `Open the running node's dashboard in the default browser, logged in.

Logging in takes a one-time code, good for ten minutes: it sets a session
cookie in the browser that uses it and then no longer works. It is not the
API token. The code never stands in a command line, where other users of
the machine could read it: open writes a page only you may read into the
data dir (open-*.html) and hands the browser that file, which sends it on
to the dashboard's login page.

The browser is $BROWSER if set (a command; %s in it stands for the
address), else the desktop's default. With --print the link is printed
instead, to open elsewhere (a browser that cannot read the data dir, such
as a sandboxed one). On a machine with no browser (no $BROWSER, and no
display or no xdg-open) open says so and prints the link; no page is
written.`,
		Example: "  nube open\n  nube open --print\n  BROWSER=firefox nube open",
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
				// Ask for a browser before writing a page with a code in
				// it: a machine with none (a server over ssh) gets the
				// link, and no file.
				open, err := browserOpener()
				if err == nil {
					var page string
					if page, err = writeLoginPage(g.dataDir, link.URL); err == nil {
						err = open(page)
					}
				}
				if err == nil {
					g.printf("opened the dashboard in your browser\n")
					return nil
				}
				fmt.Fprintf(os.Stderr, "%v.\nOpen this link in a browser on this machine instead; it logs in once, within %d minutes:\n",
					err, int(loginPageLife.Minutes()))
			}
			g.printf("%s\n", link.URL)
			return nil
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the link instead of opening a browser")
	return cmd
}

// loginPageLife is how long a login page is kept: as long as the code in
// it works (the API's loginCodeLife).
const loginPageLife = 10 * time.Minute

// writeLoginPage writes a page that sends a browser on to link into a new
// file of dataDir, readable by this user alone, and returns its file: URL.
// Pages older than a code's life are removed on the way. The link, with
// its code, is in the file only: a browser is handed the file's name.
func writeLoginPage(dataDir, link string) (string, error) {
	old, _ := filepath.Glob(filepath.Join(dataDir, "open-*.html"))
	for _, p := range old {
		if fi, err := os.Lstat(p); err == nil && time.Since(fi.ModTime()) > loginPageLife {
			os.Remove(p)
		}
	}
	f, err := os.CreateTemp(dataDir, "open-*.html") // 0600
	if err != nil {
		return "", fmt.Errorf("write the login page: %w", err)
	}
	_, err = f.Write(api.LoginPage(link))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write the login page: %w", err)
	}
	abs, err := filepath.Abs(f.Name())
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // C:/… on Windows
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

// browserOpener returns what opens a URL in a browser: $BROWSER if one of
// its commands is found, else the desktop's opener. It says why not where
// this machine has no browser to offer: on Linux and the BSDs, no
// $BROWSER and no display (a server reached over ssh) or no xdg-open. A
// URL is only ever handed to the browser as an argument; the caller hands
// it the name of a file, never a code.
func browserOpener() (func(url string) error, error) {
	env := os.Getenv("BROWSER")
	start := func(cmd *exec.Cmd) error {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("could not start a browser: %w", err)
		}
		// The opener hands the link to the browser and ends; once this
		// process has exited, init reaps it.
		return cmd.Process.Release()
	}
	if browserCommand(env, "") != nil {
		return func(url string) error { return start(browserCommand(env, url)) }, nil
	}
	switch runtime.GOOS {
	case "darwin":
		return func(url string) error { return start(exec.Command("open", url)) }, nil
	case "windows":
		return func(url string) error { return start(exec.Command("rundll32", "url.dll,FileProtocolHandler", url)) }, nil
	}
	why := "no $BROWSER"
	if env != "" {
		why = fmt.Sprintf("no command of $BROWSER (%q) found", env)
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return nil, fmt.Errorf("no browser on this machine: %s, and no display ($DISPLAY and $WAYLAND_DISPLAY are unset)", why)
	}
	xdg, err := exec.LookPath("xdg-open")
	if err != nil {
		return nil, fmt.Errorf("no browser on this machine: %s, and no xdg-open to find the desktop's", why)
	}
	return func(url string) error { return start(exec.Command(xdg, url)) }, nil
}

// browserCommand is the first command of the $BROWSER list env that can be
// found, with url in place of %s or after its words; nil if none.
func browserCommand(env, url string) *exec.Cmd {
	for _, c := range filepath.SplitList(env) {
		words := strings.Fields(c)
		if len(words) == 0 {
			continue
		}
		if _, err := exec.LookPath(words[0]); err != nil {
			continue
		}
		placed := false
		for i, w := range words[1:] {
			if strings.Contains(w, "%s") {
				words[i+1] = strings.ReplaceAll(w, "%s", url)
				placed = true
			}
		}
		if !placed {
			words = append(words, url)
		}
		return exec.Command(words[0], words[1:]...)
	}
	return nil
}
