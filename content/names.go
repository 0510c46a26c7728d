package content

import (
	"fmt"
	"strings"
)

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
