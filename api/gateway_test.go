package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
)

// evilPage is published content that, opened in a browser, tries to use
// the API with whatever cookie the browser holds.
const evilPage = `<!doctype html><script>
fetch("http://127.0.0.1:5050/api/v0/pin/rm", {method: "POST", credentials: "include", body: '{"cid":"x"}'})
</script>`

// addFile adds data to n and returns its CID.
func addFile(t *testing.T, n *nube.Node, data []byte) string {
	t.Helper()
	c, err := n.Add(nubetest.Context(t, time.Minute), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func listenGateway(t *testing.T, n *nube.Node, cfg api.GatewayConfig) *api.Gateway {
	t.Helper()
	g, err := api.ListenGateway(n, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// do sends req with cl (http.DefaultClient if nil), returning the status,
// headers and body.
func do(t *testing.T, cl *http.Client, req *http.Request) (int, http.Header, string) {
	t.Helper()
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestGatewayOwnOrigin publishes an HTML page that tries to call the API
// and opens it as a logged-in browser would. The page comes from the
// gateway's origin, never the API's, under a sandbox with no scripts; the
// requests its script would make carry the gateway's (or a sandbox's null)
// origin, and the API refuses them though the cookie rides along.
func TestGatewayOwnOrigin(t *testing.T) {
	c, s, _ := serve(t)
	n := c.Node(0)
	g := listenGateway(t, n, api.GatewayConfig{})
	page := addFile(t, n, []byte(evilPage))
	if g.Addr() == s.Addr() {
		t.Fatal("the gateway listens on the API's address")
	}

	cl := browser(t)
	if code := login(t, cl, s.LoginURL()); code != http.StatusNoContent {
		t.Fatalf("login: %d", code)
	}
	req, _ := http.NewRequest("GET", g.URL()+"/ipfs/"+page+"?filename=page.html", nil)
	code, h, body := do(t, cl, req)
	if code != http.StatusOK || body != evilPage {
		t.Fatalf("the page from the gateway: %d %q", code, body)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "sandbox") || strings.Contains(csp, "allow-scripts") || strings.Contains(csp, "allow-same-origin") {
		t.Errorf("path gateway CSP %q: want a sandbox without scripts or an origin", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff on gateway content: %v", h)
	}

	// What the page's script would send: the browser attaches the
	// session cookie (same site: cookies ignore ports) and says where
	// the request comes from.
	for name, hdr := range map[string]map[string]string{
		"gateway origin":      {"Origin": g.URL(), "Sec-Fetch-Site": "same-site"},
		"sandboxed page":      {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
		"Sec-Fetch-Site only": {"Sec-Fetch-Site": "same-site"},
		"Origin only":         {"Origin": g.URL()},
		"another site":        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
	} {
		for _, ep := range []string{"/api/v0/pin/ls", "/api/v0/gc"} {
			method := "POST"
			if ep == "/api/v0/pin/ls" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, s.URL()+ep, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			if code, _, body := do(t, cl, req); code != http.StatusForbidden {
				t.Errorf("%s: %s %s answered %d %s, want 403", name, method, ep, code, body)
			}
		}
	}
	// The API's own pages still work with the cookie.
	req, _ = http.NewRequest("GET", s.URL()+"/api/v0/pin/ls", nil)
	req.Header.Set("Origin", s.URL())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if code, _, body := do(t, cl, req); code != http.StatusOK || !strings.Contains(body, page) {
		t.Errorf("same-origin request with the cookie: %d %s", code, body)
	}
	if has, _ := isPinned(n, page); !has {
		t.Error("the page's pin is gone")
	}
}

// TestCrossPortFormPost is the same-site CSRF of the review: a form on a
// page at another port of 127.0.0.1 posts text/plain to pin/rm, with the
// session cookie. It must get 403 and leave the pin in place.
func TestCrossPortFormPost(t *testing.T) {
	c, s, tok := serve(t)
	n := c.Node(0)
	cidStr := addFile(t, n, []byte("keep me"))
	cl := browser(t)
	if code := login(t, cl, s.LoginURL()); code != http.StatusNoContent {
		t.Fatalf("login: %d", code)
	}
	post := func(hdr map[string]string, auth bool) int {
		req, _ := http.NewRequest("POST", s.URL()+"/api/v0/pin/rm", strings.NewReader(`{"cid":"`+cidStr+`"}`))
		req.Header.Set("Content-Type", "text/plain")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		var hc *http.Client = cl
		if auth {
			req.Header.Set("Authorization", "Bearer "+tok)
			hc = http.DefaultClient
		}
		code, _, _ := do(t, hc, req)
		return code
	}
	if code := post(map[string]string{"Origin": "http://127.0.0.1:3000", "Sec-Fetch-Site": "same-site"}, false); code != http.StatusForbidden {
		t.Fatalf("cross-port form POST: %d, want 403", code)
	}
	if code := post(nil, false); code != http.StatusForbidden {
		t.Fatalf("cookie POST that says nothing of its origin: %d, want 403", code)
	}
	if has, _ := isPinned(n, cidStr); !has {
		t.Fatal("a refused request removed the pin")
	}
	// A script on the API's own page may; so may the CLI with its token.
	if code := post(map[string]string{"Origin": s.URL(), "Sec-Fetch-Site": "same-origin"}, false); code != http.StatusOK {
		t.Fatalf("same-origin POST with the cookie: %d", code)
	}
	if code := post(nil, true); code == http.StatusForbidden || code == http.StatusUnauthorized {
		t.Fatalf("CLI POST with the token: %d", code)
	}
}

// TestSubdomainGateway opens content at localhost, which sends it to an
// origin of its own, {cid}.ipfs.localhost, where it is served unsandboxed.
func TestSubdomainGateway(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	g := listenGateway(t, n, api.GatewayConfig{})
	page := addFile(t, n, []byte("<p>hello</p>"))
	_, port, _ := net.SplitHostPort(g.Addr())
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	req, _ := http.NewRequest("GET", g.URL()+"/ipfs/"+page+"/x?y=1", nil)
	req.Host = "localhost:" + port
	code, h, _ := do(t, noRedirect, req)
	want := "http://" + page + ".ipfs.localhost:" + port + "/x?y=1"
	if code != http.StatusMovedPermanently || h.Get("Location") != want {
		t.Fatalf("localhost path request: %d to %q, want 301 to %q", code, h.Get("Location"), want)
	}
	// A CIDv0 becomes its base32 CIDv1, a valid DNS label.
	v0 := cid.NewCidV0(cid.MustParse(page).Hash())
	req, _ = http.NewRequest("GET", g.URL()+"/ipfs/"+v0.String(), nil)
	req.Host = "localhost:" + port
	if code, h, _ := do(t, noRedirect, req); code != http.StatusMovedPermanently || !strings.HasPrefix(h.Get("Location"), "http://bafy") {
		t.Fatalf("CIDv0 at localhost: %d to %q", code, h.Get("Location"))
	}

	req, _ = http.NewRequest("GET", g.URL()+"/", nil)
	req.Host = page + ".ipfs.localhost:" + port
	code, h, body := do(t, nil, req)
	if code != http.StatusOK || body != "<p>hello</p>" {
		t.Fatalf("subdomain gateway: %d %q", code, body)
	}
	if h.Get("Content-Security-Policy") != "" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("subdomain gateway headers: %v", h)
	}
	req, _ = http.NewRequest("GET", g.URL()+"/", nil)
	req.Host = "a.b.ipfs.localhost:" + port
	if code, _, _ := do(t, nil, req); code != http.StatusBadRequest {
		t.Fatalf("a host of two labels: %d", code)
	}
	req, _ = http.NewRequest("POST", g.URL()+"/ipfs/"+page, nil)
	if code, _, _ := do(t, nil, req); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the gateway: %d", code)
	}
}

// TestGatewayRange checks the answers to suffix ranges, "bytes=-0" among
// them, which nothing can satisfy.
func TestGatewayRange(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	g := listenGateway(t, n, api.GatewayConfig{})
	data := "0123456789abcdefghijklmnopqrstuvwxyz01234567" // 44 bytes
	u := g.URL() + "/ipfs/" + addFile(t, n, []byte(data))
	for rng, want := range map[string]struct {
		code         int
		body, crange string
	}{
		"bytes=-0":      {http.StatusRequestedRangeNotSatisfiable, "", "bytes */44"},
		"bytes=-00":     {http.StatusRequestedRangeNotSatisfiable, "", "bytes */44"},
		"bytes=-4":      {http.StatusPartialContent, "4567", "bytes 40-43/44"},
		"bytes=-0,0-1":  {http.StatusPartialContent, "01", "bytes 0-1/44"},
		"bytes=50-":     {http.StatusRequestedRangeNotSatisfiable, "", "bytes */44"},
		"bytes=40-1000": {http.StatusPartialContent, "4567", "bytes 40-43/44"},
	} {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Range", rng)
		code, h, body := do(t, nil, req)
		if code != want.code || (want.body != "" && body != want.body) || h.Get("Content-Range") != want.crange {
			t.Errorf("Range %s: %d %q %q, want %d %q %q", rng, code, h.Get("Content-Range"), body, want.code, want.crange, want.body)
		}
	}
}

// TestGatewayMissingContent asks for a CID nobody has: the search ends at
// FetchTimeout with 504, rather than running on for an anonymous client.
func TestGatewayMissingContent(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	g := listenGateway(t, n, api.GatewayConfig{FetchTimeout: 300 * time.Millisecond})
	missing := "bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom"
	req, _ := http.NewRequest("GET", g.URL()+"/ipfs/"+missing, nil)
	if code, _, body := do(t, nil, req); code != http.StatusGatewayTimeout {
		t.Fatalf("missing CID: %d %s", code, body)
	}
}

// TestGatewayLimits fills the gateway with clients that stop reading: a
// client gets no more than MaxPerClient responses at once (429 past that),
// another client gets in while there is room, the gateway refuses with 503
// when it has none, and a client that takes nothing loses its response
// after WriteTimeout, which frees its place.
func TestGatewayLimits(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	g := listenGateway(t, n, api.GatewayConfig{MaxPerClient: 2, MaxResponses: 3, WriteTimeout: time.Second, QueueWait: 100 * time.Millisecond})
	// Large enough that the socket buffers cannot swallow it.
	u := g.URL() + "/ipfs/" + addFile(t, n, bytes.Repeat([]byte("slow reader "), 4<<20))
	ctx := nubetest.Context(t, time.Minute)

	// stalled starts a request from local address ip and reads nothing
	// past the headers. It returns the status and the body to close.
	stalled := func(ip string) (int, io.ReadCloser) {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Body
	}
	var bodies []io.ReadCloser
	defer func() {
		for _, b := range bodies {
			b.Close()
		}
	}()
	for i, tc := range []struct {
		ip   string
		want int
	}{
		{"127.0.0.1", 200}, {"127.0.0.1", 200},
		{"127.0.0.1", http.StatusTooManyRequests}, // over its own cap
		{"127.0.0.2", 200},                        // another client: room left
		{"127.0.0.3", http.StatusServiceUnavailable},
	} {
		code, body := stalled(tc.ip)
		if code != tc.want {
			t.Fatalf("request %d from %s: %d, want %d", i, tc.ip, code, tc.want)
		}
		if code == 200 {
			bodies = append(bodies, body)
		} else {
			body.Close()
		}
	}
	// The stalled responses end at their write timeout. No event says
	// so; poll the count of responses under way.
	nubetest.Eventually(t, ctx, func() bool { return g.Responses() == 0 },
		func() string { return fmt.Sprintf("%d stalled responses never ended", g.Responses()) })
	// Each stalled body, read now, ends before its length.
	for i, b := range bodies {
		if _, err := io.Copy(io.Discard, b); err == nil {
			t.Fatalf("stalled response %d was not cut off", i)
		}
	}
	// And the gateway has room again.
	code, body := stalled("127.0.0.3")
	body.Close()
	if code != http.StatusOK {
		t.Fatalf("after the stalled responses ended: %d", code)
	}
}

// FuzzGatewayRequest sends the gateway arbitrary hosts, paths and Range
// headers, as anyone may: every one gets an answer (no panic), and none a
// 5xx other than the 503 and 504 of a busy gateway or missing content.
func FuzzGatewayRequest(f *testing.F) {
	n := nubetest.Cluster(f, 1).Node(0)
	c, err := n.Add(context.Background(), strings.NewReader("fuzzed gateway file\n"))
	if err != nil {
		f.Fatal(err)
	}
	g, err := api.ListenGateway(n, "127.0.0.1:0", api.GatewayConfig{FetchTimeout: 50 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	// A malformed HAMT shard, for the fuzzer to reach by any format.
	d := nubetest.NewDAG(f)
	file := d.File("hello")
	bad := malformedHAMT(f, file)
	if _, err := n.Content().ImportCAR(context.Background(), bytes.NewReader(carOfNodes(f, bad, file)), content.ImportOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Add("127.0.0.1", "/ipfs/"+c.String(), "bytes=-0", "", "")
	f.Add("localhost", "/ipfs/"+c.String()+"/a/b", "bytes=1-2,-0", "", "")
	f.Add(c.String()+".ipfs.localhost", "/", "bytes=0-", "", "")
	f.Add("x.ipfs.localhost", "/../..", "bytes=--1", "", "")
	for _, q := range []string{"", "format=tar", "format=car", "format=raw", "format=dag-json", "format=dag-cbor", "format=json", "format=ipns-record"} {
		f.Add("127.0.0.1", "/ipfs/"+bad.Cid().String(), "", q, "")
		f.Add("127.0.0.1", "/ipfs/"+bad.Cid().String()+"/ok", "", q, "")
	}
	for _, accept := range []string{"application/x-tar", "application/vnd.ipld.car", "application/vnd.ipld.raw", "application/vnd.ipld.dag-json", "text/html"} {
		f.Add("127.0.0.1", "/ipfs/"+bad.Cid().String(), "", "", accept)
		f.Add(bad.Cid().String()+".ipfs.localhost", "/ok", "", "", accept)
	}
	f.Fuzz(func(t *testing.T, host, path, rng, query, accept string) {
		req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		req.Host = host
		req.URL.Path = path
		req.URL.RawQuery = query
		req.Header.Set("Range", rng)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented && rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusGatewayTimeout {
			t.Fatalf("host %q path %q range %q query %q accept %q: %d %s", host, path, rng, query, accept, rec.Code, rec.Body)
		}
	})
}

// isPinned reports whether the node has the root c pinned.
func isPinned(n *nube.Node, c string) (bool, error) {
	pins, err := n.Content().Pins(context.Background())
	for _, p := range pins {
		if p.CID.String() == c {
			return true, err
		}
	}
	return false, err
}

// TestGatewayTrustless asks the gateway for trustless responses, as other
// IPFS tools do to check what a gateway serves: a raw block (?format=raw
// and by Accept header) hashes to its CID, and a CAR (?format=car, by
// Accept header, and of a path's entity) holds sound blocks that a node
// meeting no one imports as the whole DAG, reading the file back.
func TestGatewayTrustless(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	big := bytes.Repeat([]byte("trustless "), 100_000) // four blocks and a root
	root, err := c.Node(0).Content().AddTree(ctx, func(put func(string, io.Reader) error, mkdir func(string) error, link func(string, string) error) error {
		if err := put("big.txt", bytes.NewReader(big)); err != nil {
			return err
		}
		return put("small.txt", strings.NewReader("small\n"))
	}, content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway is on the other node: every block comes over the network.
	g := listenGateway(t, c.Node(1), api.GatewayConfig{})

	get := func(u, accept string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	for _, tc := range []struct{ url, accept string }{
		{g.URL() + "/ipfs/" + root.String() + "?format=raw", ""},
		{g.URL() + "/ipfs/" + root.String(), "application/vnd.ipld.raw"},
	} {
		code, h, body := get(tc.url, tc.accept)
		if code != http.StatusOK || h.Get("Content-Type") != "application/vnd.ipld.raw" {
			t.Fatalf("raw block %s (Accept %q): %d %v", tc.url, tc.accept, code, h)
		}
		if sum, _ := root.Prefix().Sum(body); !sum.Equals(root) {
			t.Fatalf("raw block %s: its bytes hash to %s, not %s", tc.url, sum, root)
		}
	}
	bigFile, err := c.Node(0).Content().Stat(ctx, root.String()+"/big.txt")
	if err != nil {
		t.Fatal(err)
	}
	// A CAR's root is the path's last CID, and it carries the blocks on
	// the way there too.
	for _, tc := range []struct {
		url, accept, file string
		root              cid.Cid
	}{
		{g.URL() + "/ipfs/" + root.String() + "?format=car", "", "small.txt", root},
		{g.URL() + "/ipfs/" + root.String(), "application/vnd.ipld.car", "big.txt", root},
		{g.URL() + "/ipfs/" + root.String() + "/big.txt?format=car&dag-scope=entity", "", "big.txt", bigFile.CID},
	} {
		code, h, body := get(tc.url, tc.accept)
		if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/vnd.ipld.car") {
			t.Fatalf("CAR %s (Accept %q): %d %v %s", tc.url, tc.accept, code, h, body)
		}
		lone := nubetest.Cluster(t, 1).Node(0)
		res, err := lone.Content().ImportCAR(ctx, bytes.NewReader(body), content.ImportOptions{})
		if err != nil {
			t.Fatalf("CAR %s does not import on its own: %v", tc.url, err)
		}
		if len(res.Roots) != 1 || !res.Roots[0].Equals(tc.root) {
			t.Fatalf("CAR %s has roots %v, want [%s]", tc.url, res.Roots, tc.root)
		}
		// The path's blocks and the file's are all there: it reads with
		// no one to ask.
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		f, err := lone.Content().Get(fctx, root.String()+"/"+tc.file)
		if err != nil {
			cancel()
			t.Fatalf("CAR %s: %s: %v", tc.url, tc.file, err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		cancel()
		want := big
		if tc.file == "small.txt" {
			want = []byte("small\n")
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("CAR %s: %s reads back %d bytes (%v), want %d", tc.url, tc.file, len(got), err, len(want))
		}
	}
}

// TestGatewayRefusesBadCIDs: a CID the node would refuse (a weak or
// malformed hash, found by FuzzGatewayRequest) or a path inside a codec
// nothing here decodes is the client's mistake, 400, on both gateways and
// before anything is looked up; boxo's resolver answered 500.
func TestGatewayRefusesBadCIDs(t *testing.T) {
	n := nubetest.Cluster(t, 1).Node(0)
	g, err := api.ListenGateway(n, "127.0.0.1:0", api.GatewayConfig{FetchTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, tc := range []struct{ host, path string }{
		{"127.0.0.1", "/ipfs/BAf2A2iA222222222222222222222222222222222222222222222222222"},
		{"127.0.0.1", "/ipfs/BAf2BeifkjgjkeZej5Z5mui6jmuel5eCh3f6B5vYupf5pfwZoZe36YtYhmm/0"},
		{"localhost", "/ipfs/BAf2A2iA222222222222222222222222222222222222222222222222222"},
		{"127.0.0.1", "/ipfs/not-a-cid/x"},
		{"baf2a2ia22222222222222222222222222222222222222222222222222y.ipfs.localhost", "/"},
	} {
		req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		req.Host = tc.host
		req.URL.Path = tc.path
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("host %s path %s: %d %s, want 400", tc.host, tc.path, rec.Code, rec.Body)
		}
	}
}
