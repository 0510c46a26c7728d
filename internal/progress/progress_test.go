package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	got := Line("add", 512<<20, 1<<30, 4*time.Second)
	for _, want := range []string{"add", " 50%", "512.0 MiB / 1.0 GiB", "128.0 MiB/s", "ETA 4s"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := Line("get", 1500, -1, time.Second); !strings.Contains(got, "1.5 KiB") || strings.Contains(got, "ETA") {
		t.Errorf("unknown total: %q", got)
	}
}

// TestLineNeverPast100 draws a bar whose done passed an estimated total
// (a migration wrote "110 B / 50 B"): it shows 100% and done as the total.
func TestLineNeverPast100(t *testing.T) {
	got := Line("migrate", 110, 50, time.Second)
	if !strings.Contains(got, "100%") || !strings.Contains(got, "110 B / 110 B") || strings.Contains(got, "50 B") {
		t.Errorf("done past the total: %q", got)
	}
}

func TestNoBarOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "add", 10, false)
	if b != nil {
		t.Fatal("a bar on a buffer, which is not a terminal")
	}
	b.Set(5) // a nil bar is safe to use
	b.Finish()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q", buf.String())
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestFollow checks that a bar following a file shows how far the file
// has been read by someone else.
func TestFollow(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "follow")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(1234, io.SeekStart); err != nil { // as a sender would have read it
		t.Fatal(err)
	}
	var out lockedBuffer
	b := &Bar{w: &out, label: "add", total: 3000, start: time.Now()}
	stop := b.Follow(f)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), "1.2 KiB / 2.9 KiB") {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the bar never showed the file's offset: %q", out.String())
		}
	}
	stop()                  // returns once the following goroutine has ended
	(*Bar)(nil).Follow(f)() // no bar: nothing to follow
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
