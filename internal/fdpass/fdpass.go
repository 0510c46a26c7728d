// Package fdpass hands open files from one process to another on the same
// machine. The CLI uses it to give the daemon the file it adds, or the
// file a cat or get writes to, so that the bytes go between the file and
// the daemon directly instead of through the API's socket and the CLI's
// memory as well.
//
// A Listener, on a Unix socket in the daemon's data dir, takes one open
// file per connection (SCM_RIGHTS), keeps it under a fresh random handle
// and answers with the handle; the API request that names the handle then
// claims the file. Only regular files are taken: a read or write on one
// cannot hang the daemon. The socket is as private as the data dir it is
// in (0700), and a handle is only good with a request that carries the
// API token. A file not claimed within a minute is closed.
//
// Unix systems only: elsewhere Listen and Send fail with ErrUnsupported,
// and callers send the bytes over the API as before.
package fdpass

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// ErrUnsupported reports a system where open files cannot be handed over.
var ErrUnsupported = errors.New("handing over open files is not supported on " + runtime.GOOS)

// ErrUnknownHandle reports a handle no file waits under: never given, or
// claimed already, or waited too long.
var ErrUnknownHandle = errors.New("no file waits under that handle")

const (
	// maxWaiting caps the files waiting to be claimed.
	maxWaiting = 64
	// waitLimit is how long a file waits to be claimed before it is
	// closed.
	waitLimit = time.Minute
	// talkLimit bounds one connection's exchange, so that a client that
	// connects and says nothing holds up no other.
	talkLimit = 5 * time.Second
	// maxReply caps the listener's answer as Send reads it.
	maxReply = 256
)

// Listener takes files handed over on a Unix socket and keeps them until
// claimed. Its methods are safe for concurrent use.
type Listener struct {
	ln   *net.UnixListener
	path string
	wait time.Duration // waitLimit, but for tests
	done chan struct{} // closed when the accept loop has ended

	mu      sync.Mutex
	waiting map[string]*waitingFile
	closed  bool
}

type waitingFile struct {
	f     *os.File
	timer *time.Timer
}

// Listen listens for files handed over on a Unix socket at path. A socket
// left there by a daemon that did not stop cleanly is replaced: the
// caller holds the data dir's lock. Close stops it and removes the socket.
func Listen(path string) (*Listener, error) {
	ln, err := listen(path)
	if err != nil {
		return nil, err
	}
	l := &Listener{ln: ln, path: path, wait: waitLimit, done: make(chan struct{}), waiting: map[string]*waitingFile{}}
	go l.serve()
	return l, nil
}

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// serve takes connections until the listener closes, one at a time: an
// exchange is a few bytes and is bounded by talkLimit.
func (l *Listener) serve() {
	defer close(l.done)
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: give the system a moment.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c.SetDeadline(time.Now().Add(talkLimit))
		reply := "!"
		if f, err := receive(c); err != nil {
			reply += err.Error()
		} else if h, err := l.keep(f); err != nil {
			f.Close()
			reply += err.Error()
		} else {
			reply = h
		}
		c.Write([]byte(reply + "\n"))
		c.Close()
	}
}

// keep puts f under a fresh handle until it is claimed or waits too long.
func (l *Listener) keep(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat the file handed over: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("only regular files are taken, not a %v", fi.Mode().Type())
	}
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return "", net.ErrClosed
	case len(l.waiting) >= maxWaiting:
		return "", fmt.Errorf("%d files wait to be claimed already", maxWaiting)
	}
	l.waiting[h] = &waitingFile{f: f, timer: time.AfterFunc(l.wait, func() {
		if f, err := l.Claim(h); err == nil {
			f.Close()
		}
	})}
	return h, nil
}

// Claim takes the file waiting under handle; the caller closes it.
func (l *Listener) Claim(handle string) (*os.File, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.waiting[handle]
	if !ok {
		return nil, ErrUnknownHandle
	}
	delete(l.waiting, handle)
	w.timer.Stop()
	return w.f, nil
}

// Close stops listening, closes the files still waiting and removes the
// socket.
func (l *Listener) Close() error {
	err := l.ln.Close()
	<-l.done
	l.mu.Lock()
	l.closed = true
	for h, w := range l.waiting {
		w.timer.Stop()
		w.f.Close()
		delete(l.waiting, h)
	}
	l.mu.Unlock()
	return err
}
