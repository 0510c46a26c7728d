package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/dirtar"
	"github.com/nubecloud/nube/nubetest"
)

// TestHostileNamesThroughAPI imports two directories with hostile names:
// one holds a link named ".." at its top, the other a subdirectory "A"
// with a link named "../a" (which a tar stream would make "a") to a
// symlink, beside a real directory "a". The API's ls and get, and the
// gateway's listing and tar, refuse them with an error that names the bad
// name, and no stream carries an entry for it.
func TestHostileNamesThroughAPI(t *testing.T) {
	c, s, tok := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := &client.Client{URL: s.URL(), Token: tok}
	d := nubetest.NewDAG(t)
	top := d.Dir("..", d.Dir("pwned", d.File("x")))
	deep := d.Dir("A", d.Dir("../a", d.Symlink("/home")), "a", d.DirMode(0o777, "pwned", d.File("x")))
	for _, car := range [][]byte{d.CAR(top), d.CAR(deep)} {
		if _, err := cl.DagImport(ctx, bytes.NewReader(car), "", true); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, root, dir, bad string
	}{
		{"a link named .. at the top", top.Cid().String(), "", `".."`},
		{"a link named ../a deeper", deep.Cid().String(), "/A", `"../a"`},
	}
	g := listenGateway(t, c.Node(0), api.GatewayConfig{})
	for _, tc := range cases {
		// ls of the directory that holds the name.
		if _, err := cl.Ls(ctx, tc.root+tc.dir); !errors.Is(err, content.ErrBadName) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("%s: ls: %v, want %v naming %s", tc.name, err, content.ErrBadName, tc.bad)
		}
		// get of the whole: the stream ends with the node's error.
		dl, err := cl.Get(ctx, tc.root)
		if err != nil {
			t.Fatalf("%s: get: %v", tc.name, err)
		}
		var names []string
		err = dirtar.Read(dl, func(e dirtar.Entry, _ io.Reader) error {
			names = append(names, e.Name)
			return nil
		})
		dl.Close()
		if !errors.Is(err, content.ErrBadName) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("%s: get: %v (entries %q), want %v naming %s", tc.name, err, names, content.ErrBadName, tc.bad)
		}
		for _, n := range names {
			if n == "a" || strings.Contains(n, "pwned") {
				t.Errorf("%s: get: the stream holds %q", tc.name, n)
			}
		}

		// The gateway's listing of the directory holding it.
		code, _, body := do(t, nil, mustRequest(t, g.URL()+"/ipfs/"+tc.root+tc.dir+"/"))
		if code != http.StatusBadRequest || !strings.Contains(body, "bad name") {
			t.Errorf("%s: gateway listing: %d %.300q", tc.name, code, body)
		}
		// Its tar of the whole: refused up front where the root holds
		// the name, cut short with the error where a subdirectory does.
		code, _, body = do(t, nil, mustRequest(t, g.URL()+"/ipfs/"+tc.root+"?format=tar"))
		if !strings.Contains(body, "bad name") {
			t.Errorf("%s: gateway tar: %d, says nothing of a bad name", tc.name, code)
		}
		if tc.dir == "" && code != http.StatusBadRequest {
			t.Errorf("%s: gateway tar: %d, want 400", tc.name, code)
		}
		tr := tar.NewReader(strings.NewReader(body))
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			if h.Typeflag == tar.TypeSymlink || strings.Contains(h.Name, "..") || strings.HasSuffix(strings.TrimSuffix(h.Name, "/"), "/a") {
				t.Errorf("%s: gateway tar holds %q (type %c)", tc.name, h.Name, h.Typeflag)
			}
		}
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
