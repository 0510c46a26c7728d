package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/internal/browsertest"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// screenshotDir is where the browser test leaves its screenshots of every
// panel, at 1280 and 400 pixels wide.
var screenshotDir = filepath.Join(os.TempDir(), "nube-dashboard-screens")

// TestDashboardInBrowser drives the dashboard in a real headless Chromium
// against a cluster of three nodes: login with a one-time link, peers on
// the table and the graph, a file added through the page, a peer that
// connects later drawn without a reload, a daemon restart survived, every
// control labelled, and screenshots of each panel at two widths.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real browser; skipped in -short mode")
	}
	bctx := browsertest.Start(t)
	c := nubetest.Cluster(t, 3, nubetest.WithDataDirs(), nubetest.TrustFirst(3))
	ctx := nubetest.Context(t, 3*time.Minute)
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	addr := s.Addr()
	sp, err := c.Node(0).Spaces().Create(ctx, "album", space.Policy{On: []peer.ID{c.Node(1).ID()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "cover.jpg", []byte("not really a picture")); err != nil {
		t.Fatal(err)
	}
	// A ledger of the three, and a payment to this node's user.
	if _, err := c.Node(0).Ledger().Create(ctx, 0, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(1).Ledger().Send(ctx, c.Node(0).ID(), 1_500, "for the album"); err != nil { // paid to the node's user
		t.Fatal(err)
	}

	// Log in with a one-time link; the code is spent and never stays in
	// a URL of the tab's history.
	link := s.LoginURL()
	code := link[strings.Index(link, "#")+1:]
	if err := chromedp.Do(bctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	browsertest.Wait(t, ctx, bctx, `document.getElementById("conn").classList.contains("live")`, "the page never went live")
	entries, err := navigationURLs(bctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range entries {
		if strings.Contains(u, code) {
			t.Fatalf("the login code stayed in the history: %v", entries)
		}
	}
	if got := sessionStatus(t, s.URL(), code); got != http.StatusUnauthorized {
		t.Fatalf("the login code a second time: %d, want 401", got)
	}
	// Nothing from another origin, and nothing without the cookie or token.
	if code := httpStatus(t, s.URL()+"/api/v0/events", "http://evil.example"); code != http.StatusForbidden {
		t.Fatalf("events for a foreign origin: %d, want 403", code)
	}
	if code := httpStatus(t, s.URL()+"/api/v0/dashboard", ""); code != http.StatusUnauthorized {
		t.Fatalf("dashboard data without cookie or token: %d, want 401", code)
	}

	// The Peers panel shows the two other nodes, in the table and on the
	// graph.
	for _, n := range c.Nodes()[1:] {
		browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#graph g.peer[data-peer=%q]')`, n.ID().String()),
			"node "+n.ID().String()+" never appeared on the graph")
	}
	browsertest.Wait(t, ctx, bctx, `document.querySelectorAll("#peer-table tbody tr").length >= 2`, "the peer table never showed two peers")

	// The Spaces panel lists the space this node is home of.
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#space-table tr[data-space=%q]')`, sp.ID()),
		"the space never appeared in the Spaces panel")

	// The Credit panel shows the balance and the payment.
	browsertest.Wait(t, ctx, bctx, `document.getElementById("credit-summary").textContent.startsWith("Balance 1.500 credits")`,
		"the Credit panel never showed the balance")
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#credit-table tbody td")].some((td) => td.textContent === "for the album")`,
		"the Credit panel never showed the payment")

	// A file added through the page appears in the Content panel and in
	// the node's pins.
	file := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(file, []byte("hello from the dashboard test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	browsertest.JS[chromedp.Void](t, bctx, `window.nubeMarker = 42`) // gone if the page reloads
	if err := chromedp.Do(bctx, chromedp.SetUploadFiles(chromedp.ID("add-file"), []string{file}), chromedp.Click(chromedp.ID("add-btn"))); err != nil {
		t.Fatal(err)
	}
	browsertest.Wait(t, ctx, bctx, `!!document.getElementById("add-result").dataset.cid`, "the page never showed the added file's CID")
	cid := browsertest.JS[string](t, bctx, `document.getElementById("add-result").dataset.cid`)
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#pin-table tr[data-cid=%q]')`, cid), "the added file never appeared in the Content panel")
	cl := &client.Client{URL: s.URL(), Token: tok}
	pins, err := cl.Pins(ctx)
	if err != nil || !slices.ContainsFunc(pins, func(p client.PinInfo) bool { return p.CID == cid }) {
		t.Fatalf("pin ls after adding through the page: %v, %v", pins, err)
	}

	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	manageFromPage(t, ctx, bctx, c, cl, sp)
	jobsFromPage(t, ctx, bctx, c, cl)
	topicsFromPage(t, ctx, bctx, c, cl)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// A peer that connects now is drawn without a reload.
	late, err := nube.Start(ctx, nubetest.TestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if _, err := late.Connect(ctx, c.Node(0).Addrs()[0].String()+"/p2p/"+c.Node(0).ID().String()); err != nil {
		t.Fatal(err)
	}
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#graph g.peer[data-peer=%q]')`, late.ID().String()),
		"a peer that connected later never appeared on the graph")
	if browsertest.JS[int](t, bctx, `window.nubeMarker || 0`) != 42 {
		t.Fatal("the page reloaded")
	}

	// The daemon restarts (node and API, same data dir and address): the
	// open page notices, reconnects by itself and goes on, logged in.
	s.Close()
	browsertest.Wait(t, ctx, bctx, `document.getElementById("conn").classList.contains("down")`, "the page never noticed the daemon stop")
	n0, err := c.Restart(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = api.Listen(n0, addr, api.NewToken(), nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		if err := c.Connect(ctx, 0, i); err != nil {
			t.Fatal(err)
		}
	}
	browsertest.Wait(t, ctx, bctx, `document.getElementById("conn").classList.contains("live")`, "the page never came back after the restart")
	browsertest.Wait(t, ctx, bctx, `document.querySelectorAll("#graph g.peer").length >= 2`, "no peers on the graph after the restart")
	if browsertest.JS[int](t, bctx, `window.nubeMarker || 0`) != 42 {
		t.Fatal("the page reloaded across the restart")
	}
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#pin-table tr[data-cid=%q]')`, cid), "the pin list did not come back after the restart")

	// Every control has a label a screen reader can read.
	unlabelled := browsertest.JS[[]string](t, bctx, `[...document.querySelectorAll("input, button, select, textarea, progress")]
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !(e.tagName === "BUTTON" && e.textContent.trim()))
		.map(e => e.outerHTML)`)
	if len(unlabelled) > 0 {
		t.Fatalf("controls without a label: %v", unlabelled)
	}

	// Screenshots of each panel, wide and narrow; at either width the
	// page itself never scrolls sideways (a wide table scrolls inside its
	// panel), and no cell is squeezed to a character a line.
	for _, width := range []int64{1280, 400} {
		if err := chromedp.Do(bctx, chromedp.EmulateViewport(width, 900)); err != nil {
			t.Fatal(err)
		}
		checkLayout(t, bctx, width)
		for _, panel := range []string{"node", "peers", "traffic", "content", "services", "groups", "spaces", "topics", "credit"} {
			png, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID(panel)))
			if err != nil {
				t.Fatalf("screenshot of %s: %v", panel, err)
			}
			if err := os.WriteFile(filepath.Join(screenshotDir, fmt.Sprintf("%s-%d.png", panel, width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("screenshots in %s", screenshotDir)
}

// manageFromPage drives the dashboard's controls against node 0 of c,
// which the page shows, and checks each against the API (cl) or the other
// nodes: publish a module and call it, create a group and join another,
// create a space and grant it, send credit, copy an ID; and the Content
// panel keeps nube's own pins apart from the user's files. home is the
// space node 0 is home of.
func manageFromPage(t *testing.T, ctx, bctx context.Context, c *nubetest.C, cl *client.Client, home *space.Space) {
	t.Helper()
	set := func(id, value string) {
		t.Helper()
		browsertest.JS[chromedp.Void](t, bctx, fmt.Sprintf(`document.getElementById(%q).value = %q`, id, value))
	}
	click := func(id string) {
		t.Helper()
		// The form's output starts blank, so that what it said last
		// time cannot pass for an answer.
		browsertest.JS[chromedp.Void](t, bctx, fmt.Sprintf(`document.getElementById(%q).form.querySelectorAll("output").forEach((o) => { o.textContent = ""; o.className = ""; })`, id))
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.ID(id))); err != nil {
			t.Fatalf("click %s: %v", id, err)
		}
	}
	// outputSays waits for an output to say want, and fails with what it
	// said instead (an error, most likely).
	outputSays := func(id, want string) {
		t.Helper()
		browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`((o) => o.textContent.includes(%q) || o.className === "err")(document.getElementById(%q))`, want, id),
			fmt.Sprintf("#%s never said %q", id, want))
		if got := browsertest.JS[string](t, bctx, fmt.Sprintf(`document.getElementById(%q).textContent`, id)); !strings.Contains(got, want) {
			t.Fatalf("#%s says %q, want %q", id, got, want)
		}
	}

	// The space's root is nube's pin, not a file of the user's.
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#internal-table tr[data-cid] td")].some((td) => td.textContent.startsWith("space "))`,
		"the space's root never appeared among nube's own pins")
	if n := browsertest.JS[int](t, bctx, `[...document.querySelectorAll("#pin-table tr[data-cid] td")].filter((td) => /^(service|space) /.test(td.textContent)).length`); n != 0 {
		t.Fatalf("%d of nube's own pins among the user's files", n)
	}

	// Publish a module from a file, under a long name, then call it with
	// text; another node has called it here first, for a run done for
	// others.
	const long = "upper-cases-all-you-send-it-and-nothing-more"
	mod := filepath.Join(t.TempDir(), "upper.wasm")
	if err := os.WriteFile(mod, wasmtest.Module(t, "upper"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.SetUploadFiles(chromedp.ID("publish-file"), []string{mod})); err != nil {
		t.Fatal(err)
	}
	set("publish-name", long)
	click("publish-btn")
	outputSays("publish-result", "Published "+long)
	svc, err := cl.ServiceInfo(ctx, long)
	if err != nil || svc.CID != browsertest.JS[string](t, bctx, `document.getElementById("publish-result").dataset.cid`) {
		t.Fatalf("service info after publishing through the page: %+v, %v", svc, err)
	}
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#internal-table td")].some((td) => td.textContent === "service module `+long+`")`,
		"the published module never appeared among nube's own pins")
	if _, err := c.Node(1).Service(svc.CID).On(c.Node(0).ID()).Call(ctx, []byte("x")); err != nil {
		t.Fatalf("node 1 calls the service on node 0: %v", err)
	}
	if got := browsertest.JS[string](t, bctx, `document.getElementById("call-ref").value`); got != long {
		t.Fatalf("the call form names %q after publishing, want the service just published", got)
	}
	set("call-input", "hello from the page")
	click("call-btn")
	outputSays("call-result", "Ran on ")
	if out := browsertest.JS[string](t, bctx, `document.getElementById("call-output").textContent`); out != "HELLO FROM THE PAGE" {
		t.Fatalf("the call's output on the page: %q", out)
	}
	// The run for node 1 is listed; its long name is cut with an ellipsis,
	// whole in its title, and fits at either width.
	browsertest.Wait(t, ctx, bctx, `document.querySelectorAll("#run-table tbody td.id").length > 0`, "the run done for node 1 never appeared")
	for _, width := range []int64{1280, 400} {
		if err := chromedp.Do(bctx, chromedp.EmulateViewport(width, 900)); err != nil {
			t.Fatal(err)
		}
		checkLayout(t, bctx, width)
		if cut := browsertest.JS[bool](t, bctx, `[...document.querySelectorAll("#run-table td")]
			.some((td) => td.title === "`+long+`" && td.scrollWidth > td.clientWidth)`); !cut {
			t.Fatalf("at %d px, the long service name in the runs table is not cut short with its title", width)
		}
		png, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("services")))
		if err == nil {
			err = os.WriteFile(filepath.Join(screenshotDir, fmt.Sprintf("services-runs-%d.png", width)), png, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// Create a group of this node alone; join one another node formed
	// with this node among its members.
	set("group-name", "team")
	click("group-create-btn")
	outputSays("group-result", "Formed team")
	if _, err := c.Node(1).Groups().Open(ctx, "crew", group.Options{Members: []peer.ID{c.Node(0).ID()}}); err != nil {
		t.Fatal(err)
	}
	set("group-name", "crew")
	set("group-peers", c.Node(1).ID().String())
	click("group-join-btn")
	outputSays("group-result", "Joined crew")
	if names, err := cl.GroupsList(ctx); err != nil || !slices.Contains(names, "team") || !slices.Contains(names, "crew") {
		t.Fatalf("groups after creating and joining through the page: %v, %v", names, err)
	}
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#group-list caption")].some((c) => c.textContent.startsWith("crew"))`,
		"the joined group never appeared in the Groups panel")

	// Create a space, then grant it to another user.
	set("space-name", "notes")
	click("space-btn")
	outputSays("space-result", "Created notes")
	id := browsertest.JS[string](t, bctx, `document.getElementById("space-result").dataset.space`)
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`!!document.querySelector('#space-table tr[data-space=%q]')`, id), "the new space never appeared in the Spaces panel")
	browsertest.Wait(t, ctx, bctx, `[...document.getElementById("grant-space").options].some((o) => o.value === "notes")`,
		"the new space was never offered to grant")
	set("grant-space", "notes")
	set("grant-user", c.Node(2).UserID().String())
	click("grant-btn")
	outputSays("grant-result", "Granted ")
	info, err := cl.SpaceInfo(ctx, "notes")
	if err != nil || !slices.ContainsFunc(info.Grants, func(g client.SpaceGrantInfo) bool { return g.To == c.Node(2).UserID().String() }) {
		t.Fatalf("space info notes after granting through the page: %+v, %v", info, err)
	}
	if home.ID() == id {
		t.Fatalf("the page made no new space: %s is the old one", id)
	}

	// Invite another node to this user; the page lists this node among
	// the user's; a join with no invite, or a bad one, is refused.
	click("invite-btn")
	outputSays("invite-result", "Give this to the new node")
	if inv := browsertest.JS[string](t, bctx, `document.getElementById("invite-result").textContent`); !strings.Contains(inv, "nubeinvite1:") {
		t.Fatalf("the invite the page showed: %q", inv)
	}
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#user-node-table td")].some((td) => td.textContent.endsWith("(this node)"))`,
		"the user's nodes never listed this node")
	click("join-btn")
	browsertest.Wait(t, ctx, bctx, `document.getElementById("join-result").className === "err"`, "a join with no invite was not refused")
	set("join-invite", "nubeinvite1:not-an-invite")
	click("join-btn")
	browsertest.Wait(t, ctx, bctx, `document.getElementById("join-result").className === "err" && document.getElementById("join-result").textContent !== "…"`,
		"a bad invite was not refused")

	// Send credit to another user; a bad amount is refused on the page.
	set("send-to", c.Node(1).UserID().String())
	set("send-amount", "a lot")
	click("send-btn")
	browsertest.Wait(t, ctx, bctx, `document.getElementById("send-result").className === "err"`, "a bad amount was not refused")
	set("send-amount", "0.25")
	set("send-memo", "from the page")
	click("send-btn")
	outputSays("send-result", "Sent 0.250 credits")
	browsertest.Wait(t, ctx, bctx, `[...document.querySelectorAll("#credit-table tbody td")].some((td) => td.textContent === "from the page")`,
		"the payment sent from the page never appeared in the Credit panel")

	// IDs show shortened, whole in their title, with a copy button.
	full := browsertest.JS[string](t, bctx, `document.querySelector('#node-info [data-key="peer ID"] .idv').dataset.id`)
	shown := browsertest.JS[string](t, bctx, `document.querySelector('#node-info [data-key="peer ID"] .idv .mono').textContent`)
	if full != c.Node(0).ID().String() || len(shown) >= len(full) {
		t.Fatalf("peer ID on the Node panel: %q for %q, want it shortened", shown, full)
	}
	browsertest.JS[chromedp.Void](t, bctx, `document.querySelector('#node-info [data-key="peer ID"] button.copy').click()`)
	browsertest.Wait(t, ctx, bctx, `!!document.querySelector('#node-info [data-key="peer ID"] button.copy').dataset.copied`, "the copy button did nothing")
	if browsertest.JS[string](t, bctx, `document.querySelector('#node-info [data-key="peer ID"] button.copy').dataset.copied`) != "1" &&
		browsertest.JS[string](t, bctx, `getSelection().toString()`) != full {
		t.Fatal("the copy button neither copied the ID nor selected it for Ctrl+C")
	}
}

// checkLayout fails the test if, at width pixels, the page scrolls
// sideways or a table cell is squeezed narrower than a few characters.
func checkLayout(t *testing.T, bctx context.Context, width int64) {
	t.Helper()
	if over := browsertest.JS[string](t, bctx, `(() => {
		const d = document.documentElement;
		if (d.scrollWidth <= d.clientWidth) return "";
		const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > d.clientWidth + 1 && !e.closest(".scroll"));
		return d.scrollWidth + " px wide in " + d.clientWidth + ": " + wide.slice(0, 5).map((e) => e.tagName + "#" + e.id + "." + e.className).join(", ");
	})()`); over != "" {
		t.Fatalf("at %d px the page scrolls sideways: %s", width, over)
	}
	if narrow := browsertest.JS[[]string](t, bctx, `[...document.querySelectorAll("td")]
		.filter((td) => td.offsetParent && td.textContent.trim().length > 3 && td.clientWidth < 40)
		.map((td) => td.closest("table").id + ": " + td.textContent.slice(0, 40) + " (" + td.clientWidth + " px)")`); len(narrow) > 0 {
		t.Fatalf("at %d px, cells squeezed narrower than 40 px: %v", width, narrow)
	}
	if tall := browsertest.JS[[]string](t, bctx, `[...document.querySelectorAll("td:not(.wrap)")]
		.map((td) => { const r = document.createRange(); r.selectNodeContents(td); return [td, r.getBoundingClientRect().height]; })
		.filter(([td, h]) => td.offsetParent && h > 1.9 * parseFloat(getComputedStyle(td).lineHeight))
		.map(([td, h]) => td.closest("table").id + ": " + td.textContent.slice(0, 40) + " (" + h + " px high)")`); len(tall) > 0 {
		t.Fatalf("at %d px, one-line cells that wrap: %v", width, tall)
	}
}

// navigationURLs returns the URLs in the tab's history.
func navigationURLs(bctx context.Context) ([]string, error) {
	return chromedp.Run(bctx, chromedp.Action[[]string](func(ctx context.Context, tg *chromedp.Target) ([]string, error) {
		h, err := cdp.Call(ctx, tg, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range h.Entries {
			out = append(out, e.URL, e.UserTypedURL)
		}
		return out, nil
	}))
}

// sessionStatus trades code for a session as the login page would and
// returns the status.
func sessionStatus(t *testing.T, base, code string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v0/session", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// httpStatus GETs u as a browser page of origin would (no cookie) and
// returns the status.
func httpStatus(t *testing.T, u, origin string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDashboardWeight: the first load of the dashboard (the page, its
// script and its style, all there is) stays under 300 KiB.
func TestDashboardWeight(t *testing.T) {
	_, s, _ := serve(t)
	cl := browser(t)
	if code := login(t, cl, s.LoginURL()); code != http.StatusNoContent {
		t.Fatalf("login: %d", code)
	}
	total := 0
	for _, p := range []string{"/", "/ui/app.js", "/ui/app.css"} {
		resp, err := cl.Get(s.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Fatalf("%s: %d, %d bytes", p, resp.StatusCode, len(b))
		}
		total += len(b)
	}
	t.Logf("first load: %d bytes (goal: under 300 KiB)", total)
	if total >= 300<<10 {
		t.Fatalf("the first load is %d bytes, over 300 KiB", total)
	}
}

// TestLoginFromFilePage: what 'nube open' hands the browser, a page on
// disk (api.LoginPage), logs a real Chromium in: the navigation from a
// file: page to the login page is cross-site, and the API lets that one
// page through while it refuses cross-site requests elsewhere.
func TestLoginFromFilePage(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real browser; skipped in -short mode")
	}
	bctx := browsertest.Start(t)
	_, s, _ := serve(t)
	ctx := nubetest.Context(t, time.Minute)
	link := s.LoginURL()
	code := link[strings.Index(link, "#")+1:]
	page := filepath.Join(t.TempDir(), "open.html")
	if err := os.WriteFile(page, api.LoginPage(link), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page)); err != nil {
		t.Fatal(err)
	}
	browsertest.Wait(t, ctx, bctx, `location.origin === `+fmt.Sprintf("%q", s.URL())+` && location.pathname === "/" && document.getElementById("conn").classList.contains("live")`,
		"the file page never led to the live dashboard")
	if got := sessionStatus(t, s.URL(), code); got != http.StatusUnauthorized {
		t.Fatalf("the page's code a second time: %d, want 401 (spent by the browser)", got)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/api/v0/dashboard", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site request for the dashboard's data: %d, want 403", resp.StatusCode)
	}
}
