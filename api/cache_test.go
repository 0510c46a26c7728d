package api_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nubetest"
)

// TestCacheAPI reads a space through the daemon's cache, then lists,
// shows and drops the cache.
func TestCacheAPI(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1)
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl := &client.Client{URL: s.URL(), Token: tok}
	ctx := nubetest.Context(t, time.Minute)
	info, err := cl.SpaceCreate(ctx, client.SpaceCreate{Name: "notes", SpacePolicy: client.SpacePolicy{Local: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SpacePut(ctx, "notes", "todo", strings.NewReader("milk")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d, err := cl.CacheGet(ctx, "notes", "todo")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(d)
		d.Close()
		if err != nil || string(b) != "milk" {
			t.Fatalf("cached get: %q, %v", b, err)
		}
	}
	if _, err := cl.CacheGet(ctx, "notes", "nothing"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("a missing key: %v, want not found", err)
	}
	list, err := cl.CachesList(ctx)
	if err != nil || len(list) != 1 || list[0].Name != info.ID {
		t.Fatalf("list: %+v, %v; want the cache of %s", list, err, info.ID)
	}
	st, err := cl.CacheStats(ctx, info.ID)
	if err != nil || st.Loads == 0 || st.Hits+st.Misses < 3 {
		t.Fatalf("stats: %+v, %v", st, err)
	}
	if err := cl.CacheDrop(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CacheStats(ctx, info.ID); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("stats of a dropped cache: %v, want not found", err)
	}
}
