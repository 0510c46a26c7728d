// Package dirtar is the one definition of how a directory travels through
// the daemon's API: a tar stream of directories, regular files and
// symlinks, with slash-separated names relative to the directory. The CLI
// writes it to add a directory and reads it to save one; the API reads it
// to import a tree and writes it to hand one out.
package dirtar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

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

// Dir adds a directory.
func (w *Writer) Dir(name string, m Meta) error {
	return w.tw.WriteHeader(m.header(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimSuffix(name, "/") + "/"}))
}

// Symlink adds a symbolic link to target.
func (w *Writer) Symlink(name, target string) error {
	return w.tw.WriteHeader(Meta{}.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target}))
}

// File adds a regular file of size bytes read from r.
func (w *Writer) File(name string, size int64, m Meta, r io.Reader) error {
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
	Name   string // slash-separated, relative, cleaned; never leaves the directory
	Target string // a symlink's target
	Size   int64  // a file's size
	Meta          // the mode and time the entry carries, if any
}

// ErrEscapes reports an entry whose name would land outside the directory.
var ErrEscapes = errors.New("entry leaves the directory")

// Read reads a directory stream, calling visit for each entry in order;
// for a file, r holds its bytes. An entry of another type, or whose name is
// absolute or climbs out with "..", stops the read with an error naming it.
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
		name := path.Clean(h.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q: %w", h.Name, ErrEscapes)
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
			e.Kind = File
		case tar.TypeDir:
			e.Kind = Dir
		case tar.TypeSymlink:
			e.Kind, e.Target = Symlink, h.Linkname
		default:
			return fmt.Errorf("entry %q: type %q is not a file, directory or symlink", h.Name, h.Typeflag)
		}
		if err := visit(e, tr); err != nil {
			return err
		}
	}
}
