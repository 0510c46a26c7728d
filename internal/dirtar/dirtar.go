// Package dirtar is the one definition of how a directory travels through
// the daemon's API: a tar stream of directories, regular files and
// symlinks, with slash-separated names relative to the directory. The CLI
// writes it to add a directory and reads it to save one (Extract); the API
// reads it to import a tree and writes it to hand one out.
//
// A directory from the network is anyone's: its names are refused, never
// cleaned, unless each part is a plain name (not empty, "." or "..", no
// NUL), both when a stream is written and when it is read, and Extract
// never follows a symlink on the way to what it writes.
package dirtar

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/nubecloud/nube/errcode"
)

// ErrBadName reports an entry whose name is not a plain relative path:
// empty, absolute, too long, holding a NUL byte, or with a part that is
// empty, "." or "..". "a/../b" is refused, not read as "b": no writer of
// ours makes such a name, so a stream holding one was crafted.
var ErrBadName = errcode.New(errcode.BadRequest, "bad name in a directory stream")

// maxName caps an entry's name and a symlink's target, in bytes: Linux's
// PATH_MAX. archive/tar caps the headers that carry them at 1 MiB.
const maxName = 4096

// checkName reports why name is not a plain relative path, or nil: each
// slash-separated part non-empty, not "." or "..", and no NUL anywhere.
func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("entry %q: %w: %s", name, ErrBadName, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxName:
		return bad(fmt.Sprintf("longer than %d bytes", maxName))
	case strings.IndexByte(name, 0) >= 0:
		return bad("it holds a NUL byte")
	case name[0] == '/':
		return bad("absolute")
	}
	for part := range strings.SplitSeq(name, "/") {
		switch part {
		case "":
			return bad("an empty part")
		case ".", "..":
			return bad(fmt.Sprintf("a part %q", part))
		}
	}
	return nil
}

// checkTarget reports a symlink target that no system would take.
func checkTarget(name, target string) error {
	switch {
	case len(target) > maxName:
		return fmt.Errorf("entry %q: %w: its target is longer than %d bytes", name, ErrBadName, maxName)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("entry %q: %w: its target holds a NUL byte", name, ErrBadName)
	}
	return nil
}

// Kind is what an entry is.
type Kind int

// The kinds of entry a directory stream holds.
const (
	File Kind = iota
	Dir
	Symlink
)

// Writer writes a directory stream.
type Writer struct{ tw *tar.Writer }

// NewWriter starts a directory stream on w. Close ends it.
func NewWriter(w io.Writer) *Writer { return &Writer{tar.NewWriter(w)} }

// Meta is what an entry may carry besides its bytes: permission bits and
// a modification time. The zero Meta carries neither, and the reader then
// applies its own defaults.
type Meta struct {
	Mode  fs.FileMode // permission bits (0o777 at most); 0: none
	MTime time.Time   // zero: none
}

// header fills h's mode and time from m: mode 0 and the epoch stand for
// none on the wire.
func (m Meta) header(h *tar.Header) *tar.Header {
	h.Mode = int64(m.Mode.Perm())
	h.ModTime = time.Unix(0, 0)
	if !m.MTime.IsZero() {
		h.ModTime = m.MTime
	}
	return h
}

// Dir adds a directory. A name Read would refuse is an error wrapping
// ErrBadName, and nothing is written; so with File and Symlink.
func (w *Writer) Dir(name string, m Meta) error {
	name = strings.TrimSuffix(name, "/")
	if err := checkName(name); err != nil {
		return err
	}
	return w.tw.WriteHeader(m.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/"}))
}

// Symlink adds a symbolic link to target.
func (w *Writer) Symlink(name, target string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkTarget(name, target); err != nil {
		return err
	}
	return w.tw.WriteHeader(Meta{}.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}))
}

// File adds a regular file of size bytes read from r.
func (w *Writer) File(name string, size int64, m Meta, r io.Reader) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := w.tw.WriteHeader(m.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size})); err != nil {
		return err
	}
	_, err := io.Copy(w.tw, r)
	return err
}

// Close ends the stream.
func (w *Writer) Close() error { return w.tw.Close() }

// Entry is one entry of a directory stream.
type Entry struct {
	Kind   Kind
	Name   string // slash-separated and relative, each part a plain name (see ErrBadName)
	Target string // a symlink's target
	Size   int64  // a file's size
	Meta          // the mode and time the entry carries, if any
}

// sparse reports a file whose PAX records make it sparse: archive/tar
// fills its holes with zeros, so a few bytes of stream could become a
// file of a terabyte. No writer of ours makes one. (GNU's own sparse type
// is refused as a type Read does not take.)
func sparse(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// Read reads a directory stream, calling visit for each entry in order;
// for a file, r holds its bytes, which are all in the stream. An entry of
// another type, or a sparse file, stops the read with an error naming it,
// as does one whose name is not a plain relative path, or whose symlink
// target is too long or holds a NUL (ErrBadName). A directory's name may
// end in one slash.
func Read(r io.Reader, visit func(e Entry, r io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("directory stream: %w", err)
		}
		name := h.Name
		if h.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
		}
		if err := checkName(name); err != nil {
			return err
		}
		e := Entry{Name: name, Size: h.Size}
		// Permission bits only: set-id and sticky bits from a stream are
		// never honoured.
		e.Mode = fs.FileMode(h.Mode) & fs.ModePerm
		if h.ModTime.Unix() != 0 {
			e.MTime = h.ModTime
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if sparse(h) {
				return fmt.Errorf("entry %q: a sparse file, whose holes would be %d bytes from none in the stream", h.Name, h.Size)
			}
			e.Kind = File
		case tar.TypeDir:
			e.Kind = Dir
		case tar.TypeSymlink:
			if err := checkTarget(name, h.Linkname); err != nil {
				return err
			}
			e.Kind, e.Target = Symlink, h.Linkname
		default:
			return fmt.Errorf("entry %q: type %q is not a file, directory or symlink", h.Name, h.Typeflag)
		}
		if err := visit(e, tr); err != nil {
			return err
		}
	}
}
