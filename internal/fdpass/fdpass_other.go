//go:build !unix

package fdpass

import (
	"context"
	"net"
	"os"
)

func listen(string) (*net.UnixListener, error) { return nil, ErrUnsupported }

func receive(*net.UnixConn) (*os.File, error) { return nil, ErrUnsupported }

// Send fails: open files cannot be handed over on this system.
func Send(context.Context, string, *os.File) (string, error) { return "", ErrUnsupported }
