package dirtar

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// rootTree is a tree on os.Root, for any system: os.Root keeps every name
// inside the directory, but follows a symlink that stays inside it, so
// each directory on the way to a name is checked with Lstat first. Only
// someone writing in the directory while it is extracted could slip a
// link in between the check and the use, and even then not out of it.
type rootTree struct{ r *os.Root }

// openRootTree opens dir; unless follow, dir must not be a symlink, and
// must still be the directory Lstat saw once it is open.
func openRootTree(dir string, follow bool) (tree, error) {
	var before fs.FileInfo
	if !follow {
		fi, err := os.Lstat(dir)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w", dir, ErrDirIsSymlink)
		}
		before = fi
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if before != nil {
		if fi, err := r.Stat("."); err != nil || !os.SameFile(before, fi) {
			r.Close()
			return nil, fmt.Errorf("%s: %w: it was replaced while it was opened", dir, ErrDirIsSymlink)
		}
	}
	return rootTree{r}, nil
}

func (t rootTree) close() error { return t.r.Close() }

// check refuses a name the system would read otherwise than as its parts
// (on Windows a backslash or colon, which Read lets through), and a name
// with a link or a non-directory on the way to it.
func (t rootTree) check(name string) error {
	if runtime.GOOS == "windows" && (strings.ContainsAny(name, `\:`) || !filepath.IsLocal(name)) {
		return fmt.Errorf("entry %q: %w: not a name this system can hold", name, ErrBadName)
	}
	for i := 0; ; {
		j := strings.IndexByte(name[i:], '/')
		if j < 0 {
			return nil
		}
		i += j
		fi, err := t.r.Lstat(name[:i])
		switch {
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return escapes(name)
		case !fi.IsDir():
			return fmt.Errorf("%s: %s is not a directory", name, name[:i])
		}
		i++
	}
}

// is reports what is at name itself, not following a link.
func (t rootTree) is(name string) (fs.FileMode, error) {
	fi, err := t.r.Lstat(name)
	if err != nil {
		return 0, err
	}
	return fi.Mode().Type(), nil
}

func (t rootTree) mkdir(name string) (bool, error) {
	if err := t.check(name); err != nil {
		return false, err
	}
	err := t.r.Mkdir(name, 0o755)
	if errors.Is(err, fs.ErrExist) {
		switch typ, err := t.is(name); {
		case err != nil:
			return false, err
		case typ == fs.ModeDir:
			return false, nil
		case typ == fs.ModeSymlink:
			return false, escapes(name)
		default:
			return false, fmt.Errorf("%s: there and not a directory", name)
		}
	}
	return err == nil, err
}

func (t rootTree) create(name string) (part, error) {
	if err := t.check(name); err != nil {
		return nil, err
	}
	dir, base := split(name)
	for range 100 {
		p := filepath.ToSlash(filepath.Join(dir, partName(base)))
		f, err := t.r.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &rootPart{File: f, t: t, name: name, part: p}, nil
	}
	return nil, fmt.Errorf("%s: could not make a part file beside it", name)
}

type rootPart struct {
	*os.File
	t          rootTree
	name, part string
}

func (p *rootPart) abort() {
	p.Close()
	p.t.r.Remove(p.part)
}

func (p *rootPart) commit(m Meta) error {
	err := func() error {
		if m.Mode != 0 {
			if err := p.Chmod(m.Mode.Perm()); err != nil {
				return err
			}
		}
		if err := p.Close(); err != nil {
			return err
		}
		if !m.MTime.IsZero() {
			// The part file is ours, made with O_EXCL a moment ago.
			if err := p.t.r.Chtimes(p.part, m.MTime, m.MTime); err != nil {
				return err
			}
		}
		// The name's directory was checked when the part was made in it;
		// a link at the name itself is replaced, not followed.
		return p.t.r.Rename(p.part, p.name)
	}()
	if err != nil {
		p.abort()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}

func (t rootTree) symlink(target, name string) error {
	if err := t.check(name); err != nil {
		return err
	}
	err := t.r.Symlink(target, name)
	if errors.Is(err, fs.ErrExist) {
		if typ, _ := t.is(name); typ != fs.ModeSymlink {
			return fmt.Errorf("%s: there and not a symlink", name)
		}
		if err := t.r.Remove(name); err != nil {
			return err
		}
		err = t.r.Symlink(target, name)
	}
	return err
}

func (t rootTree) setMeta(name string, m Meta) error {
	if err := t.check(name); err != nil {
		return err
	}
	if typ, err := t.is(name); err != nil {
		return err
	} else if typ != fs.ModeDir {
		return escapes(name)
	}
	if m.Mode != 0 {
		if err := t.r.Chmod(name, m.Mode.Perm()); err != nil {
			return err
		}
	}
	if !m.MTime.IsZero() {
		return t.r.Chtimes(name, m.MTime, m.MTime)
	}
	return nil
}
