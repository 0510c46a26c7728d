package dirtar

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenat2Used: where the kernel has openat2, Extract uses it rather
// than falling back on os.Root unnoticed.
func TestOpenat2Used(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("no openat2 here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	tr, err := openTree(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if _, ok := tr.(*fdTree); !ok {
		t.Fatalf("the tree is a %T, not openat2's", tr)
	}
}
