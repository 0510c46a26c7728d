package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/internal/dirtar"
	"github.com/nubecloud/nube/internal/progress"
	"github.com/nubecloud/nube/internal/termsafe"
)

func newAddCmd(g *globals) *cobra.Command {
	var recursive, quiet, hidden, noPin bool
	var name string
	cmd := &cobra.Command{
		Use:   "add FILE|DIR|-",
		Short: "Store a file or directory and print its CID",
		Long: `Store a file (or, with -r, a directory) on the node, pin it, announce it
to the network, and print its CID.

The CID is the one 'ipfs add --cid-version 1' gives for the same bytes:
CIDv1, sha2-256, 256 KiB chunks, raw leaves, balanced DAG. So content added
here can be fetched by IPFS nodes, and the other way round.

With no argument or '-', the file is read from standard input. Hidden files
(names starting with a dot) in a directory are skipped unless --hidden.
On a terminal a progress bar shows bytes, rate and time left.`,
		Example: `  nube add photo.jpg
  nube add -r ./site            # a directory
  tar c dir | nube add -q -     # from a pipe, print only the CID`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			src := "-"
			if len(args) == 1 {
				src = args[0]
			}
			var body io.Reader
			var total int64 = -1
			kind := "file"
			label := "added"
			if src == "-" {
				body = os.Stdin
			} else {
				fi, err := os.Stat(src)
				if err != nil {
					return err
				}
				if name == "" {
					name = filepath.Base(filepath.Clean(src))
				}
				if fi.IsDir() {
					if !recursive {
						return fmt.Errorf("%s is a directory: add it with -r", src)
					}
					kind = "tar"
					if total, err = treeSize(src, hidden); err != nil {
						return err
					}
					pr, pw := io.Pipe()
					go func() { pw.CloseWithError(writeTree(pw, src, hidden)) }()
					defer pr.Close()
					body = pr
				} else {
					f, err := os.Open(src)
					if err != nil {
						return err
					}
					defer f.Close()
					body = f
					if fi.Mode().IsRegular() { // not a pipe's or a device's 0
						total = fi.Size()
					}
				}
			}
			bar := progress.New(os.Stderr, "add", total, quiet || g.json)
			follow := func() {}
			f, sized := body.(*os.File)
			sized = sized && kind == "file" && total >= 0
			if sized {
				// A regular file goes with its length, straight from the
				// file to the socket; the bar follows the file's offset.
				follow = bar.Follow(f)
				body = &client.Sized{Reader: f, Size: total}
			} else {
				body = &progress.Reader{R: body, Bar: bar}
			}
			res, err := c.Add(cmd.Context(), body, kind, name, !noPin)
			follow()
			if sized && err == nil {
				bar.Set(total)
			}
			bar.Finish()
			if err != nil {
				return err
			}
			switch {
			case g.json:
				return g.printJSON(res)
			case quiet:
				g.printf("%s\n", res.CID)
			default:
				g.printf("%s %s %s\n", label, res.CID, name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "add a directory and everything in it")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the CID, no progress bar")
	cmd.Flags().BoolVar(&hidden, "hidden", false, "include hidden files (names starting with a dot)")
	cmd.Flags().BoolVar(&noPin, "no-pin", false, "do not pin: the next 'nube gc' removes it")
	cmd.Flags().StringVar(&name, "name", "", "a name for the pin (default: the file's name)")
	return cmd
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") && name != "." && name != ".." }

// treeSize adds up the sizes of the files writeTree will send.
func treeSize(root string, hidden bool) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && !hidden && isHidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// writeTree writes the directory root to w as a tar stream, with paths
// relative to root.
func writeTree(w io.Writer, root string, hidden bool) error {
	tw := dirtar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if !hidden && isHidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return tw.Dir(rel, dirtar.Meta{})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.Symlink(rel, target)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			return tw.File(rel, fi.Size(), dirtar.Meta{}, f)
		default:
			return fmt.Errorf("%s: not a file, directory or symlink", p)
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// defaultFindTimeout is how long cat, get and ls let the node look for
// content nobody reachable has, before they say so.
const defaultFindTimeout = 30 * time.Second

// lookingFor says on a terminal, if nothing came back within a second,
// what the node is doing to find p, and keeps the line current once a
// second from the node's list of fetches under way: how many peers it
// asked, how many provide. stop clears the line.
func lookingFor(ctx context.Context, c *client.Client, p string, timeout time.Duration) (stop func()) {
	f := os.Stderr
	if !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fmt.Fprint(f, "\r\033[K"+lookingLine(ctx, c, p, timeout, began)+"…")
			t.Reset(time.Second)
		}
	}()
	return func() {
		cancel()
		<-done
		if time.Since(began) >= time.Second {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

// lookingLine is the line lookingFor shows: from the fetch of p's root if
// the node has one under way, else from the newest fetch begun since the
// command started (a block further down the path).
func lookingLine(ctx context.Context, c *client.Client, p string, timeout time.Duration, began time.Time) string {
	name := termsafe.Line(p)
	giveUp := ""
	if timeout > 0 {
		giveUp = fmt.Sprintf(" (giving up after %v)", timeout)
	}
	fetches, err := c.Fetching(ctx)
	if err != nil {
		return "looking for " + name + " on the network" + giveUp
	}
	root, _, _ := strings.Cut(strings.TrimPrefix(p, "/ipfs/"), "/")
	var st *client.Fetching
	for i, e := range fetches {
		if e.Root == root {
			st = &fetches[i]
			break
		}
		if e.Started.After(began.Add(-time.Second)) && (st == nil || e.Started.After(st.Started)) {
			st = &fetches[i]
		}
	}
	switch {
	case st == nil:
		return "looking for " + name + " on the network" + giveUp
	case st.Providers == 0:
		return fmt.Sprintf("looking for %s: asked %d %s, no provider yet%s", name, st.Asked, plural(st.Asked, "peer", "peers"), giveUp)
	default:
		return fmt.Sprintf("found %d %s of %s, fetching", st.Providers, plural(st.Providers, "provider", "providers"), name)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func newGetCmd(g *globals) *cobra.Command {
	var out, maxSize string
	var quiet bool
	var timeout time.Duration
	var maxEntries, maxDepth int
	cmd := &cobra.Command{
		Use:   "get CID[/PATH]",
		Short: "Fetch a file or directory from the network and save it",
		Long: `Fetch a file or directory by CID (or a path inside a directory) and save
it: a file to -o or to its name in the current directory, a directory to -o
or to a directory named after the CID.

The node asks every provider it can find, connected or through the DHT,
for different blocks at once, and checks every block against its CID. On a
terminal a progress bar shows bytes, rate and time left. If no reachable
node provides it within --timeout, get says so and fails.

Files get the permissions new files get (0644 less your umask), directories
0755 less the umask; where the DAG carries a mode or a modification time
(UnixFS 1.5, as 'ipfs add --preserve-mode --preserve-mtime' writes), that
is what they get.

A mode from the DAG never gives group or others write (it loses 022, as
a umask would), and a directory that was there before the get (-o ., say)
keeps its own mode and time: the DAG's are for what get makes.

A directory is anyone's: one holding a name that is not a plain name
("..", ".", "", "a/b", a NUL) or a name twice is refused, and get never
follows a symlink on the way to what it writes in -o, whether the
directory made it or it was there before: remove such a link and get
again. Without -o, the name get saves under is one the DAG's author can
predict, so a symlink there (planted in /tmp, say) is refused, not
followed; -o given as a symlink to a directory is followed, as tar's -C.

A small DAG can stand for an endless tree (a directory that links one
child a million times), so get stops, with what it wrote so far left in
place, once the files pass --max-size, the entries --max-entries, or the
depth --max-depth. --max-size defaults to "auto": the free space of the
filesystem it writes to, less 1 GiB or 5% of the filesystem, whichever
is more (on Linux, macOS and FreeBSD; no cap elsewhere). A file whose
size is over the cap is refused before a byte is written. 0 lifts a cap.`,
		Example: `  nube get bafybei.../photo.jpg
  nube get -o site bafybei...   # a directory
  nube get --max-size 10GiB bafybei...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			c.FindTimeout = timeout
			named := out != ""
			if !named {
				out = path.Base(strings.TrimSuffix(strings.TrimPrefix(args[0], "/ipfs/"), "/"))
			}
			limit, err := getLimit(maxSize, out)
			if err != nil {
				return err
			}
			// On the node's machine, the node writes a file into
			// the part file itself (client.GetTo). Where no part file
			// can be made (a directory's -o in a directory yet to be
			// made), the bytes come over the API.
			var part *os.File
			if c.CanHandOver() {
				part, _ = createPart(out, 0o644)
			}
			if part != nil {
				defer func() {
					part.Close()
					os.Remove(part.Name())
				}()
			}
			stop := lookingFor(cmd.Context(), c, args[0], timeout)
			var d *client.Download
			err = client.ErrNoHandoff
			if part != nil {
				d, err = c.GetTo(cmd.Context(), args[0], part)
			}
			if errors.Is(err, client.ErrNoHandoff) {
				d, err = c.Get(cmd.Context(), args[0])
			}
			stop()
			if err != nil {
				return err
			}
			defer d.Close()
			if d.Kind != "directory" && limit > 0 && d.Size > limit {
				// A file's reader walks by the sizes its nodes record
				// and checks each part against them, so its size is
				// what would be written.
				return fmt.Errorf("%s is %s, over --max-size of %s: give a larger --max-size to save it", termsafe.Line(args[0]), progress.Bytes(d.Size), progress.Bytes(limit))
			}
			bar := progress.New(os.Stderr, "get", d.Size, quiet || g.json)
			meta := dirtar.Meta{Mode: d.Mode, MTime: d.MTime}
			switch {
			case d.Kind == "directory":
				err = dirtar.Extract(&progress.Reader{R: d, Bar: bar}, out, meta, dirtar.Options{
					NoFollow: !named, MaxBytes: limit, MaxEntries: maxEntries, MaxDepth: maxDepth,
				})
				switch {
				case errors.Is(err, dirtar.ErrDirIsSymlink):
					err = fmt.Errorf("%s is a symlink; give -o to choose where to save", termsafe.Line(out))
				case errors.Is(err, dirtar.ErrTooLarge):
					err = fmt.Errorf("%w; what was written is left in %s: give --max-size, --max-entries or --max-depth to allow more", err, termsafe.Line(out))
				}
			case d.HandedOver:
				follow := bar.Follow(part)
				_, err = io.Copy(io.Discard, d) // the node's report
				follow()
				if err == nil {
					bar.Set(d.Size)
					err = finishPart(part, out, meta)
				}
			default:
				err = writeFile(&progress.Reader{R: d, Bar: bar}, out, meta)
			}
			bar.Finish()
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"path": out, "kind": d.Kind})
			}
			if !quiet {
				g.printf("saved %s\n", termsafe.Line(out))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to save it")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultFindTimeout, "how long to look for a provider before giving up (0: for ever)")
	cmd.Flags().StringVar(&maxSize, "max-size", "auto", "stop once the files pass this many bytes (64MiB, 10GiB; 0: no cap; auto: the free space less 1 GiB or 5%)")
	cmd.Flags().IntVar(&maxEntries, "max-entries", 1_000_000, "stop at a directory tree of more entries (0: no cap)")
	cmd.Flags().IntVar(&maxDepth, "max-depth", 1000, "stop at a directory tree deeper than this (0: no cap)")
	return cmd
}

// getLimit is the byte cap of a get into out: the --max-size given, or
// for "auto" what the filesystem out is on can spare (freeSpace).
func getLimit(maxSize, out string) (int64, error) {
	if maxSize != "auto" {
		return parseSize(maxSize)
	}
	// The nearest directory that is there: out, or one above it.
	dir, err := filepath.Abs(out)
	if err != nil {
		return 0, err
	}
	for {
		spare, ok, err := freeSpace(dir)
		if err == nil {
			if !ok {
				return 0, nil
			}
			if spare <= 0 {
				return 0, fmt.Errorf("the filesystem of %s has less than 1 GiB or 5%% free: give --max-size to save there all the same", termsafe.Line(dir))
			}
			return spare, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return 0, err
		}
		dir = up
	}
}

// writeFile saves r at p through a temporary file, so that a cut-short
// download never leaves a partial file under the final name. The file gets
// the permissions a new file gets (0644 less the umask), not a temporary
// file's 0600: the temporary file is made with them. A mode or time the
// DAG carries (m) is applied as it is.
func writeFile(r io.Reader, p string, m dirtar.Meta) error {
	tmp, err := createPart(p, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := copyLarge(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	return finishPart(tmp, p, m)
}

// finishPart gives tmp, a part file createPart made beside p and now
// written, the mode and time m carries, closes it, and puts it at p. The
// mode goes on the open file, never through a name, and never gives
// group or others write (a DAG is anyone's). A link at p is replaced by
// the rename, never followed.
func finishPart(tmp *os.File, p string, m dirtar.Meta) error {
	if mode := m.Mode.Perm() &^ 0o022; mode != 0 {
		if err := tmp.Chmod(mode); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if !m.MTime.IsZero() {
		if err := os.Chtimes(tmp.Name(), m.MTime, m.MTime); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), p)
}

// copyLarge copies src to dst a MiB at a time. io.Copy's 32 KiB (and
// *os.File's ReadFrom, which falls back to it for a socket behind an HTTP
// body) makes a GiB 32,768 reads and as many writes; a MiB at a time cut
// the CLI's CPU for a 1 GiB cat or get by a third.
func copyLarge(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 1<<20))
}

// isRegular reports whether f is a regular file, not a terminal, pipe or
// device.
func isRegular(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

func newCatCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cat CID[/PATH]",
		Short: "Write a file to standard output",
		Long: `Write the file with this CID (or at this path inside a directory) to
standard output, fetching it from the network as it goes: the first bytes
come out before the whole file has arrived. If no reachable node provides
it within --timeout, cat says so and fails.`,
		Example: `  nube cat bafkrei... | less`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			c.FindTimeout = timeout
			stop := lookingFor(cmd.Context(), c, args[0], timeout)
			// Into a regular file on the node's machine, the node
			// writes it itself (client.CatTo); the Download is then
			// empty, and ends with the node's error if it failed.
			var d *client.Download
			err = client.ErrNoHandoff
			if f, ok := g.out.(*os.File); ok && c.CanHandOver() && isRegular(f) {
				d, err = c.CatTo(cmd.Context(), args[0], f)
			}
			if errors.Is(err, client.ErrNoHandoff) {
				d, err = c.Cat(cmd.Context(), args[0])
			}
			stop()
			if err != nil {
				return err
			}
			defer d.Close()
			_, err = copyLarge(g.out, d)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultFindTimeout, "how long to look for a provider before giving up (0: for ever)")
	return cmd
}

func newLsCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "ls CID[/PATH]",
		Short: "List a directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.EntryJSON, error) {
				c.FindTimeout = timeout
				defer lookingFor(ctx, c, args[0], timeout)()
				return c.Ls(ctx, args[0])
			}, func(entries []client.EntryJSON) error {
				// The names are the DAG author's: shown escaped, so a
				// control sequence in one is not obeyed (--json keeps
				// them exact).
				for _, e := range entries {
					name := termsafe.Line(e.Name)
					if e.Kind == "directory" {
						name += "/"
					}
					g.printf("%s %10s  %s\n", e.CID, progress.Bytes(int64(e.Size)), name)
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultFindTimeout, "how long to look for a provider before giving up (0: for ever)")
	return cmd
}

func newPinCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin",
		Short: "Keep content on this node (add, rm, ls)",
		Long: `Pinned content stays on this node through 'nube gc' and is announced to the
network, so other nodes can fetch it from here. 'nube add' pins what it adds.`,
		Example: `  nube pin add bafybei...   # fetch it all and keep it
  nube pin ls
  nube pin rm bafybei...`,
	}
	var name string
	var pinTimeout time.Duration
	add := &cobra.Command{
		Use:     "add CID",
		Short:   "Fetch everything under CID that this node lacks, and pin it",
		Example: "  nube pin add bafybei...\n  nube pin add bafybei... --name \"holiday photos\"",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			g.waiting("pinning "+args[0]+": waiting to fetch what this node lacks of it from the network", pinTimeout)
			ctx := cmd.Context()
			if pinTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, pinTimeout)
				defer cancel()
			}
			if err := c.Pin(ctx, args[0], name); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("pin %s: not all of it was fetched within --timeout %v: %w", args[0], pinTimeout, err)
				}
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"pinned": args[0]})
			}
			g.printf("pinned %s\n", args[0])
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "a name for the pin")
	add.Flags().DurationVar(&pinTimeout, "timeout", 0, "give up if it is not all fetched after this long (0: no limit)")
	rm := &cobra.Command{
		Use:     "rm CID",
		Short:   "Unpin CID; the next 'nube gc' removes what nothing else pins",
		Example: "  nube pin rm bafybei... && nube gc",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Unpin(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"unpinned": args[0]})
			}
			g.printf("unpinned %s\n", args[0])
			return nil
		},
	}
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List pinned content",
		Example: "  nube pin ls\n  nube pin ls --json | jq -r '.[].cid'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) ([]client.PinInfo, error) {
				return c.Pins(ctx)
			}, func(pins []client.PinInfo) error {
				for _, p := range pins {
					g.printf("%s  %s\n", p.CID, termsafe.Line(p.Name))
				}
				return nil
			})
		},
	}
	cmd.AddCommand(add, rm, ls)
	return cmd
}

func newGCCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove every block that no pin reaches",
		Long: `Remove every block not reachable from a pin. Adds and pins under way are
waited for, and what they bring in is kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return query(cmd.Context(), g, func(ctx context.Context, c *client.Client) (client.GCResult, error) {
				return c.GC(ctx)
			}, func(res client.GCResult) error {
				g.printf("removed %d blocks (%s), kept %d\n", res.Removed, progress.Bytes(res.Freed), res.Kept)
				return nil
			})
		},
	}
}

// errBadBlocks makes 'repo verify' exit non-zero when it finds damage.
var errBadBlocks = errors.New("the store has blocks whose bytes do not match their CID")

func newRepoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Look after the node's block store"}
	var remove bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every stored block against its CID",
		Long: `Read every block in the store and check that its bytes hash to its CID.
It exits with status 1 if any does not; --remove deletes such blocks so
that they are fetched afresh when next needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Verify(cmd.Context(), remove)
			if err != nil {
				return err
			}
			if g.json {
				if err := g.printJSON(res); err != nil {
					return err
				}
			} else {
				g.printf("checked %d blocks, %d bad\n", res.Checked, len(res.Bad))
				for _, b := range res.Bad {
					g.printf("bad %s\n", b)
				}
			}
			if len(res.Bad) > 0 && !res.Removed {
				return errBadBlocks
			}
			return nil
		},
	}
	verify.Flags().BoolVar(&remove, "remove", false, "delete the bad blocks")
	cmd.AddCommand(verify)
	return cmd
}

// createPart creates a new file beside p, under a hidden name of its own,
// with perm less the umask, as os.Create would make p itself.
func createPart(p string, perm fs.FileMode) (*os.File, error) {
	for range 100 {
		name := filepath.Join(filepath.Dir(p), fmt.Sprintf(".%s.part-%d", filepath.Base(p), rand.Uint64()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("%s: could not make a temporary file beside it", p)
}
