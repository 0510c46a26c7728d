package nube_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestPublishSpace: a space published as a site resolves, from another
// node, to a UnixFS directory of its keys; a later put republishes it.
// (The gateway's half is api's TestGatewaySite.)
func TestPublishSpace(t *testing.T) {
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
	if err := sp.PutBytes(ctx, "index.html", []byte("<h1>one</h1>")); err != nil {
		t.Fatal(err)
	}
	if err := sp.PutBytes(ctx, "css/site.css", []byte("h1{}")); err != nil {
		t.Fatal(err)
	}
	p, err := a.Names().PublishSpace(ctx, "www", "")
	if err != nil {
		t.Fatal(err)
	}
	read := func(path string) string {
		t.Helper()
		r, err := b.Names().Resolve(ctx, p.Name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := b.Content().Get(ctx, r.Path[len("/ipfs/"):]+"/"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		body, _ := io.ReadAll(f)
		return string(body)
	}
	if got := read("index.html"); got != "<h1>one</h1>" {
		t.Fatalf("index.html: %q", got)
	}
	if got := read("css/site.css"); got != "h1{}" {
		t.Fatalf("css/site.css: %q", got)
	}
	if err := sp.PutBytes(ctx, "index.html", []byte("<h1>two</h1>")); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		r, err := b.Names().Resolve(ctx, p.Name)
		return err == nil && r.Path != "/ipfs/"+p.Root
	}, func() string { return "the name never moved to a new snapshot after a put" })
	if got := read("index.html"); got != "<h1>two</h1>" {
		t.Fatalf("index.html after the put: %q", got)
	}
	// A key that cannot be a path is refused, naming it.
	if err := sp.PutBytes(ctx, "a//b", []byte("x")); err == nil {
		if _, err := a.Names().PublishSpace(ctx, "www", ""); !errors.Is(err, content.ErrBadName) {
			t.Fatalf("publish a space with key a//b: %v", err)
		}
	}
}
