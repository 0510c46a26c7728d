package dirtar

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"unicode/utf8"
)

// ErrEscapes reports an entry that would be written through a symlink: one
// the stream made, or one already in the directory. Extract follows none.
var ErrEscapes = errors.New("a symlink is on the way: extraction follows none")

// Extract unpacks the directory stream r into dir, making dir if need be
// (dir itself may be a symlink: it is the caller's choice). Files get the
// permissions new files get (0644 less the umask), directories 0755 less
// the umask, unless the entry carries a mode.
//
// The stream may be anyone's, and nothing it holds makes Extract write,
// chmod or chtime outside dir. Read refuses names that are not plain
// relative paths; no symlink is followed on the way to anything written
// (on Linux openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS; elsewhere
// os.Root, and each directory on the way checked not to be a link); and
// symlinks are made last, after every file and directory, so none the
// stream makes can lie on the way to what it writes. An entry that would
// go through a symlink, whether the stream or the directory's owner made
// it, stops the extraction with an error wrapping ErrEscapes.
//
// A second extraction into the same place replaces files and links (a
// file or link is renamed over, never written through), and finds its
// directories there. A mode and time go on what was made: on an open file
// before it is renamed into place, and on a directory opened without
// following links. Directories get theirs once everything is written in
// them (a read-only mode would stop the writing, and writing changes a
// directory's time), deepest first; root is dir's own.
func Extract(r io.Reader, dir string, root Meta) error {
	return extract(r, dir, root, openTree)
}

// A tree is the directory extraction writes into. Every name is a path
// Read accepted, relative to the tree, and no method follows a symlink on
// the way to it or at its end.
type tree interface {
	// mkdir makes the directory name, whose parent is one. A directory
	// already there will do; anything else is an error.
	mkdir(name string) error
	// create makes a new part file in name's directory, for name.
	create(name string) (part, error)
	// symlink makes name a link to target, replacing a link there.
	symlink(target, name string) error
	// setMeta gives the directory name the mode and time m carries.
	setMeta(name string, m Meta) error
	close() error
}

// A part is a file being written, under a name of its own beside the
// name it is for.
type part interface {
	io.Writer
	// commit gives the file the mode and time m carries and renames it
	// over its name. Either way the part file is gone after.
	commit(m Meta) error
	// abort closes and removes the part file.
	abort()
}

// extract is Extract on the tree open makes of dir.
func extract(r io.Reader, dir string, root Meta, open func(dir string) (tree, error)) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	t, err := open(dir)
	if err != nil {
		return err
	}
	defer t.close()
	type dirMeta struct {
		name string
		meta Meta
	}
	dirs := []dirMeta{{".", root}}
	var links []Entry
	// A MiB at a time: io.Copy's 32 KiB made a get of a large file a
	// third more CPU.
	buf := make([]byte, 1<<20)
	err = Read(r, func(e Entry, body io.Reader) error {
		switch e.Kind {
		case Dir:
			dirs = append(dirs, dirMeta{e.Name, e.Meta})
			return mkdirAll(t, e.Name)
		case Symlink:
			links = append(links, e)
			return nil
		default:
			p, err := t.create(e.Name)
			if err != nil {
				return err
			}
			if _, err := io.CopyBuffer(struct{ io.Writer }{p}, struct{ io.Reader }{body}, buf); err != nil {
				p.abort()
				return fmt.Errorf("%s: %w", e.Name, err)
			}
			return p.commit(e.Meta)
		}
	})
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := t.symlink(l.Target, l.Name); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if d := dirs[i]; d.meta.Mode != 0 || !d.meta.MTime.IsZero() {
			if err := t.setMeta(d.name, d.meta); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirAll makes the directory name and any of its parents missing.
func mkdirAll(t tree, name string) error {
	err := t.mkdir(name)
	if errors.Is(err, os.ErrNotExist) {
		if parent := path.Dir(name); parent != "." {
			if err := mkdirAll(t, parent); err != nil {
				return err
			}
			return t.mkdir(name)
		}
	}
	return err
}

// partName is a name for a part file for base, hidden, and short enough
// for a directory entry of 255 bytes whatever base is (cut at a rune's
// start: macOS takes only UTF-8 names).
func partName(base string) string {
	if len(base) > 200 {
		n := 200
		for n > 0 && !utf8.RuneStart(base[n]) {
			n--
		}
		base = base[:n]
	}
	return fmt.Sprintf(".%s.part-%d", base, rand.Uint64())
}

// split returns the directory name is in ("." at the top) and its last
// part.
func split(name string) (dir, base string) {
	dir, base = path.Split(name)
	if dir == "" {
		return ".", base
	}
	return dir[:len(dir)-1], base
}

// escapes is the error for name, to which a symlink lies on the way.
func escapes(name string) error { return fmt.Errorf("%s: %w", name, ErrEscapes) }
