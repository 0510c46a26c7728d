package progress

import (
	"bytes"
	"strings"
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
