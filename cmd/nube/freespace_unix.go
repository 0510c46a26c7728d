//go:build linux || darwin || freebsd

package main

import "golang.org/x/sys/unix"

// freeSpace is how many bytes a get may write on the filesystem of dir:
// what is free to us less 1 GiB or 5% of the filesystem, whichever is
// more, so that a DAG bomb stops before the disk is full. ok is false
// where there is no way to tell.
func freeSpace(dir string) (spare int64, ok bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	bsize := uint64(st.Bsize)
	free, total := uint64(st.Bavail)*bsize, uint64(st.Blocks)*bsize
	keep := max(uint64(1<<30), total/20)
	if free <= keep {
		return 0, true, nil
	}
	return int64(min(free-keep, 1<<62)), true, nil
}
