//go:build unix

package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/nubetest"
)

// TestHandOver has a node read the file it adds, and write the file a
// cat or get gives, through files handed over on its socket; and checks
// what happens when that cannot or should not be done.
func TestHandOver(t *testing.T) {
	c := nubetest.Cluster(t, 1, nubetest.WithDataDirs())
	dir := c.Node(0).Config().DataDir
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := client.WriteEndpoint(dir, s.URL(), tok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cl.CanHandOver() {
		t.Fatalf("no socket to hand files over on in %s", dir)
	}
	plain := &client.Client{URL: s.URL(), Token: tok} // sends the bytes
	data := bytes.Repeat([]byte("handed over, not sent\n"), 40000)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, append(data, "and not this"...), 0o600); err != nil {
		t.Fatal(err)
	}

	// Add: the node reads Size bytes of the file itself.
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := cl.Add(ctx, &client.Sized{Reader: f, Size: int64(len(data))}, "file", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != int64(len(data)) {
		t.Errorf("after the add the file's offset is %d, want %d: the node did not read it", off, len(data))
	}
	want, err := plain.Add(ctx, bytes.NewReader(data), "file", "", true)
	if err != nil || want.CID != res.CID || res.Bytes != int64(len(data)) {
		t.Fatalf("handed over: %+v; sent: %+v, %v", res, want, err)
	}

	// Cat and get: the node writes the file, after what the file holds.
	for _, get := range []bool{false, true} {
		out, err := os.OpenFile(filepath.Join(t.TempDir(), "out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("before\n")
		var d *client.Download
		if get {
			d, err = cl.GetTo(ctx, res.CID, out)
		} else {
			d, err = cl.CatTo(ctx, res.CID, out)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !d.HandedOver || d.Size != int64(len(data)) {
			t.Fatalf("get %v: download %+v", get, d)
		}
		if b, err := io.ReadAll(d); err != nil || len(b) != 0 {
			t.Fatalf("get %v: the report read as %q, %v", get, b, err)
		}
		d.Close()
		out.Close()
		if got, _ := os.ReadFile(out.Name()); !bytes.Equal(got, append([]byte("before\n"), data...)) {
			t.Fatalf("get %v: the file holds %d bytes, want %d", get, len(got), len(data)+7)
		}
	}

	// A file the node cannot write: the report says why.
	ro, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	d, err := cl.CatTo(ctx, res.CID, ro)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(d)
	d.Close()
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusInternalServerError || !strings.Contains(apiErr.Message, "bad file descriptor") {
		t.Fatalf("cat into a read-only file: %v, want the node's write error", err)
	}

	// A directory comes as a tar stream, and the file is left alone.
	tree, err := plain.Add(ctx, bytes.NewReader(tarOf(t, map[string]string{"a.txt": "a"})), "tar", "", true)
	if err != nil {
		t.Fatal(err)
	}
	part, err := os.Create(filepath.Join(t.TempDir(), "part"))
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	d, err = cl.GetTo(ctx, tree.CID, part)
	if err != nil || d.Kind != "directory" || d.HandedOver {
		t.Fatalf("GetTo a directory: %+v, %v", d, err)
	}
	if b, err := io.ReadAll(d); err != nil || !bytes.Contains(b, []byte("a.txt")) {
		t.Fatalf("GetTo a directory: %d bytes of tar, %v", len(b), err)
	}
	d.Close()
	if fi, _ := part.Stat(); fi.Size() != 0 {
		t.Fatalf("GetTo a directory wrote %d bytes into the file", fi.Size())
	}

	// A client that cannot hand over says so, for its caller to send.
	if _, err := plain.CatTo(ctx, res.CID, part); !errors.Is(err, client.ErrNoHandoff) {
		t.Fatalf("CatTo on a client with no socket: %v, want ErrNoHandoff", err)
	}
	// A handle nobody gave is refused.
	code, body := get(t, s.URL()+"/api/v0/cat?arg="+res.CID+"&to=0123", "", "Bearer "+tok)
	if code != http.StatusBadRequest || !strings.Contains(body, "no file waits under that handle") {
		t.Fatalf("a made-up handle: %d %s", code, body)
	}
	// Close removes the socket.
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, client.HandoffFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the socket after Close: %v", err)
	}
}
