package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	mh "github.com/multiformats/go-multihash"

	"github.com/nubecloud/nube/internal/p2p"
	"github.com/nubecloud/nube/nubetest"
)

// TestDHTScale builds nube's DHT (the same protocol and mode as a node's)
// on lightweight hosts joined by an in-memory network with 10 ms of
// latency per link, at each size in NUBE_DHT_SIZES (default "20,100";
// bench/dht.sh runs "20,100,1000"), and measures what a lookup costs: for
// 40 random pairs, finding a peer and finding a provider of a CID, the
// peers asked (each one a request) and the time taken. Goals: every lookup
// succeeds, and the peers asked grow with the logarithm of the size (at
// most 3·log2(n) + 20 at the 95th percentile). It prints RESULT lines.
func TestDHTScale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hundreds of DHT nodes; skipped in -short mode")
	}
	sizes := []int{20, 100}
	if env := os.Getenv("NUBE_DHT_SIZES"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				t.Fatalf("NUBE_DHT_SIZES=%q: want sizes of 2 or more, such as 20,100,1000", env)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) { dhtScale(t, n) })
	}
}

func dhtScale(t *testing.T, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewSource(int64(n)))
	mn := mocknet.New()
	defer mn.Close()
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: 10 * time.Millisecond})
	hosts := make([]host.Host, n)
	kads := make([]*dht.IpfsDHT, n)
	for i := range n {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		kad, err := dht.New(h, dht.ProtocolPrefix(p2p.DHTPrefix), dht.Mode(dht.ModeServer))
		if err != nil {
			t.Fatal(err)
		}
		hosts[i], kads[i] = h, kad
		defer kad.Close()
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	// Each node joins through three earlier ones, as bootstrap peers,
	// then every node refreshes its table, as a node does at start.
	for i := 1; i < n; i++ {
		for range min(3, i) {
			j := rng.Intn(i)
			if _, err := mn.ConnectPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A peer enters a table once identify has shown it speaks the DHT,
	// a moment after it connects; no event says so, so poll.
	start := time.Now()
	for i, kad := range kads {
		nubetest.Eventually(t, ctx, func() bool { return kad.RoutingTable().Size() > 0 },
			func() string { return fmt.Sprintf("node %d's table stayed empty", i) })
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, kad := range kads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			<-kad.RefreshRoutingTable()
		}()
	}
	wg.Wait()
	t.Logf("%d nodes joined in %v", n, time.Since(start).Round(time.Millisecond))

	const lookups = 40
	var peerAsked, provAsked []int
	var peerTime, provTime []time.Duration
	for k := range lookups {
		from, to := rng.Intn(n), rng.Intn(n)
		for to == from {
			to = rng.Intn(n)
		}
		// A node that is not connected to the target: a real lookup.
		mn.DisconnectPeers(hosts[from].ID(), hosts[to].ID())
		hosts[from].Peerstore().ClearAddrs(hosts[to].ID())
		asked, took, err := countQueries(ctx, func(ctx context.Context) error {
			ai, err := kads[from].FindPeer(ctx, hosts[to].ID())
			if err == nil && ai.ID != hosts[to].ID() {
				err = fmt.Errorf("found %s instead", ai.ID)
			}
			return err
		})
		if err != nil {
			t.Fatalf("lookup %d: node %d finding node %d among %d: %v", k, from, to, n, err)
		}
		peerAsked, peerTime = append(peerAsked, asked), append(peerTime, took)

		sum := sha256.Sum256([]byte(fmt.Sprintf("content %d/%d", n, k)))
		c := cid.NewCidV1(cid.Raw, must(mh.Encode(sum[:], mh.SHA2_256)))
		pctx, pcancel := context.WithTimeout(ctx, time.Minute)
		err = kads[to].Provide(pctx, c, true)
		pcancel()
		if err != nil {
			t.Fatalf("provide %d: %v", k, err)
		}
		asked, took, err = countQueries(ctx, func(ctx context.Context) error {
			for ai := range kads[from].FindProvidersAsync(ctx, c, 1) {
				if ai.ID == hosts[to].ID() {
					return nil
				}
			}
			return fmt.Errorf("no provider of %s found", c)
		})
		if err != nil {
			t.Fatalf("provider lookup %d: node %d, provider node %d, among %d: %v", k, from, to, n, err)
		}
		provAsked, provTime = append(provAsked, asked), append(provTime, took)
	}
	goal := 3*log2(n) + 20
	for _, m := range []struct {
		what  string
		asked []int
		took  []time.Duration
	}{{"find peer", peerAsked, peerTime}, {"find provider", provAsked, provTime}} {
		p50, p95 := percentile(m.asked, 50), percentile(m.asked, 95)
		fmt.Printf("RESULT dht %d nodes, %s: peers asked p50 %d p95 %d (goal p95 <= %d); time p50 %v p95 %v (10 ms links)\n",
			n, m.what, p50, p95, goal, percentileD(m.took, 50), percentileD(m.took, 95))
		if p95 > goal {
			t.Errorf("%s among %d nodes asked %d peers at the 95th percentile, over the %d of a logarithmic search", m.what, n, p95, goal)
		}
	}
}

// countQueries runs lookup and counts the peers it sends a query to.
func countQueries(ctx context.Context, lookup func(context.Context) error) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	qctx, events := routing.RegisterForQueryEvents(ctx)
	asked := map[peer.ID]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range events {
			if ev.Type == routing.SendingQuery {
				asked[ev.ID] = true
			}
		}
	}()
	start := time.Now()
	err := lookup(qctx)
	took := time.Since(start)
	cancel()
	<-done
	return len(asked), took, err
}

func log2(n int) int {
	k := 0
	for m := n; m > 1; m >>= 1 {
		k++
	}
	return k
}

func percentile(xs []int, p int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func percentileD(xs []time.Duration, p int) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(time.Millisecond)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
