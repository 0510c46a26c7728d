package job_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// TestPublishedJob: a job published on one node runs again by its name
// there and by its CID on another node, with its services pinned to the
// descriptors of publish time, and gives the same result as the job run
// from its spec.
func TestPublishedJob(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 3*time.Minute)
	a, b := c.Node(0), c.Node(1)
	publish(t, ctx, a, service.Price{}, "wordcount-map", "wordcount-reduce")
	files := corpus(7, 4, 20)
	in := spread(t, ctx, c, 0, files, around(2))
	spec := job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2}

	if _, err := a.Jobs().Publish(ctx, "Bad Name", spec); !errors.Is(err, job.ErrBadSpec) {
		t.Fatalf("a bad name: %v, want ErrBadSpec", err)
	}
	if _, err := a.Jobs().Publish(ctx, "wc", job.Spec{Input: in.String()}); !errors.Is(err, job.ErrBadSpec) {
		t.Fatalf("a spec with no map: %v, want ErrBadSpec", err)
	}
	doc, err := a.Jobs().Publish(ctx, "wc", spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Jobs().Published(ctx, "wc")
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.Services().Resolve(ctx, "wordcount-map")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "wc" || p.Spec.Map != d.ID().String() || p.Spec.Input != spec.Input {
		t.Fatalf("published %+v; want the map pinned to %s", p, d.ID())
	}
	if _, err := b.Jobs().Published(ctx, "wc"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("a name published on another node: %v, want ErrNotFound", err)
	}

	direct, err := a.Jobs().Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := direct.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName, err := a.Jobs().RunPublished(ctx, "wc")
	if err != nil {
		t.Fatal(err)
	}
	byCID, err := b.Jobs().RunPublished(ctx, doc.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []*job.Job{byName, byCID} {
		got, err := j.Wait(ctx)
		if err != nil {
			t.Fatalf("published job: %v\n%s", err, logText(j))
		}
		if !got.Equals(want) {
			t.Fatalf("the published job gave %s, the job from its spec %s", got, want)
		}
	}
	sameCounts(t, readResult(t, ctx, a, want), plainCount(files))
}
