package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// site imports a directory holding index.html into n and returns its CID.
func site(t *testing.T, n *nube.Node, body string) string {
	t.Helper()
	d := nubetest.NewDAG(t)
	root := d.Dir("index.html", d.File(body))
	if _, err := n.Content().ImportCAR(nubetest.Context(t, time.Minute), bytes.NewReader(d.CAR(root)), content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return root.Cid().String()
}

func gwGet(t *testing.T, url, host string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, nil, req)
}

// TestGatewayIPNS: a name published on one node is served by another
// node's gateway, as a path and as its raw record, with the caching
// headers and X-Ipfs-Path the specification asks for.
func TestGatewayIPNS(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a, b := c.Node(0), c.Node(1)
	root := site(t, a, "<h1>named</h1>")
	p, err := a.Names().Publish(ctx, "", root, names.PublishOptions{TTL: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := listenGateway(t, b, api.GatewayConfig{})
	code, h, body := gwGet(t, g.URL()+"/ipns/"+p.Name+"/index.html", "")
	if code != http.StatusOK || body != "<h1>named</h1>" {
		t.Fatalf("GET /ipns/NAME/index.html: %d %q", code, body)
	}
	if got := h.Get("X-Ipfs-Path"); got != "/ipns/"+p.Name+"/index.html" {
		t.Errorf("X-Ipfs-Path %q", got)
	}
	if got := h.Get("Cache-Control"); !strings.Contains(got, "max-age=90") {
		t.Errorf("Cache-Control %q, want the record's TTL as max-age", got)
	}
	if h.Get("Etag") == "" || !strings.Contains(h.Get("X-Ipfs-Roots"), root) {
		t.Errorf("Etag %q, X-Ipfs-Roots %q", h.Get("Etag"), h.Get("X-Ipfs-Roots"))
	}

	code, h, body = gwGet(t, g.URL()+"/ipns/"+p.Name+"?format=ipns-record", "")
	if code != http.StatusOK || h.Get("Content-Type") != "application/vnd.ipfs.ipns-record" {
		t.Fatalf("?format=ipns-record: %d %s", code, h.Get("Content-Type"))
	}
	rec, err := ipns.UnmarshalRecord([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := ipns.NameFromString(p.Name)
	if err := ipns.ValidateWithName(rec, n); err != nil {
		t.Fatalf("the record served does not validate: %v", err)
	}
	if v, _ := rec.Value(); v.String() != "/ipfs/"+root {
		t.Fatalf("the record served points at %s", v)
	}
	if !strings.HasPrefix(h.Get("Cache-Control"), "public, max-age=") {
		t.Errorf("record Cache-Control %q", h.Get("Cache-Control"))
	}

	// A name nobody published: not found, not a server error.
	other, err := b.Names().Gen("unused")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := gwGet(t, g.URL()+"/ipns/"+other.ID+"/", ""); code != http.StatusNotFound {
		t.Errorf("an unpublished name: %d, want 404", code)
	}
}

// TestGatewayDNSLink: a domain in the node's local DNSLink map is served
// as /ipns/DOMAIN and as a website whose Host is the domain.
func TestGatewayDNSLink(t *testing.T) {
	d := nubetest.NewDAG(t)
	dir := d.Dir("index.html", d.File("<h1>dnslink</h1>"))
	c := nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, cfg *nube.Config) {
		cfg.DNSLinks = map[string]string{"site.example": "/ipfs/" + dir.Cid().String()}
	}))
	m := c.Node(0)
	if _, err := m.Content().ImportCAR(nubetest.Context(t, time.Minute), bytes.NewReader(d.CAR(dir)), content.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	g := listenGateway(t, m, api.GatewayConfig{})

	code, h, body := gwGet(t, g.URL()+"/ipns/site.example/index.html", "")
	if code != http.StatusOK || body != "<h1>dnslink</h1>" {
		t.Fatalf("GET /ipns/site.example/index.html: %d %q", code, body)
	}
	if got := h.Get("X-Ipfs-Path"); got != "/ipns/site.example/index.html" {
		t.Errorf("X-Ipfs-Path %q", got)
	}
	code, h, body = gwGet(t, g.URL()+"/index.html", "site.example")
	if code != http.StatusOK || body != "<h1>dnslink</h1>" {
		t.Fatalf("GET / with Host site.example: %d %q", code, body)
	}
	if h.Get("Content-Security-Policy") != "" {
		t.Errorf("a DNSLink website is its own origin, yet sandboxed: %q", h.Get("Content-Security-Policy"))
	}
	// A domain with no DNSLink is not found.
	code, _, _ = gwGet(t, g.URL()+"/ipns/nothing.invalid/", "")
	if code == http.StatusOK {
		t.Fatalf("a domain with no DNSLink: %d", code)
	}
}

// TestGatewayCORS: every response lets any origin read it, OPTIONS (a
// preflight) succeeds, and X-Ipfs-Path is set and exposed.
func TestGatewayCORS(t *testing.T) {
	c := nubetest.Cluster(t, 1)
	n := c.Node(0)
	cid := addFile(t, n, []byte("hello\n"))
	g := listenGateway(t, n, api.GatewayConfig{})
	for _, method := range []string{http.MethodGet, http.MethodOptions} {
		req, _ := http.NewRequest(method, g.URL()+"/ipfs/"+cid+"/", nil)
		req.Header.Set("Origin", "https://elsewhere.example")
		code, h, _ := do(t, nil, req)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", method, code)
		}
		if h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: Access-Control-Allow-Origin %q", method, h.Get("Access-Control-Allow-Origin"))
		}
		for hdr, want := range map[string][]string{
			"Access-Control-Allow-Methods":  {"GET", "HEAD", "OPTIONS"},
			"Access-Control-Allow-Headers":  {"Content-Type", "Range", "User-Agent", "X-Requested-With"},
			"Access-Control-Expose-Headers": {"Content-Range", "Content-Length", "X-Ipfs-Path", "X-Ipfs-Roots", "X-Chunked-Output", "X-Stream-Output"},
		} {
			got := strings.Join(h.Values(hdr), ",")
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%s: %s %q lacks %s", method, hdr, got, w)
				}
			}
		}
	}
	code, h, _ := gwGet(t, g.URL()+"/ipfs/"+cid, "")
	if code != http.StatusOK || h.Get("X-Ipfs-Path") != "/ipfs/"+cid {
		t.Fatalf("GET /ipfs/CID: %d, X-Ipfs-Path %q", code, h.Get("X-Ipfs-Path"))
	}
	// Writes are still refused.
	req, _ := http.NewRequest(http.MethodPost, g.URL()+"/ipfs/"+cid, nil)
	if code, _, _ := do(t, nil, req); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
}

// TestGatewaySite: a space published as a site is served by another
// node's gateway at /ipns/NAME/index.html, and a later put shows there.
func TestGatewaySite(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(_ int, cfg *nube.Config) { cfg.SiteDebounce = 50 * time.Millisecond }))
	ctx := nubetest.Context(t, time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a, b := c.Node(0), c.Node(1)
	sp, err := a.Spaces().Create(ctx, "www", space.Policy{Local: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "index.html", []byte("<h1>site</h1>")); err != nil {
		t.Fatal(err)
	}
	tok := api.NewToken()
	s, err := api.Listen(a, "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p, err := (&client.Client{URL: s.URL(), Token: tok}).SpacePublish(ctx, "www", "")
	if err != nil {
		t.Fatal(err)
	}
	g := listenGateway(t, b, api.GatewayConfig{})
	code, _, body := gwGet(t, g.URL()+"/ipns/"+p.Name+"/index.html", "")
	if code != http.StatusOK || body != "<h1>site</h1>" {
		t.Fatalf("GET /ipns/NAME/index.html: %d %q", code, body)
	}
	if err := sp.PutBytes(ctx, "index.html", []byte("<h1>site, again</h1>")); err != nil {
		t.Fatal(err)
	}
	// The gateway caches a name's path for its record's TTL (5 min), as
	// kubo's does; its record, which it does not cache, moves at once.
	nubetest.Eventually(t, ctx, func() bool {
		code, _, body := gwGet(t, g.URL()+"/ipns/"+p.Name+"?format=ipns-record", "")
		rec, err := ipns.UnmarshalRecord([]byte(body))
		if code != http.StatusOK || err != nil {
			return false
		}
		v, err := rec.Value()
		return err == nil && v.String() != "/ipfs/"+p.Root
	}, func() string { return "the site was not republished after a put" })
	r, err := b.Names().Resolve(ctx, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, body := gwGet(t, g.URL()+r.Path+"/index.html", ""); code != http.StatusOK || body != "<h1>site, again</h1>" {
		t.Fatalf("the new snapshot: %d %q", code, body)
	}
}
