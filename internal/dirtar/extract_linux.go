package dirtar

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openTree opens dir as a tree on openat2 (Linux 5.6 and later): every
// directory is opened with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so the
// kernel itself refuses a link anywhere on the way, and each entry is
// made, renamed, or given its mode relative to its directory's descriptor.
// Where openat2 is missing, or a sandbox refuses it, the tree is os.Root's.
// Unless follow, a symlink at dir itself is refused (O_NOFOLLOW).
func openTree(dir string, follow bool) (tree, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(dir, flags, 0)
	if !follow && (err == unix.ELOOP || err == unix.ENOTDIR) {
		// With O_DIRECTORY, Linux says ENOTDIR for a link to a directory.
		if fi, lerr := os.Lstat(dir); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w", dir, ErrDirIsSymlink)
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	t := &fdTree{fd: fd, dir: dir}
	probe, err := t.openDir(".")
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		unix.Close(fd)
		return openRootTree(dir, follow)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "openat2", Path: dir, Err: err}
	}
	unix.Close(probe)
	return t, nil
}

type fdTree struct {
	fd  int    // the directory's
	dir string // its path, for file names in errors
}

func (t *fdTree) close() error { return unix.Close(t.fd) }

// openDir opens the directory rel beneath the tree, following no link on
// the way nor at its end. The kernel may answer EAGAIN when a rename
// races the lookup; it is tried again.
func (t *fdTree) openDir(rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, // a link at the end too is ELOOP
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 100 {
		fd, err := unix.Openat2(t.fd, rel, how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// parent opens name's directory and returns it with name's last part.
func (t *fdTree) parent(name string) (int, string, error) {
	dir, base := split(name)
	fd, err := t.openDir(dir)
	if err != nil {
		return -1, "", t.openError(name, dir, err)
	}
	return fd, base, nil
}

// openError says why the directory dir, on the way to name, did not open.
func (t *fdTree) openError(name, dir string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return escapes(name)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s: not a directory on the way", name)
	}
	return &os.PathError{Op: "openat2", Path: filepath.Join(t.dir, dir), Err: err}
}

// typeAt reports the type of base in the directory fd, not following a
// link.
func typeAt(fd int, base string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, err
	}
	return st.Mode & unix.S_IFMT, nil
}

func (t *fdTree) mkdir(name string) (bool, error) {
	fd, base, err := t.parent(name)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	err = unix.Mkdirat(fd, base, 0o755)
	if err == unix.EEXIST {
		switch typ, err := typeAt(fd, base); {
		case err != nil:
			return false, &os.PathError{Op: "fstatat", Path: filepath.Join(t.dir, name), Err: err}
		case typ == unix.S_IFDIR:
			return false, nil
		case typ == unix.S_IFLNK:
			return false, escapes(name)
		default:
			return false, fmt.Errorf("%s: there and not a directory", name)
		}
	}
	if err != nil {
		return false, &os.PathError{Op: "mkdirat", Path: filepath.Join(t.dir, name), Err: err}
	}
	return true, nil
}

func (t *fdTree) create(name string) (part, error) {
	fd, base, err := t.parent(name)
	if err != nil {
		return nil, err
	}
	for range 100 {
		p := partName(base)
		f, err := unix.Openat(fd, p, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "openat", Path: filepath.Join(t.dir, name), Err: err}
		}
		path := filepath.Join(t.dir, filepath.FromSlash(name))
		return &fdPart{File: os.NewFile(uintptr(f), path), dirfd: fd, name: name, base: base, part: p}, nil
	}
	unix.Close(fd)
	return nil, fmt.Errorf("%s: could not make a part file beside it", name)
}

// fdPart is a part file made in the directory dirfd, which it holds open
// until it is committed or aborted.
type fdPart struct {
	*os.File
	dirfd            int
	name, base, part string
}

func (p *fdPart) abort() {
	p.Close()
	unix.Unlinkat(p.dirfd, p.part, 0)
	unix.Close(p.dirfd)
}

func (p *fdPart) commit(m Meta) error {
	err := func() error {
		if m.Mode != 0 {
			if err := p.Chmod(m.Mode.Perm()); err != nil { // fchmod: the file itself
				return err
			}
		}
		if err := p.Close(); err != nil {
			return err
		}
		if !m.MTime.IsZero() {
			if err := utimes(p.dirfd, p.part, m); err != nil {
				return err
			}
		}
		// Over a link at the name, rename replaces the link.
		return unix.Renameat(p.dirfd, p.part, p.dirfd, p.base)
	}()
	if err != nil {
		p.abort()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	unix.Close(p.dirfd)
	return nil
}

func (t *fdTree) symlink(target, name string) error {
	fd, base, err := t.parent(name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.Symlinkat(target, fd, base)
	if err == unix.EEXIST {
		if typ, _ := typeAt(fd, base); typ != unix.S_IFLNK {
			return fmt.Errorf("%s: there and not a symlink", name)
		}
		if err := unix.Unlinkat(fd, base, 0); err != nil {
			return &os.PathError{Op: "unlinkat", Path: filepath.Join(t.dir, name), Err: err}
		}
		err = unix.Symlinkat(target, fd, base)
	}
	if err != nil {
		return &os.PathError{Op: "symlinkat", Path: filepath.Join(t.dir, name), Err: err}
	}
	return nil
}

func (t *fdTree) setMeta(name string, m Meta) error {
	fd, err := t.openDir(name)
	if err != nil {
		return t.openError(name, name, err)
	}
	defer unix.Close(fd)
	if m.Mode != 0 {
		if err := unix.Fchmod(fd, uint32(m.Mode.Perm())); err != nil {
			return &os.PathError{Op: "fchmod", Path: filepath.Join(t.dir, name), Err: err}
		}
	}
	if !m.MTime.IsZero() {
		// "." in the directory opened is the directory itself.
		if err := utimes(fd, ".", m); err != nil {
			return &os.PathError{Op: "utimensat", Path: filepath.Join(t.dir, name), Err: err}
		}
	}
	return nil
}

// utimes sets the access and modification times of base in the directory
// fd to m's, not following a link.
func utimes(fd int, base string, m Meta) error {
	ts, err := unix.TimeToTimespec(m.MTime)
	if err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
