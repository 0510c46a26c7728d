package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, nubetest.LeakOptions()...)
}

func serve(t *testing.T) (*nubetest.C, *api.Server, string) {
	t.Helper()
	c := nubetest.Cluster(t, 2)
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s, tok
}

func get(t *testing.T, url, host, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuth(t *testing.T) {
	c, s, tok := serve(t)
	url := s.URL() + "/api/v0/id"
	if code, body := get(t, url, "", ""); code != http.StatusUnauthorized || !strings.Contains(body, "api.token") {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, _ := get(t, url, "", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, body := get(t, url, "", "Bearer "+tok)
	if code != http.StatusOK || !strings.Contains(body, c.Node(0).ID().String()) {
		t.Fatalf("good token: %d %s", code, body)
	}
	if code, _ := get(t, s.URL()+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", code)
	}
}

func TestHostCheck(t *testing.T) {
	_, s, tok := serve(t)
	_, port, _ := strings.Cut(s.Addr(), ":")
	for host, want := range map[string]int{
		"evil.example:" + port:   http.StatusForbidden, // DNS rebinding
		"127.0.0.1:1":            http.StatusForbidden, // another port
		"localhost:" + port:      http.StatusOK,
		"127.0.0.1:" + port:      http.StatusOK,
		"LOCALHOST:" + port:      http.StatusOK,
		"evil.localhost:" + port: http.StatusForbidden,
	} {
		if code, _ := get(t, s.URL()+"/api/v0/id", host, "Bearer "+tok); code != want {
			t.Errorf("Host %q: status %d, want %d", host, code, want)
		}
	}
}

func TestMetrics(t *testing.T) {
	_, s, tok := serve(t)
	code, body := get(t, s.URL()+"/metrics", "", "Bearer "+tok)
	if code != http.StatusOK {
		t.Fatalf("metrics: %d", code)
	}
	for _, m := range []string{"go_goroutines", "libp2p_"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

func TestClientCalls(t *testing.T) {
	c, s, tok := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := &client.Client{URL: s.URL(), Token: tok}
	peers, err := cl.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].ID != c.Node(1).ID().String() {
		t.Fatalf("Peers = %+v, %v", peers, err)
	}
	extra := nubetest.Cluster(t, 1)
	res, err := cl.Connect(ctx, extra.Node(0).Addrs()[0].String())
	if err != nil || res.ID != extra.Node(0).ID().String() {
		t.Fatalf("Connect = %+v, %v", res, err)
	}
	pr, err := cl.Ping(ctx, c.Node(1).ID().String(), 3)
	if err != nil || len(pr.RTTMS) != 3 {
		t.Fatalf("Ping = %+v, %v", pr, err)
	}
	if _, err := cl.Ping(ctx, "not-a-peer", 1); err == nil || !strings.Contains(err.Error(), "bad peer ID") {
		t.Fatalf("Ping of a bad peer ID: %v", err)
	}
	if _, err := cl.Connect(ctx, "/ip4/1.2.3.4"); err == nil || !strings.Contains(err.Error(), "/p2p/") {
		t.Fatalf("Connect to an address without a peer ID: %v", err)
	}
	st, err := cl.Status(ctx)
	if err != nil || st.Peers != 2 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

func TestBadBodies(t *testing.T) {
	_, s, tok := serve(t)
	for name, tc := range map[string]struct {
		body string
		want int
	}{
		"malformed":     {`{"peer":`, http.StatusBadRequest},
		"unknown field": {`{"peer":"x","evil":1}`, http.StatusBadRequest},
		"two values":    {`{"peer":"x"}{"peer":"y"}`, http.StatusBadRequest},
		"too large":     {`{"peer":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
		"too many":      {`{"peer":"x","count":1000}`, http.StatusBadRequest},
	} {
		req, _ := http.NewRequest("POST", s.URL()+"/api/v0/ping", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, tc.want)
		}
	}
}

// TestStatusPageLogin logs a browser in with a one-time link: the code
// works once, the session cookie is HttpOnly, SameSite=Strict and named for
// this node alone, and the API token never appears in a URL.
func TestStatusPageLogin(t *testing.T) {
	c, s, tok := serve(t)
	link := s.LoginURL()
	if strings.Contains(link, tok) {
		t.Fatalf("the login link carries the API token: %s", link)
	}
	if u, _ := url.Parse(link); u.RawQuery != "" || u.Fragment == "" {
		t.Fatalf("the login link's code is not in its fragment: %s", link)
	}
	cl := browser(t)
	if code := login(t, cl, link); code != http.StatusNoContent {
		t.Fatalf("login: %d", code)
	}
	resp, err := cl.Get(s.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `id="peers"`) {
		t.Fatalf("dashboard after login: %d", resp.StatusCode)
	}
	// The page's own requests carry the cookie and see the node.
	resp, err = cl.Get(s.URL() + "/api/v0/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), c.Node(0).ID().String()) {
		t.Fatalf("status with the session cookie: %d %s", resp.StatusCode, b)
	}
	u, _ := url.Parse(s.URL())
	cookies := cl.Jar.Cookies(u)
	if len(cookies) != 1 || !strings.HasPrefix(cookies[0].Name, "nube_session_") || cookies[0].Value == tok {
		t.Fatalf("cookies after login: %v", cookies)
	}
	// The same link a second time is dead, for this browser or another.
	if code := login(t, browser(t), link); code != http.StatusUnauthorized {
		t.Fatalf("second use of a login link: %d", code)
	}
	// The token in a URL logs nobody in any more.
	if code, _ := get(t, s.URL()+"/?token="+tok, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("login with the token in the URL: %d", code)
	}
	// Another node's daemon on the same machine names its cookie apart,
	// so the two do not overwrite each other's sessions.
	other, err := api.Listen(c.Node(1), "127.0.0.1:0", api.NewToken(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if code := login(t, cl, other.LoginURL()); code != http.StatusNoContent {
		t.Fatalf("login to the second daemon: %d", code)
	}
	names := map[string]bool{}
	for _, c := range cl.Jar.Cookies(u) {
		names[c.Name] = true
	}
	if len(names) != 2 {
		t.Fatalf("two daemons' sessions in one browser: cookies %v", names)
	}
	if code := browse(t, cl, s.URL()+"/api/v0/id"); code != http.StatusOK {
		t.Fatalf("the first daemon's session after logging into the second: %d", code)
	}
}

// login does what the login page does with a link: load the page (the
// fragment stays in the browser), then trade the code for a session, as a
// script of that page. It returns the status of the trade.
func login(t *testing.T, cl *http.Client, link string) int {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	code := u.Fragment
	u.Fragment = ""
	if got := browse(t, cl, u.String()); got != http.StatusOK {
		t.Fatalf("login page: %d", got)
	}
	origin := u.Scheme + "://" + u.Host
	req, _ := http.NewRequest("POST", origin+"/api/v0/session", strings.NewReader(`{"code":"`+code+`"}`))
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// browser returns an HTTP client with a real cookie jar, as a browser has.
// Cookies ignore ports, as in browsers.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// browse GETs u with cl and returns the status.
func browse(t *testing.T, cl *http.Client, u string) int {
	t.Helper()
	resp, err := cl.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestOpenWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	if _, err := client.Open(dir); !errors.Is(err, client.ErrNoDaemon) || !strings.Contains(err.Error(), "nube up") {
		t.Fatalf("Open of an empty data dir = %v", err)
	}
	// A daemon that crashed leaves its endpoint behind: calls must still
	// say that no daemon runs.
	if err := client.WriteEndpoint(dir, "http://127.0.0.1:1", "tok"); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.ID(ctx); !errors.Is(err, client.ErrNoDaemon) {
		t.Fatalf("call through a stale endpoint = %v, want ErrNoDaemon", err)
	}
	if st, err := os.Stat(filepath.Join(dir, client.TokenFile)); err == nil && st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", st.Mode().Perm())
	}
}

// FuzzRequestBodies drives the request decoders with arbitrary bodies. The
// API must answer every one (no panic) and never with a 5xx other than the
// 502 of a failed connect or ping, or the 504 of a ledger not reached in
// the request's second.
func FuzzRequestBodies(f *testing.F) {
	c := nubetest.Cluster(f, 1)
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	h := s.Handler()
	f.Add("/api/v0/ping", `{"peer":"12D3KooWJaURZ2J6Fd51MtHHNaodi79n8BAK6gAceiQ4dNrcaM8p"}`)
	f.Add("/api/v0/connect", `{"addr":"/ip4/127.0.0.1/tcp/1"}`)
	f.Add("/api/v0/connect", `{"addr":""}`)
	f.Add("/api/v0/group/cas", `{"name":"g","key":"k","old":null,"value":"eA=="}`)
	f.Add("/api/v0/group/rm", `{"name":"g","key":""}`)
	f.Add("/api/v0/group/add", `{"name":"g","peer":"x"}`)
	f.Add("/api/v0/group/remove", `{"name":"","peer":"12D3KooWJaURZ2J6Fd51MtHHNaodi79n8BAK6gAceiQ4dNrcaM8p"}`)
	f.Add("/api/v0/session", `{"code":"00"}`)
	f.Add("/api/v0/space/create", `{"name":"s","on":["x"],"replicas":2}`)
	f.Add("/api/v0/space/create", `{"name":"s","local":true}`)
	f.Add("/api/v0/space/rm", `{"space":"s","key":"k"}`)
	f.Add("/api/v0/space/grant", `{"space":"s","user":"12D3KooWJaURZ2J6Fd51MtHHNaodi79n8BAK6gAceiQ4dNrcaM8p","read":true,"until":"2020-01-01T00:00:00Z"}`)
	f.Add("/api/v0/space/revoke", `{"space":"x/s","grant":"00"}`)
	f.Add("/api/v0/credit/send", `{"to":"12D3KooWJaURZ2J6Fd51MtHHNaodi79n8BAK6gAceiQ4dNrcaM8p","amount":-1,"memo":""}`)
	f.Add("/api/v0/credit/vouch", `{"to":"12D3KooWJaURZ2J6Fd51MtHHNaodi79n8BAK6gAceiQ4dNrcaM8p","amount":9223372036854775807}`)
	f.Add("/api/v0/ledger/create", `{"peers":["x"],"limit":-5}`)
	f.Add("/api/v0/ledger/join", `{"via":""}`)
	paths := []string{"/api/v0/credit/send", "/api/v0/credit/vouch", "/api/v0/ledger/create", "/api/v0/ledger/join", "/api/v0/ping", "/api/v0/connect", "/api/v0/group/cas", "/api/v0/group/rm", "/api/v0/group/add", "/api/v0/group/remove", "/api/v0/session",
		"/api/v0/space/create", "/api/v0/space/rm", "/api/v0/space/grant", "/api/v0/space/revoke"}
	f.Fuzz(func(t *testing.T, path, body string) {
		if !slices.Contains(paths, path) {
			path = "/api/v0/ping"
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "POST", "http://"+s.Addr()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusBadGateway && rec.Code != http.StatusGatewayTimeout {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

// TestClientErrors checks that an error answer reaches a Go client of the
// daemon with its code: errors.Is finds the matching sentinel, and the
// message is the server's.
func TestClientErrors(t *testing.T) {
	_, s, tok := serve(t)
	ctx := nubetest.Context(t, 30*time.Second)
	cl := &client.Client{URL: s.URL(), Token: tok}
	err := cl.Unpin(ctx, "bafkreie7ohywtosou76tasm7j63yigtzxe7d5zqus4zu3j6oltvgtibeom")
	var e *client.Error
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &e) || e.Status != http.StatusNotFound || !strings.Contains(e.Message, "not pinned") {
		t.Fatalf("unpin of what is not pinned: %#v", err)
	}
	if _, err := cl.Ping(ctx, "not-a-peer", 1); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("ping of a bad peer ID: %v", err)
	}
	// The layers' own sentinels work through the daemon too, by code.
	if !errors.Is(err, content.ErrNotPinned) || errors.Is(err, service.ErrBusy) {
		t.Fatalf("unpin through the daemon does not match content.ErrNotPinned alone: %v", err)
	}
	if _, err := cl.ServiceInfo(ctx, "no-such-service"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("info of an unknown service through the daemon: %v", err)
	}
	bad := &client.Client{URL: s.URL(), Token: "wrong"}
	if _, err := bad.ID(ctx); !errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a wrong token: %v", err)
	}
}
