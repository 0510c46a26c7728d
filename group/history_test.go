package group_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/nubecloud/nube/group"
	"github.com/nubecloud/nube/nubetest"
)

// keys is how many keys the clients share: few, so that they contend.
const keys = 3

var historyOps = flag.Int("group.ops", 0, "operations per client in the linearizability tests (0: a small run for the normal suite)")

// kvInput and kvOutput are one operation on the map, as porcupine sees it.
type kvInput struct {
	op         string // get, put, cas
	key        string
	value, old string
	hasOld     bool
}

type kvOutput struct {
	value   string
	found   bool // get: the key had a value; cas: it swapped
	unknown bool // the call failed: it may or may not have applied
}

// kvModel is a map of keys to strings, checked key by key.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			return out.found == s.set && out.value == s.value, s
		case "put":
			return true, kvState{set: true, value: in.value}
		case "cas":
			match := s.set == in.hasOld && (!s.set || s.value == in.old)
			if out.unknown {
				if match {
					return true, kvState{set: true, value: in.value}
				}
				return true, s
			}
			if out.found != match {
				return false, s
			}
			if match {
				return true, kvState{set: true, value: in.value}
			}
			return true, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%s(%s %q %q) -> %+v", in.op, in.key, in.old, in.value, out)
	},
}

type kvState struct {
	set   bool
	value string
}

// recorder collects a history from many clients.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(client int, in kvInput, call int64, out kvOutput) {
	ret := r.now()
	if out.unknown {
		ret = math.MaxInt64 // it may take effect at any time after the call
	}
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

func TestLinearizable3(t *testing.T) { testLinearizable(t, 3) }
func TestLinearizable5(t *testing.T) { testLinearizable(t, 5) }

// testLinearizable runs clients on every member of an n-member group that
// put, compare-and-swap, get and apply, kills the leader (its host and
// raft stop dead, without a word to the others) half-way, and checks that
// the history is linearizable and that every acknowledged Apply was
// applied exactly once on every survivor, and no other Apply more than
// once.
func testLinearizable(t *testing.T, n int) {
	t.Parallel()
	perClient := 40
	if *historyOps > 0 {
		perClient = *historyOps
	}
	ms := startMembers(t, n)
	ctx := nubetest.Context(t, 3*time.Minute)
	machines := make([]*counter, n)
	gs := make([]*group.Group, n)
	for i, m := range ms.mgrs {
		machines[i] = &counter{}
		g, err := m.Open(ctx, "lin", group.Options{Members: ms.ids(), Machine: machines[i]})
		if err != nil {
			t.Fatal(err)
		}
		gs[i] = g
	}
	leader := waitLeader(t, ctx, gs...)
	victim := -1
	for i, h := range ms.hosts {
		if h.ID() == leader {
			victim = i
		}
	}

	rec := &recorder{start: time.Now()}
	var done atomic.Int64
	var acked sync.Map // Apply commands acknowledged
	var wg sync.WaitGroup
	const clientsPerMember = 2
	total := int64(n * clientsPerMember * perClient)
	for i := range n {
		for c := range clientsPerMember {
			client := i*clientsPerMember + c
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(client), 7))
				for seq := range perClient {
					if ctx.Err() != nil {
						return
					}
					dead := runOp(ctx, gs[i], rec, &acked, client, seq, rng)
					done.Add(1)
					if dead {
						return // this member was killed: its clients die with it
					}
				}
			}()
		}
	}
	// Kill the leader once a third of the operations are done.
	nubetest.Eventually(t, ctx, func() bool { return done.Load() >= total/3 }, func() string {
		return fmt.Sprintf("only %d of %d operations done", done.Load(), total)
	})
	ms.kill(victim)
	wg.Wait()
	t.Logf("%d operations, leader %d killed after %d", len(rec.ops), victim, total/3)

	// A final read of every key from a survivor closes the history.
	survivor := (victim + 1) % n
	for k := range keys {
		key := "k" + strconv.Itoa(k)
		call := rec.now()
		v, err := gs[survivor].Get(ctx, key)
		out := kvOutput{value: string(v), found: err == nil}
		if err != nil && !errorsIsNotFound(err) {
			t.Fatalf("final get %s: %v", key, err)
		}
		rec.add(-1, kvInput{op: "get", key: key}, call, out)
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, rec.ops, time.Minute)
	if res != porcupine.Ok {
		path := t.TempDir() + "/history.html"
		_ = porcupine.VisualizePath(kvModel, info, path)
		t.Fatalf("history of %d operations is %v (see %s)", len(rec.ops), res, path)
	}

	// Exactly once: every survivor's machine holds each acknowledged
	// command once, and no command twice.
	want := 0
	acked.Range(func(_, _ any) bool { want++; return true })
	nubetest.Eventually(t, ctx, func() bool {
		for i, m := range machines {
			if i != victim && !holdsAll(m, &acked) {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("a survivor lacks some of the %d acknowledged commands", want) })
	for i, m := range machines {
		if i == victim {
			continue
		}
		seen := map[string]int{}
		for _, e := range m.entries() {
			seen[e]++
			if seen[e] > 1 {
				t.Fatalf("member %d applied %q twice", i, e)
			}
		}
	}
}

func holdsAll(m *counter, acked *sync.Map) bool {
	have := map[string]bool{}
	for _, e := range m.entries() {
		have[e] = true
	}
	ok := true
	acked.Range(func(k, _ any) bool {
		ok = have[k.(string)]
		return ok
	})
	return ok
}

// runOp does one random operation and records it. It reports whether the
// member's group is closed (the member was killed).
func runOp(ctx context.Context, g *group.Group, rec *recorder, acked *sync.Map, client, seq int, rng *rand.Rand) bool {
	key := "k" + strconv.Itoa(rng.IntN(keys))
	val := fmt.Sprintf("c%d-%d", client, seq)
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	call := rec.now()
	var err error
	switch rng.IntN(4) {
	case 0:
		var v []byte
		v, err = g.Get(octx, key)
		if err != nil && !errorsIsNotFound(err) {
			break // a read that failed says nothing
		}
		rec.add(client, kvInput{op: "get", key: key}, call, kvOutput{value: string(v), found: err == nil})
	case 1:
		_, err = g.Put(octx, key, []byte(val))
		rec.add(client, kvInput{op: "put", key: key, value: val}, call, kvOutput{unknown: err != nil})
	case 2:
		// Swap from the value this client last read, or from absent.
		old, err := g.Get(octx, key)
		call = rec.now()
		in := kvInput{op: "cas", key: key, value: val, old: string(old), hasOld: err == nil}
		var oldArg []byte
		if err == nil {
			oldArg = old
		}
		var ok bool
		ok, err = g.CompareAndSwap(octx, key, oldArg, []byte(val))
		rec.add(client, in, call, kvOutput{found: ok, unknown: err != nil})
	case 3:
		if _, err = g.Apply(octx, []byte(val)); err == nil {
			acked.Store(val, true)
		}
	}
	return errors.Is(err, group.ErrClosed)
}
