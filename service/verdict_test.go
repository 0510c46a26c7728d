package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// TestVerifyPaysTheMajority runs a priced deterministic service on three
// providers of three users, one of which lies: the two that agree settle
// their runs, the liar's run is never settled (its reserve returns to the
// caller when it expires).
func TestVerifyPaysTheMajority(t *testing.T) {
	collected := make([]atomic.Int32, 4)
	pays := make([]*fakePay, 4)
	for i := range pays {
		pays[i] = &fakePay{collect: func(context.Context, []byte) error { collected[i].Add(1); return nil }}
	}
	ms, hs, _ := payingManagers(t, "", pays...)
	ctx := nubetest.Context(t, 3*time.Minute)
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

// TestJudgedPaysWhomItIsTold runs a priced service twice through a
// Judged pipeline, as a job's task and its backup copy: the run judged
// paid is settled, the other's hold is given back and never settled.
func TestJudgedPaysWhomItIsTold(t *testing.T) {
	var collected atomic.Int32
	pays := []*fakePay{{}, {collect: func(context.Context, []byte) error { collected.Add(1); return nil }}}
	ms, hs, _ := payingManagers(t, "", pays...)
	ctx := nubetest.Context(t, 3*time.Minute)
	d, err := ms[1].Publish(ctx, bytes.NewReader(wasmtest.Module(t, "upper")), service.PublishOptions{Name: "judged", Price: service.Price{PerCall: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	p := ms[0].Service(d.ID().String()).On(hs[1].ID()).Judged()
	var runs []service.Result
	for range 2 {
		for _, r := range p.CallN(ctx, 1, []byte("judge me")) {
			if r.Err != nil || string(r.Output) != "JUDGE ME" || len(r.Proof) == 0 {
				t.Fatalf("judged run: %q, %v (proof of %d bytes)", r.Output, r.Err, len(r.Proof))
			}
			runs = append(runs, r)
		}
	}
	if n := collected.Load(); n != 0 {
		t.Fatalf("%d judged runs settled before their verdict", n)
	}
	if err := p.Judge(ctx, runs[0], false); err != nil {
		t.Fatal(err)
	}
	if err := p.Judge(ctx, runs[1], true); err != nil {
		t.Fatal(err)
	}
	nubetest.Eventually(t, ctx, func() bool { return collected.Load() == 1 && pays[1].released.Load() == 1 }, func() string {
		return fmt.Sprintf("%d settled, %d given back; want 1 and 1", collected.Load(), pays[1].released.Load())
	})
}
