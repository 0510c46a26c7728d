package nube_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/internal/wasmtest"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/remote"
	"github.com/nubecloud/nube/service"
)

// chaosRuns counts, per token, how many times chaosEcho ran: a call must
// run at most once, whatever the network did to it.
var chaosRuns sync.Map // string -> *atomic.Int32

var chaosEcho = remote.Func("test.chaos.echo", func(ctx context.Context, token string) (string, error) {
	n, _ := chaosRuns.LoadOrStore(token, new(atomic.Int32))
	n.(*atomic.Int32).Add(1)
	return token, nil
})

// chaosLog is what the clients saw while the faults went on.
type chaosLog struct {
	mu    sync.Mutex
	adds  []ackedAdd
	calls map[string]bool // token -> the call returned its token
	ops   atomic.Int64    // operations finished, either way
	paid  atomic.Int64    // transfers the ledger accepted
	runs  []serviceRun    // service calls that returned an output
	// epochs counts each node's crashes: a node's run records go with
	// it when it crashes.
	epochs [5]atomic.Int32
}

// serviceRun is a service call that returned an output: node ran it,
// when node had crashed epoch times.
type serviceRun struct {
	call  string
	node  int
	epoch int32
}

type ackedAdd struct {
	node int
	cid  cid.Cid
	sum  [32]byte
	size int
}

// TestChaos runs a network of five nodes (three of them keep a ledger)
// through a random schedule of crashes, restarts, partitions, heals and
// slow or lossy links
// while clients add content, make remote calls and move credit on every
// node. Then it heals everything and checks what must hold whatever
// happened: no add a node acknowledged is lost; every stored block
// verifies; every call returned, and no call ran twice; every service
// run is recorded once, by the node that answered; the ledger's copies
// agree and its balances and escrow sum to zero.
//
// NUBE_CHAOS_FAULTS sets the number of faults (12; 6 in -short mode) and
// NUBE_CHAOS_SEED the schedule, which the test logs so that a failure can
// be replayed.
func TestChaos(t *testing.T) {
	faults := 12
	if testing.Short() {
		faults = 6
	}
	if n, err := strconv.Atoi(os.Getenv("NUBE_CHAOS_FAULTS")); err == nil && n > 0 {
		faults = n
	}
	seed := time.Now().UnixNano()
	if s, err := strconv.ParseInt(os.Getenv("NUBE_CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("chaos: %d faults, NUBE_CHAOS_SEED=%d", faults, seed)
	rng := rand.New(rand.NewSource(seed))

	const n = 5
	c := nubetest.Cluster(t, n, nubetest.WithDataDirs(), nubetest.WithShaping(), nubetest.TrustFirst(3)) // all trust the ledger's nodes
	ctx := nubetest.Context(t, 8*time.Minute)
	ledgerNodes := []int{0, 1, 2}
	if _, err := c.Node(0).Ledger().Create(ctx, 0, c.Node(1).ID(), c.Node(2).ID()); err != nil {
		t.Fatalf("create the ledger: %v", err)
	}
	echo, err := c.Node(0).Services().Publish(ctx, bytes.NewReader(wasmtest.Module(t, "echo")), service.PublishOptions{Name: "chaos-echo"})
	if err != nil {
		t.Fatal(err)
	}
	// Each node compiles the module before the chaos, so that the
	// service calls during it are many.
	for i := range n {
		if _, err := c.Node(0).Service(echo.ID().String()).On(c.Node(i).ID()).Call(ctx, []byte("warm")); err != nil {
			t.Fatalf("echo on node %d: %v", i, err)
		}
	}

	log := &chaosLog{calls: map[string]bool{}}
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for w, work := range []func(*rand.Rand){
		func(r *rand.Rand) { chaosAdd(ctx, c, r, log) },
		func(r *rand.Rand) { chaosCall(ctx, c, r, log) },
		func(r *rand.Rand) { chaosPay(ctx, c, r, log) },
		func(r *rand.Rand) { chaosService(ctx, c, r, log, echo.ID().String()) },
	} {
		workers.Add(1)
		r := rand.New(rand.NewSource(seed + int64(w) + 1))
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				work(r)
				log.ops.Add(1)
			}
		}()
	}

	// The schedule: a fault after every few operations the clients
	// finish, so the network is busy at each one.
	down := map[int]bool{}
	partitioned := false
	for k := range faults {
		next := log.ops.Load() + 6
		nubetest.Eventually(t, ctx, func() bool { return log.ops.Load() >= next },
			func() string { return fmt.Sprintf("the clients stalled before fault %d", k) })
		switch f := rng.Intn(5); {
		case f == 0 && len(down) < 2:
			i := rng.Intn(n)
			if !down[i] {
				t.Logf("fault %d: crash node %d", k, i)
				log.epochs[i].Add(1)
				c.Crash(i)
				down[i] = true
			}
		case f == 1 && len(down) > 0:
			for i := range down {
				t.Logf("fault %d: restart node %d", k, i)
				if _, err := c.Restart(ctx, i); err != nil {
					t.Fatal(err)
				}
				delete(down, i)
				break
			}
		case f == 2 && !partitioned:
			perm := rng.Perm(n)
			cut := 1 + rng.Intn(n-1)
			t.Logf("fault %d: partition %v | %v", k, perm[:cut], perm[cut:])
			c.Partition(perm[:cut], perm[cut:])
			partitioned = true
		case f == 3:
			i := rng.Intn(n)
			j := (i + 1 + rng.Intn(n-1)) % n
			l := nubetest.Link{Latency: time.Duration(rng.Intn(80)) * time.Millisecond, Loss: rng.Float64() * 0.05}
			if rng.Intn(2) == 0 {
				l.Bandwidth = int64(256<<10 + rng.Intn(4<<20))
			}
			t.Logf("fault %d: link %d-%d: %v each way, %.1f%% loss, %d B/s", k, i, j, l.Latency, 100*l.Loss, l.Bandwidth)
			c.Shape(i, j, l)
		default:
			if partitioned {
				t.Logf("fault %d: heal", k)
				c.Heal(ctx)
				partitioned = false
			}
		}
	}
	close(stop)
	// Every client call has a deadline of its own; the clients end within
	// a few of them, or a call hung past its deadline.
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("a client call has not returned long after its deadline")
	}

	// Mend everything.
	for i := range n {
		for j := i + 1; j < n; j++ {
			c.Shape(i, j, nubetest.Link{})
		}
	}
	c.Heal(ctx)
	for i := range down {
		if _, err := c.Restart(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	// Dials refused or failed during the chaos left backoffs behind.
	dctx := network.WithForceDirectDial(ctx, "after the chaos")
	for i := range n {
		for j := i + 1; j < n; j++ {
			if err := c.Connect(dctx, i, j); err != nil {
				t.Fatalf("after the chaos: %v", err)
			}
		}
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	t.Logf("chaos: %d operations, %d adds acknowledged, %d calls, %d service runs, %d transfers accepted", log.ops.Load(), len(log.adds), len(log.calls), len(log.runs), log.paid.Load())

	// No acknowledged add is lost: the node that said it stored the
	// bytes has them, and they read back the same.
	for _, a := range log.adds {
		node := c.Node(a.node)
		if has, err := node.Content().Has(ctx, a.cid); err != nil || !has {
			t.Errorf("node %d acknowledged the add of %s, and lost it (%v)", a.node, a.cid, err)
			continue
		}
		f, err := node.Content().Get(ctx, a.cid.String())
		if err != nil {
			t.Errorf("node %d: %s: %v", a.node, a.cid, err)
			continue
		}
		h := sha256.New()
		size, err := io.Copy(h, f)
		f.Close()
		if err != nil || int(size) != a.size || !bytes.Equal(h.Sum(nil), a.sum[:]) {
			t.Errorf("node %d: %s reads back %d bytes that differ from the %d added (%v)", a.node, a.cid, size, a.size, err)
		}
	}
	// Every stored block verifies.
	for i, node := range c.Nodes() {
		v, err := node.Content().Verify(ctx, false)
		if err != nil || len(v.Bad) > 0 {
			t.Errorf("node %d's store: %d bad blocks of %d (%v)", i, len(v.Bad), v.Checked, err)
		}
	}
	// Every call that answered ran exactly once; none ran twice.
	chaosRuns.Range(func(k, v any) bool {
		if runs := v.(*atomic.Int32).Load(); runs > 1 {
			t.Errorf("call %s ran %d times", k, runs)
		}
		return true
	})
	for token, ok := range log.calls {
		if !ok {
			continue
		}
		if v, found := chaosRuns.Load(token); !found || v.(*atomic.Int32).Load() != 1 {
			t.Errorf("call %s answered without running once", token)
		}
	}
	// Every service run is recorded once: no call is in the records
	// twice, on one node or two, and each that returned an output is in
	// the records of the node that answered, unless that node crashed
	// since (its records went with it).
	recorded := map[string][]int{} // call -> the nodes that recorded it
	full := map[int]bool{}         // nodes whose records overflowed
	for i, node := range c.Nodes() {
		runs := node.Services().Runs()
		full[i] = len(runs) >= 256
		for _, r := range runs {
			if r.Call == "" {
				t.Errorf("node %d recorded a run of %s with no call name", i, r.Service)
			}
			recorded[r.Call] = append(recorded[r.Call], i)
		}
	}
	for call, nodes := range recorded {
		if len(nodes) > 1 {
			t.Errorf("service call %s recorded %d times, by nodes %v", call, len(nodes), nodes)
		}
	}
	for _, r := range log.runs {
		if log.epochs[r.node].Load() != r.epoch || full[r.node] {
			continue
		}
		if nodes := recorded[r.call]; len(nodes) != 1 || nodes[0] != r.node {
			t.Errorf("service call %s, answered by node %d, is recorded by nodes %v", r.call, r.node, nodes)
		}
	}
	// The ledger's copies converge, and each sums to zero.
	var seqs []uint64
	nubetest.Eventually(t, ctx, func() bool {
		seqs = seqs[:0]
		for _, i := range ledgerNodes {
			info, err := c.Node(i).Ledger().LocalInfo(ctx)
			if err != nil {
				return false
			}
			if info.Sum != 0 {
				t.Fatalf("ledger node %d: balances and escrow sum to %d, not zero", i, info.Sum)
			}
			seqs = append(seqs, info.Seq)
		}
		return seqs[0] == seqs[1] && seqs[1] == seqs[2] && seqs[0] >= uint64(log.paid.Load())
	}, func() string {
		return fmt.Sprintf("the ledger's copies never agreed on %d accepted transfers: at %v", log.paid.Load(), seqs)
	})
}

// running returns a random running node and its index, or nil.
func running(c *nubetest.C, r *rand.Rand) (*nube.Node, int) {
	for _, i := range r.Perm(c.Len()) {
		if node := c.Node(i); node != nil {
			return node, i
		}
	}
	return nil, -1
}

func chaosAdd(ctx context.Context, c *nubetest.C, r *rand.Rand, log *chaosLog) {
	node, i := running(c, r)
	if node == nil {
		return
	}
	data := make([]byte, 1+r.Intn(600<<10))
	r.Read(data)
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := node.Add(actx, bytes.NewReader(data))
	if err != nil {
		return // a node closing under the add: not acknowledged
	}
	log.mu.Lock()
	log.adds = append(log.adds, ackedAdd{node: i, cid: id, sum: sha256.Sum256(data), size: len(data)})
	log.mu.Unlock()
}

func chaosCall(ctx context.Context, c *nubetest.C, r *rand.Rand, log *chaosLog) {
	from, _ := running(c, r)
	to, _ := running(c, r)
	if from == nil || to == nil {
		return
	}
	token := fmt.Sprintf("%x", r.Uint64())
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	got, err := chaosEcho.At(from, to.ID()).Call(cctx, token)
	log.mu.Lock()
	log.calls[token] = err == nil && got == token
	log.mu.Unlock()
}

// chaosService calls the echo service on a random node, with others to
// try should it be unreachable.
func chaosService(ctx context.Context, c *nubetest.C, r *rand.Rand, log *chaosLog, ref string) {
	from, _ := running(c, r)
	if from == nil {
		return
	}
	var on []peer.ID
	epochs := map[peer.ID]int32{}
	index := map[peer.ID]int{}
	for _, i := range r.Perm(c.Len()) {
		if node := c.Node(i); node != nil && node != from {
			on = append(on, node.ID())
			epochs[node.ID()], index[node.ID()] = log.epochs[i].Load(), i
		}
	}
	if len(on) == 0 {
		return
	}
	in := fmt.Appendf(nil, "%x", r.Uint64())
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, res := range from.Service(ref).On(on...).CallN(cctx, 1, in) {
		if res.Err == nil && bytes.Equal(res.Output, in) {
			log.mu.Lock()
			log.runs = append(log.runs, serviceRun{call: res.Call, node: index[res.Peer], epoch: epochs[res.Peer]})
			log.mu.Unlock()
		}
	}
}

func chaosPay(ctx context.Context, c *nubetest.C, r *rand.Rand, log *chaosLog) {
	from, _ := running(c, r)
	to, _ := running(c, r)
	if from == nil || to == nil || from == to {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := from.Ledger().Send(pctx, to.ID(), 1000, "chaos"); err == nil { // to the node's user
		log.paid.Add(1)
	}
}

// TestPartitionHolds checks the harness itself: a partition refuses
// every dial across it, both ways, until Heal, and survives a restart of
// a node on one side; after Heal calls cross again.
func TestPartitionHolds(t *testing.T) {
	c := nubetest.Cluster(t, 3, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, time.Minute)
	c.Partition([]int{0}, []int{1, 2})
	cross := func(from, to int) error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := chaosEcho.At(c.Node(from), c.Node(to).ID()).Call(cctx, "across")
		return err
	}
	for _, p := range [][2]int{{0, 1}, {2, 0}} {
		if err := cross(p[0], p[1]); err == nil {
			t.Fatalf("node %d called node %d across the partition", p[0], p[1])
		}
	}
	if err := cross(1, 2); err != nil {
		t.Fatalf("within one side: %v", err)
	}
	if _, err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(0).Connect(ctx, c.Node(1).Addrs()[0].String()); err == nil {
		t.Fatal("a restarted node dialled across the partition")
	}
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]int{{0, 1}, {2, 0}} {
		if err := cross(p[0], p[1]); err != nil {
			t.Fatalf("node %d to node %d after Heal: %v", p[0], p[1], err)
		}
	}
}

// TestShapedLinks checks the harness's link shaping: a link's latency,
// bandwidth and loss slow what crosses it (the test bounds times from
// below only: a loaded machine can only make them longer), and nothing
// that crosses a lossy link is lost or changed.
func TestShapedLinks(t *testing.T) {
	c := nubetest.Cluster(t, 2, nubetest.WithShaping())
	ctx := nubetest.Context(t, 2*time.Minute)
	a, b := c.Node(0), c.Node(1)

	const latency = 40 * time.Millisecond
	c.Shape(0, 1, nubetest.Link{Latency: latency})
	start := time.Now()
	if _, err := chaosEcho.At(a, b.ID()).Call(ctx, "shaped"); err != nil {
		t.Fatal(err)
	}
	if rtt := time.Since(start); rtt < 2*latency {
		t.Fatalf("a call over a link of %v each way took %v: less than a round trip", latency, rtt)
	}

	fetch := func(size int) (time.Duration, error) {
		data := make([]byte, size)
		crand.Read(data)
		id, err := a.Add(ctx, bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		start := time.Now()
		f, err := b.Content().Get(ctx, id.String())
		if err != nil {
			return 0, err
		}
		defer f.Close()
		got, err := io.ReadAll(f)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(got, data) {
			return 0, fmt.Errorf("%d bytes fetched differ from the %d added", len(got), len(data))
		}
		return time.Since(start), nil
	}
	const rate = 1 << 20
	c.Shape(0, 1, nubetest.Link{Bandwidth: rate})
	took, err := fetch(3 << 19)
	if err != nil {
		t.Fatal(err)
	}
	if took < 1400*time.Millisecond {
		t.Fatalf("1.5 MiB over a link of 1 MiB/s took %v", took)
	}

	c.Shape(0, 1, nubetest.Link{Latency: 5 * time.Millisecond, Loss: 0.2})
	if took, err = fetch(512 << 10); err != nil {
		t.Fatalf("over a lossy link: %v", err)
	}
	if took < 200*time.Millisecond {
		t.Fatalf("512 KiB over a link losing 20%% of packets took %v, less than one retransmission", took)
	}

	c.Shape(0, 1, nubetest.Link{})
	if _, err := fetch(64 << 10); err != nil {
		t.Fatalf("after the link is mended: %v", err)
	}
}
