//go:build !linux

package dirtar

// openTree opens dir as a tree on os.Root, the way every system has.
func openTree(dir string, follow bool) (tree, error) { return openRootTree(dir, follow) }
