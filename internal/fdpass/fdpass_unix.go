//go:build unix

package fdpass

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

func listen(path string) (*net.UnixListener, error) {
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for files handed over: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen for files handed over: %w", err)
	}
	return ln, nil
}

// receive reads the one file a client hands over on c. Files beyond the
// first are closed, and refused.
func receive(c *net.UnixConn) (*os.File, error) {
	var b [1]byte
	oob := make([]byte, syscall.CmsgSpace(4)) // room for one descriptor: the kernel closes any more
	_, oobn, flags, _, err := c.ReadMsgUnix(b[:], oob)
	if err != nil {
		return nil, fmt.Errorf("read the file handed over: %w", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("read the file handed over: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := syscall.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 || flags&syscall.MSG_CTRUNC != 0 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, errors.New("want exactly one open file")
	}
	return os.NewFile(uintptr(fds[0]), "handed over"), nil
}

// Send hands f over to the listener on the socket at path and returns the
// handle it keeps f under. The listener has its own descriptor for the
// same open file: they share its offset, so the sender sees it move as
// the other side reads or writes.
func Send(ctx context.Context, path string, f *os.File) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("hand over %s: %w", f.Name(), err)
	}
	defer conn.Close()
	c := conn.(*net.UnixConn)
	deadline := time.Now().Add(talkLimit)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	raw, err := f.SyscallConn() // not f.Fd(): that would make a pollable file blocking
	if err != nil {
		return "", fmt.Errorf("hand over %s: %w", f.Name(), err)
	}
	var werr error
	err = raw.Control(func(fd uintptr) {
		_, _, werr = c.WriteMsgUnix([]byte{'f'}, syscall.UnixRights(int(fd)), nil)
	})
	if err = errors.Join(err, werr); err != nil {
		return "", fmt.Errorf("hand over %s: %w", f.Name(), err)
	}
	line, err := bufio.NewReader(io.LimitReader(c, maxReply)).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("hand over %s: no answer: %w", f.Name(), err)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "!"); ok {
		return "", fmt.Errorf("hand over %s: refused: %s", f.Name(), msg)
	}
	return line, nil
}
