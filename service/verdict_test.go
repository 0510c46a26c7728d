package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/hosttest"
	"github.com/nubecloud/nube/internal/identity"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
)

// TestVerifyPaysTheMajority runs a priced deterministic service on three
// providers of three users, one of which lies: the two that agree settle
// their runs, the liar's run is never settled (its reserve returns to the
// caller when it expires).
func TestVerifyPaysTheMajority(t *testing.T) {
	hs := hosttest.Hosts(t, 4)
	ctx := nubetest.Context(t, 3*time.Minute)
	var ms []*service.Manager
	collected := make([]atomic.Int32, 4)
	for i, h := range hs {
		st, err := content.OpenStore("")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := content.New(ctx, content.Config{Host: h, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := remote.New(ctx, remote.Config{Host: h})
		if err != nil {
			t.Fatal(err)
		}
		key := identity.Generate()
		pay := &fakePay{collect: func(context.Context, []byte) error { collected[i].Add(1); return nil }}
		if pay.user, err = identity.ID(key.Public().(ed25519.PublicKey)); err != nil {
			t.Fatal(err)
		}
		m, err := service.New(ctx, service.Config{Host: h, Content: cs, Remote: ep, UserKey: key, Payments: pay,
			Interpreter: nubetest.TestConfig().ComputeInterpreter})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); ep.Close(); cs.Close(); st.Close() })
		ms = append(ms, m)
	}
	d, err := ms[1].Publish(ctx, bytes.NewReader(wasmtest.Module(t, "upper")), service.PublishOptions{Name: "det-priced",
		Price: service.Price{PerCall: 1000}, Deterministic: true})
	if err != nil {
		t.Fatal(err)
	}
	liar := 3
	service.TamperWith(ms[liar], func(b []byte) []byte { return append(b, '?') })
	providers := []peer.ID{hs[1].ID(), hs[2].ID(), hs[3].ID()}
	_, err = ms[0].Service(d.ID().String()).On(providers...).Verify(ctx, 3, []byte("pay the honest"))
	var ve *service.VerifyError
	if !errors.As(err, &ve) || len(ve.Minority) != 1 || ve.Minority[0] != hs[liar].ID() {
		t.Fatalf("verify: %v, want the liar alone in the minority", err)
	}
	nubetest.Eventually(t, ctx, func() bool { return collected[1].Load() == 1 && collected[2].Load() == 1 }, func() string {
		return "the two honest providers did not both settle their runs"
	})
	if n := collected[liar].Load(); n != 0 {
		t.Fatalf("the liar settled %d runs", n)
	}
	// And when all agree, all are paid.
	service.TamperWith(ms[liar], nil)
	if _, err := ms[0].Service(d.ID().String()).On(providers...).Verify(ctx, 3, []byte("all agree")); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool {
		return collected[1].Load() == 2 && collected[2].Load() == 2 && collected[liar].Load() == 1
	}, func() string { return "not every provider settled its run when all agreed" })
}
