package bench

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/internal/browsertest"
	"github.com/nubecloud/nube/nubetest"
)

// cpuTime is the CPU this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuShare measures the share of one core this process uses over window.
func cpuShare(window time.Duration) float64 {
	start, t0 := cpuTime(), time.Now()
	timer := time.NewTimer(window) // a measuring window, not a wait for an event
	<-timer.C
	return float64(cpuTime()-start) / float64(time.Since(t0))
}

// BenchmarkDashboardIdle measures what an open, idle dashboard costs its
// node: the CPU of this process (the node and its API; the browser is a
// process of its own) over a window with the page open in a headless
// Chromium, beside the same window with no page. Goal: under 2% of one
// core more. NUBE_BENCH_WINDOW sets the window (default 20s).
func BenchmarkDashboardIdle(b *testing.B) {
	window := 20 * time.Second
	if s := os.Getenv("NUBE_BENCH_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	bctx := browsertest.Start(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+3*window)
	defer cancel()
	node, err := nube.Start(ctx, nubetest.TestConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	s, err := api.Listen(node, "127.0.0.1:0", api.NewToken(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		closed := cpuShare(window)
		if err := chromedp.Do(bctx, chromedp.Navigate(s.LoginURL())); err != nil {
			b.Fatal(err)
		}
		browsertest.Wait(b, ctx, bctx, `document.getElementById("conn").classList.contains("live")`, "the dashboard never went live")
		open := cpuShare(window)
		if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(100*closed, "%core-no-page")
		b.ReportMetric(100*open, "%core-page-open")
		b.ReportMetric(100*(open-closed), "%core-dashboard")
	}
}
