package content

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncWholeFS says that syncFS makes every block file durable in one call,
// so Puts need not remember which files they wrote.
const syncWholeFS = true

// syncFS flushes the file system that holds dir: one syncfs(2), however
// many block files an add or a fetch wrote.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil // no block file written yet
		}
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
