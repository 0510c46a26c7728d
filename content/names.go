package content

import (
	"fmt"
	"strings"

	"github.com/nubecloud/nube/errcode"
)

// ErrBadName reports a name in a directory, or a part of a path, that is
// not one plain name (see CheckName), or a name two entries of one
// directory share. A DAG is anyone's: a link named "../a" or "a/b", saved
// by a tool that joins names to paths, lands outside the directory, and
// two entries of one name let a symlink stand where a directory is then
// written. Such a directory is refused, not cleaned: its listing, its
// paths and its export (a tar stream, the gateway's tar) all fail.
var ErrBadName = errcode.New(errcode.BadRequest, "bad name")

// CheckName returns nil if name can name an entry of a directory, and an
// error wrapping ErrBadName that says why not: it is empty, "." or "..",
// or holds a "/" or a NUL byte.
func CheckName(name string) error {
	why := ""
	switch {
	case name == "":
		why = "empty"
	case name == "." || name == "..":
		why = "it names a directory, not an entry of one"
	case strings.IndexByte(name, '/') >= 0:
		why = "it holds a slash"
	case strings.IndexByte(name, 0) >= 0:
		why = "it holds a NUL byte"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s", ErrBadName, name, why)
}

// CheckNames returns nil if names can be the names of one directory's
// entries: each passes CheckName, and none comes twice.
func CheckNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if err := CheckName(name); err != nil {
			return err
		}
		if seen[name] {
			return fmt.Errorf("%w %q: two entries have it", ErrBadName, name)
		}
		seen[name] = true
	}
	return nil
}
