package cache_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/nubecloud/nube/cache"
	"github.com/nubecloud/nube/nubetest"
)

// register is one key written by one writer and read through strict
// caches, as porcupine checks it.
type regInput struct {
	write bool
	value int
}

var registerModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(int) == state.(int), state
	},
	Equal: func(a, b any) bool { return a == b },
}

// TestStrictReadsLinearizable: strict Gets on three readers while the
// owner writes form a linearizable history, hits included.
func TestStrictReadsLinearizable(t *testing.T) {
	ctx := nubetest.Context(t, time.Minute)
	_, sp, cs, _ := spaceCluster(t, ctx, 3, cache.Options{Strict: true})
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var ops []porcupine.Operation
	add := func(client int, in regInput, out int, call, ret int64) {
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
		mu.Unlock()
	}
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i <= 60; i++ {
			call := now()
			if err := sp.PutBytes(ctx, "x", []byte(strconv.Itoa(i))); err != nil {
				t.Errorf("write: %v", err)
				break
			}
			add(0, regInput{write: true, value: i}, 0, call, now())
		}
		close(stop)
	})
	for r, x := range cs {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				call := now()
				v, err := x.Get(ctx, "x")
				if err != nil {
					// A strict Get that cannot reach the source fails; it
					// is no read, and the history leaves it out.
					failed.Add(1)
					t.Logf("strict get: %v", err)
					continue
				}
				n, _ := strconv.Atoi(string(v))
				add(r+1, regInput{}, n, call, now())
			}
		})
	}
	wg.Wait()
	hits := uint64(0)
	for _, x := range cs {
		hits += x.Stats().Hits
	}
	if f := failed.Load(); f*10 > int64(len(ops)) {
		t.Fatalf("%d strict gets failed beside %d operations", f, len(ops))
	}
	res := porcupine.CheckOperationsTimeout(registerModel, ops, time.Minute)
	if res != porcupine.Ok {
		t.Fatalf("strict reads: a history of %d operations is %v", len(ops), res)
	}
	t.Logf("%d operations linearizable, %d strict hits", len(ops), hits)
}
