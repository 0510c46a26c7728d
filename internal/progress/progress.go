// Package progress draws a one-line progress bar for long transfers on a
// terminal: bytes done, percentage, rate and time left.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar is a progress bar on one terminal line. A nil *Bar does nothing, so
// callers can hold one whether or not output goes to a terminal.
type Bar struct {
	w     io.Writer
	label string
	total int64 // -1 when unknown

	mu    sync.Mutex
	done  int64
	start time.Time
	last  time.Time
}

// redraw is the most often the bar is drawn.
const redraw = 100 * time.Millisecond

// New returns a bar on w for a transfer of total bytes (-1 if unknown), or
// nil when w is not a terminal or quiet is set: pipes and scripts get no
// bar.
func New(w io.Writer, label string, total int64, quiet bool) *Bar {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	now := time.Now()
	return &Bar{w: w, label: label, total: total, start: now}
}

// Set records that n bytes are done.
func (b *Bar) Set(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = n
	if now := time.Now(); now.Sub(b.last) >= redraw {
		b.last = now
		b.draw(now)
	}
}

// Follow sets the bar from f's offset as something else reads f (such as
// the kernel sending it to a socket), until the returned stop is called.
func (b *Bar) Follow(f *os.File) (stop func()) {
	if b == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(redraw)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if n, err := f.Seek(0, io.SeekCurrent); err == nil {
					b.Set(n)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(time.Now())
	fmt.Fprintln(b.w)
}

func (b *Bar) draw(now time.Time) {
	fmt.Fprint(b.w, "\r"+Line(b.label, b.done, b.total, now.Sub(b.start))+"\x1b[K")
}

// Line renders the bar's text: label, a bar when the total is known, bytes,
// rate and time left. A total that done has passed was an estimate (a
// migration's size, say, is the space's about): the bar shows done as the
// total, so it never reads past 100%.
func Line(label string, done, total int64, elapsed time.Duration) string {
	if total > 0 && done > total {
		total = done
	}
	var sb strings.Builder
	sb.WriteString(label)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		const width = 24
		fill := int(frac * width)
		fmt.Fprintf(&sb, " [%s%s] %3.0f%% %s / %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100, Bytes(done), Bytes(total))
	} else {
		fmt.Fprintf(&sb, " %s", Bytes(done))
	}
	fmt.Fprintf(&sb, "  %s/s", Bytes(int64(rate)))
	if total > 0 && rate > 0 && done < total {
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&sb, "  ETA %s", left.Round(time.Second))
	}
	return sb.String()
}

// Bytes formats a byte count with a binary unit.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Reader counts the bytes read through it into a Bar.
type Reader struct {
	R   io.Reader
	Bar *Bar
	n   int64
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.R.Read(p)
	r.n += int64(n)
	r.Bar.Set(r.n)
	return n, err
}
