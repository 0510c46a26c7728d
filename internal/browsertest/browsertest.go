// Package browsertest starts a headless Chromium for tests that drive a
// page (the dashboard) and helps them wait on what the page shows. The
// browser reaches nothing but what the test serves: its background
// networking, updates and sync are off.
package browsertest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds a Chromium or Chrome to drive, or returns "".
func Path() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a headless browser for the test, 1280 by 900 pixels, and
// returns its chromedp context; the browser ends with the test. The test
// is skipped, saying why, where no browser can be had.
func Start(tb testing.TB) context.Context {
	tb.Helper()
	exe := Path()
	if exe == "" {
		tb.Skip("no Chromium here: install Debian's chromium package (.ci/run does) to run browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx)
	tb.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil { // start the browser now
		tb.Skipf("Chromium at %s would not start: %v", exe, err)
	}
	return bctx
}

// JS evaluates expr in the page of bctx.
func JS[T any](tb testing.TB, bctx context.Context, expr string) T {
	tb.Helper()
	v, err := chromedp.Run(bctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Wait waits until expr is true in the page of bctx, or fails the test,
// saying what never happened and what the page showed, when ctx ends.
func Wait(tb testing.TB, ctx, bctx context.Context, expr, what string) {
	tb.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			diag, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href + " | " + document.body.innerText.slice(0, 300)`))
			tb.Fatalf("%s; the page: %s", what, diag)
		}
	}
}
