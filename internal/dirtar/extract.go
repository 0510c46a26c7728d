package dirtar

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Extract unpacks the directory stream r into dir, making dir if need be;
// Read refuses entries that would land outside it. Files get the
// permissions new files get (0644 less the umask), directories 0755 less
// the umask, unless the entry carries a mode. Directories get the mode and
// time they carry once everything is written in them (a read-only mode
// would stop the writing, and writing changes a directory's time),
// deepest first; root is dir's own.
func Extract(r io.Reader, dir string, root Meta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type dirMeta struct {
		path string
		meta Meta
	}
	dirs := []dirMeta{{dir, root}}
	err := Read(r, func(e Entry, body io.Reader) error {
		p := filepath.Join(dir, filepath.FromSlash(e.Name))
		switch e.Kind {
		case Dir:
			dirs = append(dirs, dirMeta{p, e.Meta})
			return os.MkdirAll(p, 0o755)
		case Symlink:
			// A second extract into the same place replaces the link, as
			// it replaces a file.
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				if err := os.Remove(p); err != nil {
					return err
				}
			}
			return os.Symlink(e.Target, p)
		default:
			return writeFile(body, p, e.Meta)
		}
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := applyMeta(dirs[i].path, dirs[i].meta); err != nil {
			return err
		}
	}
	return nil
}

// writeFile saves r at p through a part file beside it, so that a stream
// cut short never leaves a partial file under the final name.
func writeFile(r io.Reader, p string, m Meta) error {
	var tmp *os.File
	for range 100 {
		name := filepath.Join(filepath.Dir(p), fmt.Sprintf(".%s.part-%d", filepath.Base(p), rand.Uint64()))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		tmp = f
		break
	}
	if tmp == nil {
		return fmt.Errorf("%s: could not make a temporary file beside it", p)
	}
	defer os.Remove(tmp.Name())
	// A MiB at a time: io.Copy's 32 KiB made the CLI's get of a large
	// file a third more CPU.
	if _, err := io.CopyBuffer(struct{ io.Writer }{tmp}, struct{ io.Reader }{r}, make([]byte, 1<<20)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := applyMeta(tmp.Name(), m); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// applyMeta gives p the mode and time m carries, where it carries them.
func applyMeta(p string, m Meta) error {
	if m.Mode != 0 {
		if err := os.Chmod(p, m.Mode.Perm()); err != nil {
			return err
		}
	}
	if !m.MTime.IsZero() {
		if err := os.Chtimes(p, m.MTime, m.MTime); err != nil {
			return err
		}
	}
	return nil
}
