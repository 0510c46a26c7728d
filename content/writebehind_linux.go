package content

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind asks the kernel to start writing f's bytes in [off, off+n)
// to the disk, and returns without waiting for them (sync_file_range with
// SYNC_FILE_RANGE_WRITE). It makes nothing durable: it spreads a pack's
// writing over the time it is appended to, so that the sync at the end
// of an add waits for the last few MiB rather than the whole pack. A
// failure is ignored; the sync that follows reports any that matters.
func writeBehind(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
