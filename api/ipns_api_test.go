package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/names"
)

// TestNamesThroughAPI: publish, resolve, keys and raw records through the
// client, with their errors' kinds.
func TestNamesThroughAPI(t *testing.T) {
	c, s, tok := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := &client.Client{URL: s.URL(), Token: tok}
	root, err := cl.Add(ctx, strings.NewReader("named"), "file", "", true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cl.NamePublish(ctx, client.NamePublishRequest{Value: root.CID, TTL: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	if p.TTL != "1m0s" || p.Value != "/ipfs/"+root.CID {
		t.Fatalf("published %+v", p)
	}
	r, err := cl.NameResolve(ctx, "/ipns/"+p.Name)
	if err != nil || r.Path != "/ipfs/"+root.CID {
		t.Fatalf("resolved %+v %v", r, err)
	}
	keys, err := cl.KeyList(ctx)
	if err != nil || len(keys) != 1 || keys[0].Name != names.Self || keys[0].ID != p.Name {
		t.Fatalf("keys %+v %v", keys, err)
	}
	k, err := cl.KeyGen(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.KeyGen(ctx, "site"); !errors.Is(err, names.ErrExists) {
		t.Fatalf("gen twice: %v", err)
	}
	if _, err := cl.KeyGen(ctx, "../x"); !errors.Is(err, names.ErrBadName) {
		t.Fatalf("gen a bad name: %v", err)
	}
	if _, err := cl.NamePublish(ctx, client.NamePublishRequest{Key: "site", Value: root.CID, Lifetime: "soon"}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("a bad lifetime: %v", err)
	}
	// A record read from node 0 is stored on node 1 (as kubo's routing
	// get|put), and a corrupt one is refused.
	rec, err := cl.RoutingGet(ctx, "/ipns/"+p.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Node(1).Names().Put(ctx, p.Name, rec); err != nil {
		t.Fatal(err)
	}
	if err := cl.RoutingPut(ctx, "/ipns/"+k.ID, rec); !errors.Is(err, names.ErrBadRecord) {
		t.Fatalf("put a record under another name: %v", err)
	}
	if err := cl.RoutingPut(ctx, "/ipns/"+p.Name, rec); err != nil {
		t.Fatal(err)
	}
	if err := cl.RoutingPut(ctx, "/ipfs/"+root.CID, rec); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("put under /ipfs/: %v", err)
	}
	if _, err := cl.NameResolve(ctx, k.ID); !errors.Is(err, names.ErrNotFound) {
		t.Fatalf("resolve a name never published: %v", err)
	}
	if err := cl.KeyRemove(ctx, "site"); err != nil {
		t.Fatal(err)
	}
	if err := cl.KeyRemove(ctx, "site"); !errors.Is(err, names.ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}
