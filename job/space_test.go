package job_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
	"github.com/nubecloud/nube/space"
)

// TestSpaceInput: a job over the values under a space's key prefix
// counts them and nothing else; the map runs read the space through the
// capability the job gives them.
func TestSpaceInput(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 3*time.Minute)
	a := c.Node(0)
	// A run that reads a space is not deterministic: the map is
	// published without that claim.
	if _, err := a.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(t, "wordcount-map")), service.PublishOptions{Name: "wc-map-space"}); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, a, service.Price{}, "wordcount-reduce")
	sp, err := a.Spaces().Create(ctx, "logs", space.Policy{On: []peer.ID{c.Node(1).ID()}})
	if err != nil {
		t.Fatal(err)
	}
	files := corpus(8, 3, 15)
	for i, f := range files {
		if err := sp.Put(ctx, "day/"+string(rune('a'+i)), bytes.NewReader(f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Put(ctx, "other", bytes.NewReader([]byte("not counted\n"))); err != nil {
		t.Fatal(err)
	}
	j, err := a.Jobs().Run(ctx, job.Spec{Input: "space:" + sp.ID() + "/day/", Map: "wc-map-space", Reduce: "wordcount-reduce", Reducers: 2})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	sameCounts(t, readResult(t, ctx, a, res), plainCount(files))
}
