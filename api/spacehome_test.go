package api_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/api"
	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/errcode"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
)

// TestSpaceHomeAPI: a public space made through the API, its home handed
// to another node of the user (one that joined without the user key),
// and the errors of a bad peer and of a node that is home no more.
func TestSpaceHomeAPI(t *testing.T) {
	t.Parallel()
	c := nubetest.Cluster(t, 1)
	ctx := nubetest.Context(t, time.Minute)
	a := c.Node(0)
	inv, err := a.User().Invite(0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := nubetest.TestConfig()
	cfg.DataDir = t.TempDir()
	cfg.JoinUser = inv.String()
	for _, ad := range a.Addrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, ad.String()+"/p2p/"+a.ID().String())
	}
	b, err := nube.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tok := api.NewToken()
	s, err := api.Listen(a, "127.0.0.1:0", tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl := &client.Client{URL: s.URL(), Token: tok}
	info, err := cl.SpaceCreate(ctx, client.SpaceCreate{Name: "site", SpacePolicy: client.SpacePolicy{Local: true, Public: true}})
	if err != nil || !info.Policy.Public {
		t.Fatalf("create a public space: %+v, %v", info.Policy, err)
	}
	if _, err := cl.SpaceHome(ctx, "site", "not-a-peer"); !errors.Is(err, errcode.ErrBadRequest) {
		t.Fatalf("home to a bad peer ID: %v", err)
	}
	info, err = cl.SpaceHome(ctx, "site", b.ID().String())
	if err != nil || info.Home != b.ID().String() || !info.Policy.Public {
		t.Fatalf("home to B: %+v, %v", info, err)
	}
	if _, err := cl.SpaceHome(ctx, "site", b.ID().String()); !errors.Is(err, space.ErrNotHome) {
		t.Fatalf("home from a node that is home no more: %v", err)
	}
}
