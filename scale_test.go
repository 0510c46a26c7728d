package nube_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
)

// TestHundredNodes starts 100 real nodes in one process (NUBE_SCALE_NODES
// changes the number), each knowing only the first: through the DHT alone
// any node finds any other it is not connected to, a node that was told
// nothing finds the providers of a file, and it fetches the file from many
// of them at once. About 30 s and 2 GB: -short skips it.
func TestHundredNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("100 nodes take about 30 s and 2 GB; run without -short")
	}
	n := 100
	if v, err := strconv.Atoi(os.Getenv("NUBE_SCALE_NODES")); err == nil && v >= 12 {
		n = v
	}
	start := time.Now()
	// Every node joins through the first, which must take them all: at a
	// test node's 128 MiB its resource manager admits about 70 inbound
	// connections, as a small machine's would. A bootstrap node of a large
	// network is given more.
	c := nubetest.Cluster(t, n, nubetest.BootstrapOnly(), nubetest.WithTimeout(5*time.Minute),
		nubetest.WithConfig(func(i int, cfg *nube.Config) {
			if i == 0 {
				cfg.MaxMemory = 2 << 30
			}
		}))
	ctx := nubetest.Context(t, 5*time.Minute)
	t.Logf("%d nodes up and their DHT tables refreshed in %v", n, time.Since(start).Round(time.Millisecond))
	rng := rand.New(rand.NewSource(1))

	for k := range 20 {
		from, to := c.Node(1+rng.Intn(n-1)), c.Node(1+rng.Intn(n-1))
		if from == to {
			continue
		}
		from.Sys().Host().Network().ClosePeer(to.ID())
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		ai, err := from.Sys().FindPeer(fctx, to.ID())
		cancel()
		if err != nil || len(ai.Addrs) == 0 {
			t.Fatalf("lookup %d: %s could not find %s among %d nodes: %v", k, from.ID(), to.ID(), n, err)
		}
	}

	// A file on ten providers, fetched by a node connected to none of
	// them that knows only the first node.
	data := randomData(8 << 20)
	root, err := c.Node(1).Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for i := 2; i <= 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.Node(i).Content().Pin(ctx, root, "", nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("pin on a provider: %v", err)
		}
	}
	fetcher := c.Node(n - 1)
	for i := 1; i <= 10; i++ {
		fetcher.Sys().Host().Network().ClosePeer(c.Node(i).ID())
	}
	if err := fetcher.Content().Fetch(ctx, root, nil); err != nil {
		t.Fatalf("fetch from ten providers among %d nodes: %v", n, err)
	}
	f, err := fetcher.Content().Get(ctx, root.String())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil || size != int64(len(data)) || !bytes.Equal(h.Sum(nil), sha(data)) {
		t.Fatalf("fetched %d bytes that differ from the %d added (%v)", size, len(data), err)
	}
	served := 0
	for _, st := range fetcher.Content().Received() {
		if st.Blocks > 0 {
			served++
		}
	}
	t.Logf("%d providers served the fetch", served)
	if served < 3 {
		t.Errorf("only %d of ten providers served the fetch", served)
	}
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(int64(n))).Read(b)
	return b
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
