//go:build unix

package fdpass

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func listenTemp(t *testing.T) *Listener {
	t.Helper()
	l, err := Listen(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestHandOver hands a file over and uses it on the other side: the two
// share the open file, and its offset.
func TestHandOver(t *testing.T) {
	l := listenTemp(t)
	ctx := context.Background()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := Send(ctx, l.Path(), f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Claim(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := got.Write([]byte("written over there")); err != nil {
		t.Fatal(err)
	}
	got.Close()
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 18 {
		t.Fatalf("the sender's offset is %d (%v), want 18", off, err)
	}
	if data, _ := os.ReadFile(f.Name()); string(data) != "written over there" {
		t.Fatalf("file holds %q", data)
	}
	if _, err := l.Claim(h); !errors.Is(err, ErrUnknownHandle) {
		t.Fatalf("second claim: %v, want ErrUnknownHandle", err)
	}
	if _, err := l.Claim("made-up"); !errors.Is(err, ErrUnknownHandle) {
		t.Fatalf("made-up handle: %v, want ErrUnknownHandle", err)
	}
}

// TestRefuses checks what the listener will not take: a pipe, two files
// at once, none.
func TestRefuses(t *testing.T) {
	l := listenTemp(t)
	ctx := context.Background()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := Send(ctx, l.Path(), r); err == nil || !strings.Contains(err.Error(), "regular") {
		t.Fatalf("a pipe: %v, want a refusal that says only regular files", err)
	}

	raw := func(rights []byte) string { // sends one byte with rights, returns the answer
		t.Helper()
		c, err := net.Dial("unix", l.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, _, err := c.(*net.UnixConn).WriteMsgUnix([]byte{'f'}, rights, nil); err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(c)
		return string(answer)
	}
	a, b := tempFile(t), tempFile(t)
	if got := raw(syscall.UnixRights(int(a.Fd()), int(b.Fd()))); !strings.Contains(got, "exactly one") {
		t.Fatalf("two files: answer %q", got)
	}
	if got := raw(nil); !strings.Contains(got, "exactly one") {
		t.Fatalf("no file: answer %q", got)
	}
	l.mu.Lock()
	n := len(l.waiting)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d files kept from refused hand-overs", n)
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestUnclaimed checks that a file nobody claims is closed, after the
// wait or when the listener closes, and that Close removes the socket.
func TestUnclaimed(t *testing.T) {
	l, err := Listen(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	setWait(l, 10*time.Millisecond)
	ctx := context.Background()
	h, err := Send(ctx, l.Path(), tempFile(t))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond) // the timer has no event to wait on
	defer tick.Stop()
	for range tick.C {
		l.mu.Lock()
		_, waiting := l.waiting[h]
		l.mu.Unlock()
		if !waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a file nobody claimed still waits")
		}
	}

	setWait(l, time.Hour)
	if _, err := Send(ctx, l.Path(), tempFile(t)); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	var kept *os.File
	for _, w := range l.waiting {
		kept = w.f
	}
	l.mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("a waiting file after Close: %v, want it closed", err)
	}
	if _, err := os.Stat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket after Close: %v, want it gone", err)
	}
	if _, err := Send(ctx, l.Path(), tempFile(t)); err == nil {
		t.Fatal("Send to a closed listener succeeded")
	}
}

func setWait(l *Listener, d time.Duration) {
	l.mu.Lock()
	l.wait = d
	l.mu.Unlock()
}
