package api_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

// TestGroupAPI drives a group of one through the Go client of the API:
// create, put, get, compare-and-swap, list, rm, status; and the errors a
// client tells apart with errors.Is.
func TestGroupAPI(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1, nubetest.WithConfig(func(_ int, cfg *nube.Config) { cfg.GroupHeartbeat = 200 * time.Millisecond }))
	tok := api.NewToken()
	s, err := api.Listen(c.Node(0), "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl := &client.Client{URL: s.URL(), Token: tok}
	ctx := nubetest.Context(t, time.Minute)

	if _, err := cl.GroupGet(ctx, "jobs", "k"); !errors.Is(err, group.ErrNotFound) {
		t.Fatalf("a group the node lacks: %v, want ErrNotFound", err)
	}
	if _, err := cl.GroupCreate(ctx, "Bad Name", nil); !errors.Is(err, group.ErrBadName) {
		t.Fatalf("a bad name: %v, want ErrBadName", err)
	}
	if _, err := cl.GroupCreate(ctx, "jobs", []string{"not-a-peer"}); !errors.Is(err, errcode.ErrBadRequest) {
		t.Fatalf("a bad member: %v", err)
	}
	if _, err := cl.GroupCreate(ctx, "jobs", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GroupCreate(ctx, "jobs", nil); err == nil {
		t.Fatal("created the same group twice")
	}
	if _, err := cl.GroupPut(ctx, "jobs", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if e, err := cl.GroupGet(ctx, "jobs", "k"); err != nil || string(e.Value) != "v" || e.Version == 0 {
		t.Fatalf("get: %+v, %v", e, err)
	}
	if r, err := cl.GroupCompareAndSwap(ctx, "jobs", "k", []byte("v"), []byte("w")); err != nil || !r.OK {
		t.Fatalf("cas: %+v, %v", r, err)
	}
	if r, err := cl.GroupCompareAndSwap(ctx, "jobs", "k", nil, []byte("x")); err != nil || r.OK {
		t.Fatalf("cas of a present key as absent: %+v, %v", r, err)
	}
	if es, err := cl.GroupList(ctx, "jobs", ""); err != nil || len(es) != 1 || string(es[0].Value) != "w" {
		t.Fatalf("list: %+v, %v", es, err)
	}
	if r, err := cl.GroupDelete(ctx, "jobs", "k"); err != nil || !r.OK {
		t.Fatalf("rm: %+v, %v", r, err)
	}
	if _, err := cl.GroupGet(ctx, "jobs", "k"); !errors.Is(err, group.ErrNotFound) {
		t.Fatalf("a deleted key: %v, want ErrNotFound", err)
	}
	if _, err := cl.GroupPut(ctx, "jobs", "big", make([]byte, group.MaxValue+1)); err == nil {
		t.Fatal("an oversized value was stored")
	}
	st, err := cl.GroupStatus(ctx, "jobs")
	if err != nil || st.State != "leader" || len(st.Members) != 1 || st.Members[0].State != "leader" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if names, err := cl.GroupsList(ctx); err != nil || len(names) != 1 || names[0] != "jobs" {
		t.Fatalf("list: %v, %v", names, err)
	}
	// The old paths for the groups still answer.
	for _, old := range []string{"/api/v0/group/names", "/api/v0/group/ls"} {
		var names []string
		if err := cl.Call(ctx, http.MethodGet, old, nil, &names); err != nil || len(names) != 1 || names[0] != "jobs" {
			t.Fatalf("%s: %v, %v", old, names, err)
		}
	}
}

// TestGroupJoinAnswersCaughtUp joins a group through the API: the status
// it answers is the group's once this node caught up through the leader
// (a leader, a term, both members), not that of the instant it asked (no
// leader, term 0, no members).
func TestGroupJoinAnswersCaughtUp(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 2, nubetest.WithConfig(func(_ int, cfg *nube.Config) { cfg.GroupHeartbeat = 200 * time.Millisecond }))
	ctx := nubetest.Context(t, time.Minute)
	a, b := c.Node(0), c.Node(1)
	if _, err := a.Groups().Open(ctx, "team", group.Options{Members: []peer.ID{b.ID()}}); err != nil {
		t.Fatal(err)
	}
	tok := api.NewToken()
	s, err := api.Listen(b, "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl := &client.Client{URL: s.URL(), Token: tok}
	st, err := cl.GroupJoin(ctx, "team", a.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader == "" || st.Term == 0 || len(st.Members) != 2 || st.Applied == 0 {
		t.Fatalf("status answered by join: %+v", st)
	}
}
