package api_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestSpaceAPI drives spaces through the Go client of two daemons' APIs:
// create, put, get, ls, info, grant, watch, migrate, rm, and the errors a
// client tells apart with errors.Is.
func TestSpaceAPI(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 2)
	var cls []*client.Client
	for i := range 2 {
		tok := api.NewToken()
		s, err := api.Listen(c.Node(i), "127.0.0.1:0", tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cls = append(cls, &client.Client{URL: s.URL(), Token: tok})
	}
	a, b := cls[0], cls[1]
	ctx := nubetest.Context(t, time.Minute)

	if _, err := a.SpaceCreate(ctx, client.SpaceCreate{Name: "bad name"}); !errors.Is(err, space.ErrBadName) {
		t.Fatalf("a bad name: %v, want ErrBadName", err)
	}
	if _, err := a.SpaceCreate(ctx, client.SpaceCreate{Name: "x", SpacePolicy: client.SpacePolicy{Local: true, Replicas: 2}}); !errors.Is(err, space.ErrBadPolicy) {
		t.Fatalf("a contradictory policy: %v, want ErrBadPolicy", err)
	}
	info, err := a.SpaceCreate(ctx, client.SpaceCreate{Name: "docs", SpacePolicy: client.SpacePolicy{On: []string{c.Node(1).ID().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Holders) != 1 || info.Holders[0].Peer != c.Node(1).ID().String() || info.Holders[0].State != "ok" {
		t.Fatalf("create: %+v", info)
	}
	// Watch from the start, then write.
	events := make(chan client.SpaceEvent, 8)
	go func() {
		defer close(events)
		for ev, err := range a.SpaceWatch(ctx, "docs") {
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	if ev := <-events; ev.Op != "watching" {
		t.Fatalf("first watch line: %+v", ev)
	}
	val := bytes.Repeat([]byte("a line of a document\n"), 5000)
	if err := a.SpacePut(ctx, "docs", "a/readme", bytes.NewReader(val)); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Op != "put" || ev.Key != "a/readme" {
		t.Fatalf("watch: %+v", ev)
	}
	d, err := a.SpaceGet(ctx, "docs", "a/readme")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	d.Close()
	if err != nil || !bytes.Equal(got, val) || d.Size != int64(len(val)) {
		t.Fatalf("get: %d bytes (size %d), %v", len(got), d.Size, err)
	}
	ref := c.Node(0).UserID().String() + "/docs"
	if _, err := b.SpaceGet(ctx, ref, "a/readme"); !errors.Is(err, space.ErrNotAuthorised) {
		t.Fatalf("a read without a grant: %v, want ErrNotAuthorised", err)
	}
	if _, err := a.SpaceGet(ctx, "docs", "nope"); !errors.Is(err, space.ErrNotFound) {
		t.Fatalf("a missing key: %v, want ErrNotFound", err)
	}
	if err := a.SpacePut(ctx, "docs", strings.Repeat("k", space.MaxKeyLen+1), strings.NewReader("v")); !errors.Is(err, space.ErrTooLarge) {
		t.Fatalf("an oversized key: %v, want ErrTooLarge", err)
	}
	g, err := a.SpaceGrant(ctx, client.SpaceGrantRequest{Space: "docs", User: c.Node(1).UserID().String(), Write: true})
	if err != nil || !strings.HasPrefix(g.Token, "nubegrant1:") || g.Rights != "read,write" {
		t.Fatalf("grant: %+v, %v", g, err)
	}
	if err := b.SpacePut(ctx, ref, "b/notes", strings.NewReader("from b")); err != nil {
		t.Fatal(err)
	}
	items, err := b.SpaceList(ctx, ref, "")
	if err != nil || len(items) != 2 || items[0].Key != "a/readme" || items[1].Key != "b/notes" {
		t.Fatalf("list: %+v, %v", items, err)
	}
	// space/ls, the old path for the keys, still answers.
	var old []client.SpaceItem
	if err := b.Call(ctx, http.MethodGet, "/api/v0/space/ls?"+url.Values{"space": {ref}}.Encode(), nil, &old); err != nil || len(old) != 2 {
		t.Fatalf("space/ls: %+v, %v", old, err)
	}
	hs, err := b.SpaceHoldings(ctx)
	if err != nil || len(hs) != 1 || hs[0].Space != ref || hs[0].Keys != 2 {
		t.Fatalf("holdings: %+v, %v", hs, err)
	}
	var last client.SpaceProgress
	for p, err := range a.SpaceMigrate(ctx, client.SpaceMigrate{Space: "docs", SpacePolicy: client.SpacePolicy{Local: true}}) {
		if err != nil {
			t.Fatal(err)
		}
		last = p
	}
	if !last.Done || last.Error != "" {
		t.Fatalf("migrate ended with %+v", last)
	}
	if hs, err := b.SpaceHoldings(ctx); err != nil || len(hs) != 0 {
		t.Fatalf("holdings after migrating away: %+v, %v", hs, err)
	}
	if err := a.SpaceRevoke(ctx, "docs", g.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.SpacePut(ctx, ref, "b/more", strings.NewReader("x")); !errors.Is(err, space.ErrNotAuthorised) {
		t.Fatalf("a write after revocation: %v", err)
	}
	if err := a.SpaceDelete(ctx, "docs", "b/notes"); err != nil {
		t.Fatal(err)
	}
	if err := a.SpaceDelete(ctx, "docs", "b/notes"); !errors.Is(err, space.ErrNotFound) {
		t.Fatalf("rm of a missing key: %v", err)
	}
	list, err := a.SpacesList(ctx)
	if err != nil || len(list) != 1 || list[0].Keys != 1 || list[0].Role != "home" {
		t.Fatalf("list: %+v, %v", list, err)
	}
}
