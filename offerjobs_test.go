package nube_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/wasm"
)

// TestOfferJobs: a node that gives others one run at a time runs two
// strangers' jobs one after the other, though it has two slots.
func TestOfferJobs(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithConfig(func(i int, cfg *nube.Config) {
		if i == 0 {
			cfg.ComputeSlots, cfg.Offer.Jobs = 2, 1
		}
	}))
	ctx := nubetest.Context(t, 6*time.Minute)
	provider := c.Node(0)
	d, err := provider.Services().Publish(ctx, bytes.NewReader(wasmtest.Module(t, "loop")), service.PublishOptions{Name: "spin"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, caller := range []*nube.Node{c.Node(1), c.Node(2)} {
		wg.Go(func() {
			// The loop never ends: each run ends at its time limit.
			_, err := caller.Service(d.ID().String()).On(provider.ID()).WithLimits(wasm.Limits{Timeout: 300 * time.Millisecond}).Call(ctx, nil)
			if err == nil {
				t.Error("a run of a module that never ends succeeded")
			}
		})
	}
	wg.Wait()
	runs := provider.Services().Runs()
	if len(runs) != 2 {
		t.Fatalf("%d runs recorded, want 2", len(runs))
	}
	// Records are made at each run's end; a run starts Usage.Wall before.
	first, second := runs[0], runs[1]
	if start := second.At.Add(-second.Usage.Wall); start.Before(first.At) {
		t.Fatalf("two runs for others overlapped with a budget of one: the second started %v before the first ended", first.At.Sub(start))
	}
}
