package job_test

import (
	"context"
	"fmt"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/job"
)

// A word count over a directory's files, with four reducers, a budget
// of 50 credits, and a tenth of the maps verified on a second node.
func ExampleManager_Run() {
	ctx := context.Background()
	node, err := nube.Start(ctx, nube.Config{})
	if err != nil {
		panic(err)
	}
	defer node.Close()
	j, err := node.Jobs().Run(ctx, job.Spec{
		Input:          "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", // a directory
		Map:            "wordcount-map",
		Reduce:         "wordcount-reduce",
		Reducers:       4,
		Budget:         50_000,
		VerifyFraction: 0.1,
	})
	if err != nil {
		panic(err)
	}
	result, err := j.Wait(ctx)
	if err != nil {
		panic(err)
	}
	p := j.Progress()
	fmt.Printf("%s: %d tasks on %d nodes, %d of %d input bytes read where they were\n",
		result, p.Tasks, p.Nodes, p.BytesLocal, p.BytesLocal+p.BytesFetched)
}
