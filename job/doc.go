// Package job runs map and reduce over content where it lives: one call
// splits an input spread over many nodes, runs a map service beside each
// split, shuffles the map outputs into R partitions and runs a reduce
// service on each, and gives back the result as a directory CID whose
// files hold key<TAB>value lines.
//
//	j, err := node.Jobs().Run(ctx, job.Spec{
//		Input:    dirCID.String(),
//		Map:      "wordcount-map",
//		Reduce:   "wordcount-reduce",
//		Reducers: 4,
//	})
//	result, err := j.Wait(ctx) // the result directory's CID
//
// The node that calls Run is the job's coordinator. It finds which nodes
// hold each split's blocks and runs each map task on one of them (a run
// near its data, service.Pipeline.On), the others by load; a map module
// partitions its records and adds each partition as content on the node
// that ran it. Before a reduce runs, its node fetches the reduce's parts
// from every mapper in parallel (the content layer's fetcher, a few parts
// at a time), so that the reduce module reads each from its own store. The map/reduce contract, what a module
// reads and writes, is in MAPREDUCE.md at the repository's top: any
// language that targets the host API nube_v1 can write one.
//
// What a job guarantees:
//
//   - A task that fails or times out runs again on another node, never on
//     one that failed it, up to Spec.MaxAttempts times; then the job fails
//     with ErrTaskFailed naming the task and the nodes.
//   - A mapper lost after its map finished but before every reducer read
//     its outputs has those maps run again elsewhere.
//   - Near the end of a phase, a task running much longer than its peers
//     gets a backup copy on another node; the first to finish wins and the
//     other is cancelled.
//   - The coordinator writes each finished task to disk (Config.Dir)
//     before it counts it. A coordinator that is killed and started again
//     on the same data dir resumes its unfinished jobs from the tasks
//     done; the result is the same CID. A verified task's winning run
//     whose pay waited for its comparison is kept with the task (its
//     call, node and cost) and judged when the comparison ends after the
//     restart, so a run whose output is in the result is paid (if the
//     runner still waits: its reserve expires after a while).
//   - Each task is a priced run (when its service has a price) paid
//     through the ledger's escrow, and paid only to the run that won: a
//     backup or retry that lost is told it is not paid, and its reserve
//     goes back. A job never starts a task whose most possible cost would
//     take what it has paid and reserved past Spec.Budget; when no task
//     fits it stops with ErrBudget. A run whose pay waits (a verified
//     task's) stays reserved at its most until it is judged, so the job
//     never spends past Spec.Budget. Progress.Spent counts the pays
//     told; one told as the job ends (or the node closes) is counted
//     only once its runner has the word.
//   - With Spec.VerifyFraction F, that share of map tasks (of a service
//     declared deterministic) runs again on another node and the outputs
//     are compared; a disagreement is settled by a third run, and the
//     node in the minority is named in Status.Disagreements, not paid,
//     and given no more of the job's tasks. When no two runs agree, the
//     job fails and none is paid. A job that ends before a task's
//     comparison pays its winning run (its output was kept); one that
//     ends with two differing runs awaiting the third pays neither. A
//     verified map taken back because its mapper was lost stops its
//     verify run, and neither run is paid nor held against the verifier.
//   - An input nobody holds fails the job within Spec.Timeout with
//     ErrInputNotFound naming the CID.
//   - Cancel stops every run of the job and tells each runner it is not
//     paid, so no escrow is left held on the job's behalf beyond the
//     runner's answer.
//
// A job's spec is a plain value (JSON), so a program can keep or send it
// and run the same job again. Manager.Publish makes it a published value,
// as service.Pipeline.Publish does a pipeline: the spec goes into content
// as a small document, its map and reduce services pinned to the
// descriptor CIDs their names resolve to then, and Manager.RunPublished
// runs it from that CID on any node that can fetch it (or by its name on
// the node that published it: names are not announced to other nodes).
//
// Where it is weaker than it might be: a map of a split that does not
// start its file reads the file from its start to skip there (the host
// API has no seek yet), so Split.Size suits files a few times the split
// size, not one huge file; a part the reducer's node could not fetch
// ahead is fetched again by the module's own read, one after the other;
// a file counts as
// held by a node when it is one block, pinned there, or under the pinned
// input, so a node holding a file only inside another pinned directory
// is not seen as its holder; a map waits a few seconds at most for a busy
// holder before it runs elsewhere and reads its split from afar.
package job
