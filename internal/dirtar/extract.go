package dirtar

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/nubecloud/nube/errcode"
)

// ErrEscapes reports an entry that would be written through a symlink: one
// the stream made, or one already in the directory. Extract follows none.
var ErrEscapes = errors.New("a symlink is on the way: extraction follows none")

// ErrDirIsSymlink reports a dir that is a symlink, given to Extract with
// Options.NoFollow.
var ErrDirIsSymlink = errors.New("is a symlink")

// ErrTooLarge reports a stream that holds more than Options allow: more
// bytes of files, more entries, or a name deeper than the caps.
var ErrTooLarge = errcode.New(errcode.TooLarge, "directory stream over a limit")

// Options steer and bound an extraction. The zero Options follows a
// symlink at dir and sets no limit.
type Options struct {
	// NoFollow refuses dir itself if it is a symlink (an error wrapping
	// ErrDirIsSymlink), also if one takes its place while it is opened.
	// A caller sets it where it chose the name, not the user: a name
	// others can predict, in a directory others can write, may be a
	// link they planted.
	NoFollow bool
	// MaxBytes caps the bytes of all files together; 0: no cap. A file
	// that would pass it is refused before any of it is written: a tar
	// entry's size is exact, archive/tar holds its body to it.
	MaxBytes int64
	// MaxEntries caps the entries (files, directories, symlinks); 0: no
	// cap.
	MaxEntries int
	// MaxDepth caps the parts of an entry's name ("a/b/c" is 3); 0: no
	// cap.
	MaxDepth int
}

// modeMask is what Extract takes off every mode a stream carries, as a
// umask of 022 would: a DAG is anyone's, and its 0777 must not let other
// users write into what it saves.
const modeMask fs.FileMode = 0o022

// Extract unpacks the directory stream r into dir, making dir if need be.
// dir itself may be a symlink, followed as the caller's choice, unless
// o.NoFollow. Files get the permissions new files get (0644 less the
// umask), directories 0755 less the umask, unless the entry carries a
// mode; a mode carried loses its group and other write bits (modeMask).
//
// The stream may be anyone's, and nothing it holds makes Extract write,
// chmod or chtime outside dir. Read refuses names that are not plain
// relative paths; no symlink is followed on the way to anything written
// (on Linux openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS; elsewhere
// os.Root, and each directory on the way checked not to be a link); and
// symlinks are made last, after every file and directory, so none the
// stream makes can lie on the way to what it writes. An entry that would
// go through a symlink, whether the stream or the directory's owner made
// it, stops the extraction with an error wrapping ErrEscapes. A stream
// over o's caps stops it with an error wrapping ErrTooLarge.
//
// A second extraction into the same place replaces files and links (a
// file or link is renamed over, never written through), and finds its
// directories there. A mode and time go on what was made: on an open file
// before it is renamed into place, and on a directory opened without
// following links. Directories get theirs once everything is written in
// them (a read-only mode would stop the writing, and writing changes a
// directory's time), deepest first; root is dir's own. A directory that
// was there before, dir included, keeps its own: the stream's mode is for
// what the extraction made, not for the user's directories.
func Extract(r io.Reader, dir string, root Meta, o Options) error {
	return extract(r, dir, root, o, openTree)
}

// A tree is the directory extraction writes into. Every name is a path
// Read accepted, relative to the tree, and no method follows a symlink on
// the way to it or at its end.
type tree interface {
	// mkdir makes the directory name, whose parent is one, and reports
	// whether it made it. A directory already there will do; anything
	// else is an error.
	mkdir(name string) (bool, error)
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

// makeDir makes dir, and its parents if need be, and reports whether it
// made dir itself. With noFollow, a symlink at dir is an error wrapping
// ErrDirIsSymlink.
func makeDir(dir string, noFollow bool) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, err
	}
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	if noFollow {
		if fi, err := os.Lstat(dir); err != nil {
			return false, err
		} else if fi.Mode()&fs.ModeSymlink != 0 {
			return false, fmt.Errorf("%s: %w", dir, ErrDirIsSymlink)
		}
	}
	return false, nil
}

// extract is Extract on the tree open makes of dir.
func extract(r io.Reader, dir string, root Meta, o Options, open func(dir string, follow bool) (tree, error)) error {
	made, err := makeDir(dir, o.NoFollow)
	if err != nil {
		return err
	}
	t, err := open(dir, !o.NoFollow)
	if err != nil {
		return err
	}
	defer t.close()
	type dirMeta struct {
		name string
		meta Meta
	}
	var dirs []dirMeta
	root.Mode &^= modeMask
	if made {
		dirs = append(dirs, dirMeta{".", root})
	}
	created := map[string]bool{} // directories this extraction made
	var links []Entry
	var written int64
	entries := 0
	// A MiB at a time: io.Copy's 32 KiB made a get of a large file a
	// third more CPU.
	buf := make([]byte, 1<<20)
	err = Read(r, func(e Entry, body io.Reader) error {
		if entries++; o.MaxEntries > 0 && entries > o.MaxEntries {
			return fmt.Errorf("%s: %w: more than %d entries", e.Name, ErrTooLarge, o.MaxEntries)
		}
		if depth := strings.Count(e.Name, "/") + 1; o.MaxDepth > 0 && depth > o.MaxDepth {
			return fmt.Errorf("%s: %w: %d deep, more than %d", e.Name, ErrTooLarge, depth, o.MaxDepth)
		}
		e.Mode &^= modeMask
		switch e.Kind {
		case Dir:
			made, err := mkdirAll(t, e.Name, created)
			if err == nil && (made || created[e.Name]) {
				dirs = append(dirs, dirMeta{e.Name, e.Meta})
			}
			return err
		case Symlink:
			links = append(links, e)
			return nil
		default:
			if o.MaxBytes > 0 && e.Size > o.MaxBytes-written {
				return fmt.Errorf("%s: %w: files of more than %d bytes", e.Name, ErrTooLarge, o.MaxBytes)
			}
			p, err := t.create(e.Name)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(struct{ io.Writer }{p}, struct{ io.Reader }{body}, buf)
			written += n
			if err != nil {
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

// mkdirAll makes the directory name and any of its parents missing,
// noting in created each it made, and reports whether it made name.
func mkdirAll(t tree, name string, created map[string]bool) (bool, error) {
	made, err := t.mkdir(name)
	if errors.Is(err, os.ErrNotExist) {
		if parent := path.Dir(name); parent != "." {
			if _, err := mkdirAll(t, parent, created); err != nil {
				return false, err
			}
			made, err = t.mkdir(name)
		}
	}
	if made {
		created[name] = true
	}
	return made, err
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
