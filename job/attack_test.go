package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/job"
	"github.com/nubecloud/nube/ledger"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/service"
)

// TestAttackVerifyOverspendsBudget — attack: a job's budget is bypassed
// by verification. A verified map's winning run is paid only once its
// verify run agrees, but its reserve leaves Progress.Reserved when the
// run ends (sched.ended) and its cost enters Spent only at compare; in
// between the job counts that run as costing nothing, so afford lets
// further runs start in its room. With VerifyFraction 1 and a budget of
// two runs' most, the job pays for far more than two runs. Fix: keep a
// deferred run's most in c.reserved until it is paid or judged unpaid
// (and count what drain pays).
func TestAttackVerifyOverspendsBudget(t *testing.T) {
	const limit = 50_000
	c := nubetest.Cluster(t, 4, nubetest.TrustFirst(3), nubetest.WithConfig(func(_ int, c *nube.Config) {
		c.GroupHeartbeat = 200 * time.Millisecond
		c.LedgerTick = 100 * time.Millisecond
	}))
	ctx := nubetest.Context(t, 4*time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Ledger().Create(ctx, limit, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatal(err)
	}
	coord := c.Node(3)
	if _, err := c.Node(2).Ledger().Vouch(ctx, coord.UserID(), limit); err != nil {
		t.Fatal(err)
	}
	price := service.Price{PerCall: 1000}
	publish(t, ctx, c.Node(0), price, "wordcount-map", "wordcount-reduce")
	files := corpus(6, 6, 10)
	in := spread(t, ctx, c, 3, files, around(3))
	const budget = 2500 // two runs' most, not three
	j, err := coord.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce",
		Budget: budget, Nodes: c.IDs()[:3], NoBackup: true, VerifyFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(ctx)
	p := j.Progress()
	t.Logf("job ended: %v; progress %+v", err, p)
	if p.Spent > budget {
		t.Fatalf("the job spent %d millicredits past its budget of %d (%v)\n%s", p.Spent, budget, err, logText(j))
	}
	var in0 ledger.Info
	nubetest.Eventually(t, ctx, func() bool {
		var err error
		in0, err = c.Node(0).Ledger().LocalInfo(ctx)
		return err == nil && in0.Escrow == 0 && in0.Reserves == 0
	}, func() string { return fmt.Sprintf("ledger %+v", in0) })
	a, err := c.Node(0).Ledger().Account(ctx, coord.UserID())
	if err != nil {
		t.Fatal(err)
	}
	if -a.Balance > budget {
		t.Fatalf("the coordinator's user paid %d for a job of budget %d", -a.Balance, budget)
	}
}

// TestAttackRestartSkipsVerifiedPay — attack: the payer keeps work
// without paying for it. A verified map's winning run is paid only once
// its verify run agrees (sched.won defers it); the deferral lives in
// memory only. A coordinator that crashes after the win was kept on disk
// but before the comparison resumes with the task done and seeds the
// comparison with the winner's output and no attempt ("already judged",
// says vrun), so when the verify run agrees pay(nil) does nothing: the
// winner's output is in the result, its runner is never told it is paid
// and its reserve expires back to the coordinator's user. Fix: judge the
// winner before the task is kept as done-but-unverified (or keep on disk
// what it needs to be judged — its call and peer — and judge it on
// resume).
func TestAttackRestartSkipsVerifiedPay(t *testing.T) {
	const limit = 50_000
	c := nubetest.Cluster(t, 4, nubetest.WithDataDirs(), nubetest.TrustFirst(3), nubetest.WithConfig(func(_ int, c *nube.Config) {
		c.GroupHeartbeat = 200 * time.Millisecond
		c.LedgerTick = 100 * time.Millisecond
	}))
	ctx := nubetest.Context(t, 5*time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Ledger().Create(ctx, limit, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatal(err)
	}
	coord := c.Node(3)
	user := coord.UserID()
	if _, err := c.Node(2).Ledger().Vouch(ctx, user, limit); err != nil {
		t.Fatal(err)
	}
	const perCall = 1000
	publish(t, ctx, c.Node(0), service.Price{PerCall: perCall}, "wordcount-map", "wordcount-reduce")
	files := corpus(7, 6, 10)
	in := spread(t, ctx, c, 3, files, around(3))
	j, err := coord.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce",
		Budget: limit / 2, Nodes: c.IDs()[:3], NoBackup: true, VerifyFraction: 1, TaskTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	id := j.ID()
	// Crash the coordinator while a map it kept (and saved: its verify
	// run starts only after the save) awaits its verify run's output.
	var pendingTask string
	until(t, ctx, j, func() bool {
		started, verified := map[string]bool{}, map[string]bool{}
		for _, l := range j.Logs() {
			switch {
			case strings.HasPrefix(l.Msg, "verify run started"):
				started[l.Task] = true
			case strings.HasPrefix(l.Msg, "verified"):
				verified[l.Task] = true
			}
		}
		for task := range started {
			if !verified[task] {
				pendingTask = task
				return true
			}
		}
		return false
	})
	if pendingTask == "" {
		t.Fatalf("the job ended before any verify run was under way\n%s", logText(j))
	}
	c.Crash(3)
	n3, err := c.Restart(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := c.Connect(ctx, 3, i); err != nil {
			t.Fatal(err)
		}
	}
	if j, err = n3.Jobs().Get(id); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Wait(ctx); err != nil {
		t.Fatalf("job: %v\n%s", err, logText(j))
	}
	st := j.Status()
	if len(st.Disagreements) > 0 {
		t.Fatalf("honest runs disagreed: %+v", st.Disagreements)
	}
	// Every map's kept run and its agreeing verify run, and the reduce's
	// run, ran on a remote priced node: each must be paid.
	maps := strings.Count(logText(j), "map-") // only for the message
	var in0 ledger.Info
	nubetest.Eventually(t, ctx, func() bool {
		var err error
		in0, err = c.Node(0).Ledger().LocalInfo(ctx)
		return err == nil && in0.Escrow == 0 && in0.Reserves == 0
	}, func() string { return fmt.Sprintf("ledger %+v", in0) })
	a, err := c.Node(0).Ledger().Account(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(perCall * (2*len(files) + 1))
	t.Logf("crashed while %s awaited its verify run; the job spent %d, its user paid %d (%d map log lines)", pendingTask, j.Progress().Spent, -a.Balance, maps)
	if -a.Balance < want {
		t.Fatalf("the coordinator's user paid %d for %d verified maps and a reduce, all run and kept on priced remote nodes: want at least %d; a kept run went unpaid\n%s",
			-a.Balance, len(files), want, logText(j))
	}
}

// TestAttackLiarsPaidWhenAllDisagree — attack: liars get paid. Under
// VerifyFraction 1 a map task whose three runs all differ fails the job
// with ErrTaskFailed and names every runner in the minority, which the
// package doc says is not paid. But compare returns before it drops the
// task's runs from sched.vr, and drain, on the way out, pays every run
// left there: two lying runners (and the honest one) are paid for output
// the job threw away. Fix: judge the runs unpaid (and delete s.vr[t])
// before compare returns the no-majority error; drain should pay only a
// winner whose comparison never happened.
func TestAttackLiarsPaidWhenAllDisagree(t *testing.T) {
	const limit = 50_000
	c := nubetest.Cluster(t, 4, nubetest.TrustFirst(3), nubetest.WithConfig(func(_ int, c *nube.Config) {
		c.GroupHeartbeat = 200 * time.Millisecond
		c.LedgerTick = 100 * time.Millisecond
	}))
	ctx := nubetest.Context(t, 4*time.Minute)
	if err := c.WaitRoutingTables(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Ledger().Create(ctx, limit, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatal(err)
	}
	coord := c.Node(3)
	if _, err := c.Node(2).Ledger().Vouch(ctx, coord.UserID(), limit); err != nil {
		t.Fatal(err)
	}
	publish(t, ctx, c.Node(0), service.Price{PerCall: 1000}, "wordcount-map")
	files := corpus(8, 1, 10)
	in := spread(t, ctx, c, 3, files, around(3))
	// Two liars, each with a lie of its own; node 2 is honest.
	tamper(c.Node(0), func([]byte) []byte { return []byte("-\n") })
	tamper(c.Node(1), func([]byte) []byte { return []byte(in.String() + "\n") })
	j, err := coord.Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map",
		Budget: 10_000, Nodes: c.IDs()[:3], NoBackup: true, VerifyFraction: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Wait(ctx)
	st := j.Status()
	t.Logf("job ended: %v; spent %d; disagreements %+v", err, st.Progress.Spent, st.Disagreements)
	if !errors.Is(err, job.ErrTaskFailed) || len(st.Disagreements) != 1 || len(st.Disagreements[0].Minority) != 3 {
		t.Fatalf("want the job failed with three runs all in the minority: %v %+v\n%s", err, st.Disagreements, logText(j))
	}
	var in0 ledger.Info
	nubetest.Eventually(t, ctx, func() bool {
		var err error
		in0, err = c.Node(0).Ledger().LocalInfo(ctx)
		return err == nil && in0.Escrow == 0 && in0.Reserves == 0
	}, func() string { return fmt.Sprintf("ledger %+v", in0) })
	a, err := c.Node(0).Ledger().Account(ctx, coord.UserID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Progress.Spent != 0 || a.Balance != 0 {
		t.Fatalf("three runs in the minority, none kept, yet the job counted %d spent and its user paid %d\n%s", st.Progress.Spent, -a.Balance, logText(j))
	}
}

// gate is a channel a test opens once.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// TestAttackLostMapperDuringVerifyFailsJob — attack: a mapper that drops
// off the network while one of its finished maps is being verified fails
// the whole job and gets an honest verifier branded a liar. lost() takes
// the mapper's done maps back (Done=false) and deletes their sched.vr
// entries, but the verify run already under way is left running; when it
// ends, compare finds only its own output, calls that a disagreement with
// no majority, names the honest verifier in the minority, records it in
// the job's Bad nodes (kept on disk) and fails the job with
// ErrTaskFailed — though the maps could simply run again elsewhere, as
// they do for a mapper lost at any other moment. (The mapper's kept run,
// dropped from vr, is also never judged: its reserve stays held until it
// expires.) Fix: in lost(), cancel the verify runs of the maps it takes
// back and judge their vr entries unpaid; in compare, drop a verify run
// of a task that is no longer done.
func TestAttackLostMapperDuringVerifyFailsJob(t *testing.T) {
	c := nubetest.Cluster(t, 4)
	ctx := nubetest.Context(t, 4*time.Minute)
	// Published on the coordinator: the modules outlive the mapper.
	publish(t, ctx, c.Node(3), service.Price{}, "wordcount-map", "wordcount-reduce")
	files := corpus(9, 2, 20)
	// Node 0 (the mapper to lose) holds both files, and the coordinator
	// too, so that the maps can run again elsewhere once node 0 is gone.
	in := spread(t, ctx, c, 3, files, func(int) []int { return []int{0, 3} })
	// The mapper's first map returns at once; its second hangs until it
	// is lost. Every run on nodes 1 and 2 (the verifiers) waits for
	// verifyGate, so that the verify run is under way when node 0 goes.
	mapperGate, verifyGate := newGate(t), newGate(t)
	var calls atomic.Int32
	tamper(c.Node(0), func(b []byte) []byte {
		if calls.Add(1) > 1 {
			<-mapperGate.ch
		}
		return b
	})
	for _, i := range []int{1, 2} {
		tamper(c.Node(i), func(b []byte) []byte { <-verifyGate.ch; return b })
	}
	j, err := c.Node(3).Jobs().Run(ctx, job.Spec{Input: in.String(), Map: "wordcount-map", Reduce: "wordcount-reduce",
		VerifyFraction: 1, NoBackup: true, Nodes: c.IDs()[:3]})
	if err != nil {
		t.Fatal(err)
	}
	hasLog := func(prefix string) func() bool {
		return func() bool {
			return slices.ContainsFunc(j.Logs(), func(l job.LogLine) bool { return strings.HasPrefix(l.Msg, prefix) })
		}
	}
	if !until(t, ctx, j, hasLog("verify run started")) {
		t.Fatalf("no verify run started\n%s", logText(j))
	}
	// The mapper drops off the network as a crash does, its second map
	// still under way.
	mapper := c.Node(0)
	mapper.Sys().Host().Close()
	mapperGate.open()
	c.Kill(0)
	if !until(t, ctx, j, hasLog("node lost")) {
		t.Fatalf("the coordinator never counted the mapper lost\n%s", logText(j))
	}
	t.Logf("mapper lost; the verify runs go on")
	verifyGate.open()
	// The files are still to be had from the coordinator.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	entries, err := c.Node(1).Content().List(fctx, in.String())
	if err == nil && len(entries) > 0 {
		var f io.ReadCloser
		if f, err = c.Node(1).Content().Get(fctx, in.String()+"/"+entries[0].Name); err == nil {
			_, err = io.Copy(io.Discard, f)
			f.Close()
		}
	}
	cancel()
	if err != nil {
		t.Fatalf("the input cannot be read without the mapper, so its maps could not run again: %v", err)
	}
	res, err := j.Wait(ctx)
	st := j.Status()
	if err != nil || len(st.Disagreements) > 0 {
		t.Fatalf("no node lied, and the lost mapper's maps can run again elsewhere, yet the job ended with %v and disagreements %+v\n%s",
			err, st.Disagreements, logText(j))
	}
	sameCounts(t, readResult(t, ctx, c.Node(3), res), plainCount(files))
}
