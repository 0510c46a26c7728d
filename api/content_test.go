package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
)

// tarOf builds a tar stream of the given files (path -> contents).
func tarOf(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	tw.Close()
	return buf.Bytes()
}

// TestContentThroughAPI adds a file and a directory on one node's API and
// reads them back through the other node's API and gateway.
func TestContentThroughAPI(t *testing.T) {
	c, s, tok := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := &client.Client{URL: s.URL(), Token: tok}

	// kubo's CID for "Hello Mars!\n" (t0040-add-and-cat.sh).
	res, err := cl.Add(ctx, strings.NewReader("Hello Mars!\n"), "file", "mars.txt", true)
	if err != nil || res.CID != "bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4" {
		t.Fatalf("Add = %+v, %v", res, err)
	}
	// kubo's CID for the planets directory, --cid-version=1 (t0040).
	dir, err := cl.Add(ctx, bytes.NewReader(tarOf(t, map[string]string{
		"mars.txt": "Hello Mars!\n", "venus.txt": "Hello Venus!\n",
	})), "tar", "planets", true)
	if err != nil || dir.CID != "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi" {
		t.Fatalf("Add dir = %+v, %v", dir, err)
	}
	pins, err := cl.Pins(ctx)
	if err != nil || len(pins) != 2 {
		t.Fatalf("PinLs = %+v, %v", pins, err)
	}

	// The other node serves it through its API with no copy of its own.
	tok2 := api.NewToken()
	s2, err := api.Listen(c.Node(1), "127.0.0.1:0", tok2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	cl2 := &client.Client{URL: s2.URL(), Token: tok2}
	d, err := cl2.Cat(ctx, dir.CID+"/venus.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d)
	d.Close()
	if string(b) != "Hello Venus!\n" {
		t.Fatalf("cat = %q", b)
	}
	entries, err := cl2.Ls(ctx, dir.CID)
	if err != nil || len(entries) != 2 || entries[0].Name != "mars.txt" {
		t.Fatalf("Ls = %+v, %v", entries, err)
	}
	d, err = cl2.Get(ctx, dir.CID)
	if err != nil || d.Kind != "directory" {
		t.Fatalf("Get dir = %+v, %v", d, err)
	}
	tr := tar.NewReader(d)
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
	}
	d.Close()
	if strings.Join(names, ",") != "mars.txt,venus.txt" {
		t.Fatalf("tar of the directory holds %v", names)
	}

	// The gateway, on an address of its own, needs no token, sets the
	// Content-Type and ETag, and answers Range and If-None-Match.
	g2, err := api.ListenGateway(c.Node(1), "127.0.0.1:0", api.GatewayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	gw := g2.URL() + "/ipfs/" + dir.CID + "/mars.txt"
	resp, err := http.Get(gw)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "Hello Mars!\n" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		resp.Header.Get("Etag") != `"`+res.CID+`"` {
		t.Fatalf("gateway: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	req, _ := http.NewRequest("GET", gw, nil)
	req.Header.Set("Range", "bytes=6-9")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "Mars" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("GET", gw, nil)
	req.Header.Set("If-None-Match", `"`+res.CID+`"`)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if code, _ := get(t, g2.URL()+"/ipfs/"+dir.CID+"/pluto.txt", "", ""); code != http.StatusNotFound {
		t.Errorf("missing file: %d", code)
	}
	if code, body := get(t, g2.URL()+"/ipfs/not-a-cid", "", ""); code != http.StatusBadRequest || !strings.Contains(body, "invalid cid") {
		t.Errorf("bad CID: %d %q", code, body)
	}
	// The API needs the token for everything, and serves no content
	// through a gateway of its own.
	if code, _ := get(t, s2.URL()+"/api/v0/cat?arg="+res.CID, "", ""); code != http.StatusUnauthorized {
		t.Errorf("cat without a token: %d", code)
	}
	if code, _ := get(t, s2.URL()+"/ipfs/"+dir.CID+"/mars.txt", "", ""); code != http.StatusUnauthorized {
		t.Errorf("the API's origin served /ipfs/ without a token: %d", code)
	}
	if code, _ := get(t, s2.URL()+"/ipfs/"+dir.CID+"/mars.txt", "", "Bearer "+tok2); code != http.StatusNotFound {
		t.Errorf("the API's origin serves /ipfs/: %d", code)
	}

	// Unpin and GC on the first node remove the file's block; the
	// directory's pin keeps mars.txt (the same block) alive.
	if err := cl.Unpin(ctx, res.CID); err != nil {
		t.Fatal(err)
	}
	gc, err := cl.GC(ctx)
	if err != nil || gc.Removed != 0 || gc.Kept != 3 {
		t.Fatalf("GC = %+v, %v", gc, err)
	}
	if err := cl.Unpin(ctx, res.CID); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("second unpin: %v", err)
	}
	v, err := cl.Verify(ctx, false)
	if err != nil || v.Checked != 3 || len(v.Bad) != 0 {
		t.Fatalf("Verify = %+v, %v", v, err)
	}
}
