package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nubecloud/nube/names"
	"github.com/nubecloud/nube/nubetest"
)

// TestNameResolve measures `name resolve` of a fresh record published by
// another node of the same DHT: an in-process cluster of NUBE_NAMES_NODES
// nodes (default 10) on loopback, each round a new key on one node
// publishing, and another node, which never saw the name, resolving it
// (no cache). Goal: an order of magnitude under kubo's 30-90 s resolves on
// the public DHT; the p50 and p95 are printed as RESULT lines. kubo's own
// resolve in the same namespace is TestKuboInterop's (it needs ipfs on
// PATH).
func TestNameResolve(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and resolves many names; skipped in -short mode")
	}
	n := 10
	if s := os.Getenv("NUBE_NAMES_NODES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 {
			t.Fatalf("NUBE_NAMES_NODES=%q: want 2 or more", s)
		}
	}
	const rounds = 40
	c := nubetest.Cluster(t, n, nubetest.BootstrapOnly())
	ctx := nubetest.Context(t, 10*time.Minute)
	var took, pub []time.Duration
	for i := range rounds {
		a, b := c.Node(i%n), c.Node((i+1+i/n)%n)
		if a == b {
			b = c.Node((i + 1) % n)
		}
		k, err := a.Names().Gen(fmt.Sprintf("bench-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := a.Names().Publish(ctx, k.Name, "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am", names.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		pub = append(pub, time.Since(t0))
		t0 = time.Now()
		r, err := b.Names().Resolve(ctx, k.ID)
		if err != nil {
			t.Fatalf("round %d: resolve %s on another node: %v", i, k.ID, err)
		}
		took = append(took, time.Since(t0))
		if r.Path != "/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am" {
			t.Fatalf("resolved to %s", r.Path)
		}
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1)+0.5)]
	}
	fmt.Printf("RESULT name resolve, %d nodes, %d fresh names: p50 %v  p95 %v  (goal: under 3 s, a tenth of kubo's 30 s)\n",
		n, rounds, pct(took, 0.5).Round(time.Microsecond), pct(took, 0.95).Round(time.Microsecond))
	fmt.Printf("RESULT name publish (nube's DHT):           p50 %v  p95 %v\n",
		pct(pub, 0.5).Round(time.Microsecond), pct(pub, 0.95).Round(time.Microsecond))
}
