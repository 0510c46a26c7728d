package job_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// until polls cond until it holds or the job ends; it reports whether
// cond held.
func until(t *testing.T, ctx context.Context, j *job.Job, cond func() bool) bool {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-j.Done():
			return cond()
		case <-ctx.Done():
			t.Fatalf("waiting on the job: %v\n%s", ctx.Err(), logText(j))
		case <-tick.C:
		}
	}
	return true
}

// TestWordCountFaults: the word count with one mapper killed mid-job, the
// coordinator killed and restarted, and one reducer killed, gives the
// plain Go count every time. Short: one seed; long: five.
func TestWordCountFaults(t *testing.T) {
	seeds := 1
	if !testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) { faults(t, uint64(seed)) })
	}
}

func faults(t *testing.T, seed uint64) {
	c := nubetest.Cluster(t, 4, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, 5*time.Minute)
	publish(t, ctx, c.Node(0), service.Price{}, "wordcount-map", "wordcount-reduce")
	files := corpus(seed+10, 10, 30)
	// Three copies of each file: two nodes lost leave one.
	in := spread(t, ctx, c, 0, files, func(i int) []int { return []int{i % 4, (i + 1) % 4, (i + 2) % 4} })
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 3,
		Split: job.Split{Size: 400}, Nodes: c.IDs()[1:]}) // the coordinator only coordinates: every task's node can be killed
	if err != nil {
		t.Fatal(err)
	}
	id := j.ID()
	ids := map[peer.ID]int{}
	for i := range 4 {
		ids[c.Node(i).ID()] = i
	}

	// A mapper killed once it has started a map.
	mapper := -1
	until(t, ctx, j, func() bool {
		for _, l := range j.Logs() {
			if i := ids[l.Node]; i != 0 && strings.HasPrefix(l.Task, "map-") && strings.HasSuffix(l.Msg, "started") {
				mapper = i
				return true
			}
		}
		return false
	})
	if mapper < 0 {
		t.Fatalf("no map ran off the coordinator\n%s", logText(j))
	}
	c.Kill(mapper)
	t.Logf("killed mapper %d at %+v", mapper, j.Progress())

	// The coordinator killed once a few more tasks are done, and
	// started again on its data dir.
	until(t, ctx, j, func() bool { return j.Progress().Done >= 4 })
	done := j.Progress().Done
	c.Crash(0)
	n0, err := c.Restart(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		if i != mapper {
			if err := c.Connect(ctx, 0, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if j, err = n0.Jobs().Get(id); err != nil {
		t.Fatalf("the restarted coordinator does not know job %s: %v", id, err)
	}
	t.Logf("coordinator restarted with %d tasks done (%d before)", j.Progress().Done, done)
	if j.Progress().Done < done-1 { // a task done as it was killed may not have been kept
		t.Fatalf("the restarted coordinator lost tasks: %d done, %d before", j.Progress().Done, done)
	}

	// A reducer killed while it runs a reduce.
	reducer := -1
	until(t, ctx, j, func() bool {
		running := map[string]peer.ID{}
		for _, l := range j.Logs() {
			if !strings.HasPrefix(l.Task, "reduce-") {
				continue
			}
			if strings.HasSuffix(l.Msg, "started") {
				running[l.Task] = l.Node
			} else if strings.HasPrefix(l.Msg, "done") {
				delete(running, l.Task)
			}
		}
		for _, p := range running {
			if i, ok := ids[p]; ok && i != 0 && i != mapper {
				reducer = i
				return true
			}
		}
		return false
	})
	if reducer >= 0 {
		c.Kill(reducer)
		t.Logf("killed reducer %d", reducer)
	} else {
		t.Logf("every reduce ran on the coordinator or ended first: no reducer to kill")
	}
	res, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	if testing.Verbose() {
		t.Log(logText(j))
	}
	sameCounts(t, readResult(t, ctx, n0, res), plainCount(files))
}

// tamper makes node n change every output it gives.
func tamper(n *nube.Node, f func([]byte) []byte) {
	n.Services().(interface{ Tamper(func([]byte) []byte) }).Tamper(f)
}

// TestVerifyNamesTheLiar: under VerifyFraction 1, a node that gives
// wrong map outputs for a deterministic map is caught, named and given
// no more tasks, and the result is still right.
func TestVerifyNamesTheLiar(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, 5*time.Minute)
	publish(t, ctx, c.Node(0), service.Price{}, "wordcount-map", "wordcount-reduce")
	liar := c.Node(2)
	// Empty partitions: a well-formed answer, and a wrong one.
	tamper(liar, func(b []byte) []byte {
		if bytes.Contains(b, []byte("\t")) {
			return b // a reduce's output
		}
		return []byte("-\n-\n")
	})
	files := corpus(3, 6, 20)
	in := spread(t, ctx, c, 0, files, func(i int) []int { return []int{2, 1 + 2*(i%2)} })
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2,
		VerifyFraction: 1, Nodes: c.IDs()[1:]})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	st := j.Status()
	if len(st.Disagreements) == 0 {
		t.Fatalf("no disagreement reported\n%s", logText(j))
	}
	for _, d := range st.Disagreements {
		if len(d.Minority) != 1 || d.Minority[0] != liar.ID() {
			t.Fatalf("disagreement on %s names %v, want the liar %s alone", d.Task, d.Minority, liar.ID())
		}
	}
	sameCounts(t, readResult(t, ctx, c.Node(0), res), plainCount(files))
}

// TestFailingNodeNotAgain: a node whose runs keep failing is never sent
// the same task twice, and the job ends right.
func TestFailingNodeNotAgain(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	ctx := nubetest.Context(t, 5*time.Minute)
	publish(t, ctx, c.Node(0), service.Price{}, "wordcount-map", "wordcount-reduce")
	bad := c.Node(1)
	// Its maps break the contract; its reduces are left alone (a
	// reduce's output is not the job's to check).
	tamper(bad, func(b []byte) []byte {
		if bytes.Contains(b, []byte("\t")) {
			return b
		}
		return []byte("not the contract")
	})
	files := corpus(4, 6, 20)
	in := spread(t, ctx, c, 0, files, func(int) []int { return []int{1} }) // the failing node holds every file
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2,
		MaxAttempts: 2, NoBackup: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	sent := map[string]int{}
	for _, l := range j.Logs() {
		if l.Node == bad.ID() && strings.HasSuffix(l.Msg, "started") {
			sent[l.Task]++
		}
	}
	for task, n := range sent {
		if n > 1 {
			t.Fatalf("%s was sent to the failing node %d times\n%s", task, n, logText(j))
		}
	}
	if len(sent) == 0 || j.Progress().Failed == 0 {
		t.Fatalf("the failing node ran nothing (%v), or nothing failed (%+v)", sent, j.Progress())
	}
	sameCounts(t, readResult(t, ctx, c.Node(0), res), plainCount(files))
}

// TestMissingInput: a job whose input nobody has fails within its
// timeout, naming the CID.
func TestMissingInput(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, time.Minute)
	nobody, err := cid.V1Builder{Codec: cid.Raw, MhType: 0x12}.Sum([]byte("no node holds this"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: nobody.String(), Map: "wordcount-map", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(ctx)
	if !errors.Is(err, job.ErrInputNotFound) || !strings.Contains(err.Error(), nobody.String()) {
		t.Fatalf("job over missing input: %v; want ErrInputNotFound naming %s", err, nobody)
	}
	if st := j.Status(); st.State != job.Failed || st.Ended.Sub(st.Started) > time.Minute {
		t.Fatalf("status: %+v", st)
	}
}

// TestCancel: a cancelled job ends with nothing of it running.
func TestCancel(t *testing.T) {
	c := nubetest.Cluster(t, 2)
	ctx := nubetest.Context(t, 3*time.Minute)
	publish(t, ctx, c.Node(0), service.Price{}, "wordcount-map", "wordcount-reduce")
	files := corpus(5, 6, 20)
	in := spread(t, ctx, c, 0, files, around(2))
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce"})
	if err != nil {
		t.Fatal(err)
	}
	until(t, ctx, j, func() bool { return j.Progress().Running > 0 })
	if err := c.Node(0).Jobs().Cancel(j.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Wait(ctx); !errors.Is(err, job.ErrCancelled) && j.Status().State != job.Done {
		t.Fatalf("cancelled job: %v", err)
	}
	if p := j.Progress(); p.Running != 0 || p.Reserved != 0 {
		t.Fatalf("after cancel: %+v", p)
	}
	if _, err := c.Node(0).Jobs().Get("nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("an unknown job: %v", err)
	}
	if l := c.Node(0).Jobs().List(); len(l) != 1 || l[0].ID != j.ID() {
		t.Fatalf("list: %+v", l)
	}
}

// TestStragglerBackup: a node whose map runs never answer (until the
// test ends) does not hold the job up: once nothing else is left to
// start, its runs get backup copies on another node, the first to
// finish wins, and the straggler's runs are cancelled.
func TestStragglerBackup(t *testing.T) {
	c := nubetest.Cluster(t, 3)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the nodes close: they wait for their runs
	ctx := nubetest.Context(t, 3*time.Minute)
	publish(t, ctx, c.Node(0), service.Price{}, "wordcount-map", "wordcount-reduce")
	slow := c.Node(2)
	tamper(slow, func(b []byte) []byte {
		if !bytes.Contains(b, []byte("\t")) { // a map's output: never given
			<-release
		}
		return b
	})
	files := corpus(9, 6, 20)
	in := spread(t, ctx, c, 0, files, func(i int) []int { return []int{1 + i%2} })
	j, err := c.Node(0).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce", Reducers: 2,
		Nodes: c.IDs()[1:]})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Wait(ctx)
	if err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	sameCounts(t, readResult(t, ctx, c.Node(0), res), plainCount(files))
	won := 0
	for _, l := range j.Logs() {
		if strings.HasPrefix(l.Task, "map-") && strings.HasSuffix(l.Msg, "(backup)") {
			won++
		}
		if l.Node == slow.ID() && strings.HasPrefix(l.Task, "map-") && strings.HasPrefix(l.Msg, "done") {
			t.Fatalf("the straggler finished %s\n%s", l.Task, logText(j))
		}
	}
	if won == 0 {
		t.Fatalf("no backup won a map\n%s", logText(j))
	}
	if testing.Verbose() {
		t.Log(logText(j))
	}
	if p := j.Progress(); p.Running != 0 {
		t.Fatalf("runs left after the job: %+v", p)
	}
}
