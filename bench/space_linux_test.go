package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/space"
)

// BenchmarkSpaceMigrate moves a space of NUBE_BENCH_MB mebibytes (256 by
// default) from one holder to another and back, as `nube space migrate`
// does; bench/space.sh profiles it to say what bounds it.
func BenchmarkSpaceMigrate(b *testing.B) {
	c, own, _ := spaceCluster(b)
	ctx := context.Background()
	size := benchSize()
	const value = 64 << 20
	for i := int64(0); i*value < size; i++ {
		if err := own.Put(ctx, fmt.Sprint("v", i), newRandom(min(value, size-i*value), i)); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
	b.ResetTimer()
	cpu0, wall0 := cpuTime(), time.Now()
	var wall time.Duration
	for i := range b.N {
		to := c.Node(2).ID()
		if i%2 == 1 {
			to = c.Node(1).ID()
		}
		if err := own.Migrate(ctx, space.Policy{On: []peer.ID{to}}, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		wall += time.Since(wall0)
		cpu := cpuTime()
		// The node left gets rid of its copy before it is a target again.
		for _, n := range []*nube.Node{c.Node(1), c.Node(2)} {
			if _, err := n.Content().GC(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cpu0 += cpuTime() - cpu // GC's CPU is not the migration's
		wall0 = time.Now()
		b.StartTimer()
	}
	// CPU seconds per second of migration, all three nodes together: on
	// this 2-core machine, near 2 means the CPU bounds it.
	b.ReportMetric((cpuTime()-cpu0).Seconds()/wall.Seconds(), "cpu-s/s")
}
