package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/nubecloud/nube"
	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// Topics beside NATS, in one run on one loopback (bench/topics.sh prints
// the table). nats-server is embedded: the anchor runs in the same
// process, on the same cores, as nube's side.
//
//	BenchmarkTopicPublish/{jetstream-r3,nube-r3}   durable publish, 3 replicas,
//	                     1 KiB messages, 64 in flight awaiting their acks: msgs/s
//	BenchmarkTopicFanout/{nats,nube}-{10,100}       live fan-out to 10 and 100
//	                     subscribers, each its own connection (NATS) or node
//	                     (nube): p50-µs, p99-µs from publish to delivery
//	BenchmarkTopicRSS/{jetstream,nube}              the RSS of a process holding a
//	                     stream of -topic-mb MiB (1 GiB by default): rss-MiB

var topicMB = flag.Int("topic-mb", envInt("NUBE_BENCH_TOPIC_MB", 1024), "MiB the RSS benchmark retains (env NUBE_BENCH_TOPIC_MB)")

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// topicMsg is the size of a benchmark message; inFlight how many
// publishes await their acks at once.
const (
	topicMsg = 1 << 10
	inFlight = 64
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsServers starts n embedded nats-servers on loopback, routed into one
// cluster when n > 1, with JetStream on a temporary store if js.
func natsServers(tb testing.TB, n int, js bool) []*server.Server {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(tb)
	}
	var srvs []*server.Server
	for i := range n {
		o := &server.Options{Host: "127.0.0.1", Port: -1, ServerName: fmt.Sprintf("bench-%d", i), NoLog: true, NoSigs: true,
			JetStream: js, StoreDir: tb.TempDir()}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: ports[i]}
			for j, p := range ports {
				if j != i {
					o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
				}
			}
		}
		s, err := server.NewServer(o)
		if err != nil {
			tb.Fatalf("nats-server %d: %v", i, err)
		}
		s.Start()
		tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		srvs = append(srvs, s)
	}
	for i, s := range srvs {
		if !s.ReadyForConnections(30 * time.Second) {
			tb.Fatalf("nats-server %d not ready", i)
		}
	}
	return srvs
}

func natsConnect(tb testing.TB, s *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// jetStream is a JetStream client of s, and a stream of replicas copies
// on the subject "bench" keeping up to maxBytes.
func jetStream(tb testing.TB, s *server.Server, replicas int, maxBytes int64) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(natsConnect(tb, s), jetstream.WithPublishAsyncMaxPending(4*inFlight))
	if err != nil {
		tb.Fatal(err)
	}
	// A new cluster elects its meta leader first: until then a stream
	// cannot be made, and the first asks time out.
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench"}, Replicas: replicas,
			Storage: jetstream.FileStorage, MaxBytes: maxBytes})
		cancel()
		if err == nil {
			return js
		}
		if time.Now().After(deadline) {
			tb.Fatalf("JetStream R%d stream: %v", replicas, err)
		}
	}
}

// jsWindow publishes on JetStream with at most inFlight publishes
// awaiting their acks: past that, it waits for the oldest's.
type jsWindow struct {
	js      jetstream.JetStream
	pending chan jetstream.PubAckFuture
}

func newJSWindow(js jetstream.JetStream) *jsWindow {
	return &jsWindow{js: js, pending: make(chan jetstream.PubAckFuture, inFlight)}
}

func (w *jsWindow) publish(msg []byte) error {
	if len(w.pending) == inFlight {
		if err := w.await(<-w.pending); err != nil {
			return err
		}
	}
	f, err := w.js.PublishAsync("bench", msg)
	if err != nil {
		return err
	}
	w.pending <- f
	return nil
}

// drain waits for every ack still awaited.
func (w *jsWindow) drain() error {
	for len(w.pending) > 0 {
		if err := w.await(<-w.pending); err != nil {
			return err
		}
	}
	return nil
}

func (w *jsWindow) await(f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-time.After(time.Minute):
		return errors.New("no ack within a minute")
	}
}

// nubeDurable makes, on node 0 of c, a durable topic whose holders are
// the nodes placed names, retaining up to maxBytes, and checks that it
// takes a publish: an error names what nube's side lacks.
func nubeDurable(c *nubetest.C, placed []peer.ID, maxBytes int64) (*topic.Topic, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pol := space.Policy{Local: len(placed) == 0, On: placed}
	t, err := c.Node(0).Topics().Create(ctx, "bench", topic.Options{Retain: topic.Retention{Bytes: maxBytes}, Placement: pol})
	if err != nil {
		return nil, fmt.Errorf("create a durable topic: %w", err)
	}
	if _, err := t.Publish(ctx, make([]byte, topicMsg), topic.PublishOptions{}); err != nil {
		return nil, fmt.Errorf("publish on a durable topic: %w", err)
	}
	return t, nil
}

// publishAll publishes msg n times on t, inFlight at once, and returns
// the first error.
func publishAll(ctx context.Context, t *topic.Topic, msg []byte, n int) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := t.Publish(ctx, msg, topic.PublishOptions{}); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// BenchmarkTopicPublish: durable publish throughput, 3 replicas, 1 KiB
// messages, 64 in flight: JetStream R3 (three clustered servers) beside
// a nube topic held by three nodes (node 0, where it is published, and
// two others). Goal: nube ≥ 50% of JetStream's msgs/s.
func BenchmarkTopicPublish(b *testing.B) {
	msg := make([]byte, topicMsg)
	b.Run("jetstream-r3", func(b *testing.B) {
		srvs := natsServers(b, 3, true)
		js := jetStream(b, srvs[0], 3, 8<<30)
		w := newJSWindow(js)
		n := 0
		start := time.Now()
		for b.Loop() {
			if err := w.publish(msg); err != nil {
				b.Fatalf("JetStream: %v", err)
			}
			n++
		}
		if err := w.drain(); err != nil {
			b.Fatalf("JetStream: %v", err)
		}
		el := time.Since(start)
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(n*topicMsg)/el.Seconds()/1e6, "MB/s")
	})
	b.Run("nube-r3", func(b *testing.B) {
		// Node 0 publishes (as a NATS client does to its server); nodes 1
		// to 3 hold the topic: three replicas, as JetStream's R3.
		c := nubetest.Cluster(b, 4, nubetest.WithDataDirs(), nubetest.TrustFirst(1), nubetest.WithConfig(func(i int, cfg *nube.Config) {
			cfg.ListenAddrs = []string{transports["tcp"]}
		}))
		t, err := nubeDurable(c, []peer.ID{c.Node(1).ID(), c.Node(2).ID(), c.Node(3).ID()}, 8<<30)
		if err != nil {
			b.Fatalf("nube: %v", err)
		}
		ctx := context.Background()
		n := 0
		start := time.Now()
		jobs := make(chan struct{})
		var wg sync.WaitGroup
		var failed atomic.Int64
		var firstErr atomic.Value
		for range inFlight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					if _, err := t.Publish(ctx, msg, topic.PublishOptions{}); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		for b.Loop() {
			jobs <- struct{}{}
			n++
		}
		close(jobs)
		wg.Wait()
		el := time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("nube: %d publishes failed; the first: %v", failed.Load(), firstErr.Load())
		}
		// How many nodes held it, as the topic says: the figure is for
		// three.
		if info, err := t.Info(ctx); err == nil {
			b.ReportMetric(float64(len(info.Holders)), "holders")
		}
		b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
		b.ReportMetric(float64(n*topicMsg)/el.Seconds()/1e6, "MB/s")
	})
}

// latencies collects publish-to-delivery times and reports their p50
// and p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(stamp []byte) {
	if len(stamp) < 8 {
		return
	}
	d := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(stamp))))
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	pct := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// stamped is a message of topicMsg bytes whose first eight are the time.
func stamped() []byte {
	m := make([]byte, topicMsg)
	binary.BigEndian.PutUint64(m, uint64(time.Now().UnixNano()))
	return m
}

// BenchmarkTopicFanout: live fan-out latency, from publish to delivery,
// to 10 and 100 subscribers: NATS core (each subscriber its own
// connection to one server) beside a live nube topic (each subscriber
// its own node). One message at a time: the next is published once every
// subscriber got the last, so the figures are latency, not queueing.
// Goal: nube's p50 and p99 within 2x of NATS core's.
//
// Starting a hundred nodes in one process takes minutes on two cores:
// NUBE_BENCH_FANOUT=10 (bench/topics.sh --quick) measures 10 only.
func BenchmarkTopicFanout(b *testing.B) {
	var sizes []int
	for _, f := range strings.Split(envString("NUBE_BENCH_FANOUT", "10,100"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("NUBE_BENCH_FANOUT: %q is not a number of subscribers", f)
		}
		sizes = append(sizes, n)
	}
	for _, subs := range sizes {
		b.Run(fmt.Sprintf("nats-%d", subs), func(b *testing.B) {
			srv := natsServers(b, 1, false)[0]
			var lat latencies
			got := make(chan struct{}, subs)
			for range subs {
				nc := natsConnect(b, srv)
				if _, err := nc.Subscribe("fan", func(m *nats.Msg) { lat.add(m.Data); got <- struct{}{} }); err != nil {
					b.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			pub := natsConnect(b, srv)
			for b.Loop() {
				if err := pub.Publish("fan", stamped()); err != nil {
					b.Fatal(err)
				}
				awaitAll(b, got, subs)
			}
			lat.report(b)
		})
		b.Run(fmt.Sprintf("nube-%d", subs), func(b *testing.B) {
			opts := []nubetest.Option{nubetest.TrustFirst(1), nubetest.WithTimeout(time.Duration(subs) * 10 * time.Second), nubetest.WithConfig(func(i int, cfg *nube.Config) {
				cfg.ListenAddrs = []string{transports["tcp"]}
			})}
			if subs > 20 {
				// A hundred nodes reach each other through the first
				// and the DHT, not every pair.
				opts = append(opts, nubetest.BootstrapOnly())
			}
			c := nubetest.Cluster(b, subs+1, opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var lat latencies
			got := make(chan struct{}, subs)
			t, err := nubeFanout(ctx, b, c, &lat, got)
			if err != nil {
				b.Fatalf("nube: %v", err)
			}
			for b.Loop() {
				if _, err := t.Publish(ctx, stamped(), topic.PublishOptions{}); err != nil {
					b.Fatalf("nube: publish: %v", err)
				}
				awaitAll(b, got, subs)
			}
			lat.report(b)
		})
	}
}

// nubeFanout makes a live topic on node 0 of c, grants every other node's
// user the right to subscribe, subscribes each, and waits until every
// one gets what node 0 publishes, and returns the topic. Each delivery
// adds its latency to lat and a token to got.
func nubeFanout(ctx context.Context, b *testing.B, c *nubetest.C, lat *latencies, got chan struct{}) (*topic.Topic, error) {
	owner := c.Node(0)
	t, err := owner.Topics().Create(ctx, "fanout", topic.Options{})
	if err != nil {
		return nil, fmt.Errorf("create a live topic: %w", err)
	}
	ready := make(chan int, len(c.Nodes()))
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait)
	for i, n := range c.Nodes()[1:] {
		if _, err := t.Grant(ctx, n.UserID(), topic.Subscribe, time.Time{}); err != nil {
			return nil, fmt.Errorf("grant node %d: %w", i+1, err)
		}
		h, err := n.Topics().Open(ctx, owner.UserID(), "fanout")
		if err != nil {
			return nil, fmt.Errorf("open on node %d: %w", i+1, err)
		}
		sub, err := h.Subscribe(ctx, topic.SubscribeOptions{})
		if err != nil {
			return nil, fmt.Errorf("subscribe on node %d: %w", i+1, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			warm := true
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if len(m.Data) == 1 { // a warm-up probe
					if warm {
						warm = false
						ready <- i
					}
					continue
				}
				lat.add(m.Data)
				got <- struct{}{}
			}
		}()
	}
	// Probes until every subscriber has one: the mesh is formed.
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for have := 0; have < len(c.Nodes())-1; {
		select {
		case <-ready:
			have++
		case <-tick.C:
			if _, err := t.Publish(ctx, []byte{0}, topic.PublishOptions{}); err != nil {
				return nil, fmt.Errorf("publish a probe: %w", err)
			}
		case <-deadline:
			return nil, fmt.Errorf("after two minutes of probes, %d of %d subscribers got one", have, len(c.Nodes())-1)
		}
	}
	return t, nil
}

// awaitAll waits for n deliveries.
func awaitAll(b *testing.B, got chan struct{}, n int) {
	timeout := time.After(30 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-got:
		case <-timeout:
			b.Fatalf("%d of %d subscribers got the message within 30 s", i, n)
		}
	}
}

// rssResult is what the RSS child reports.
type rssResult struct {
	Idle, Held, Peak int64 // bytes: after start, holding the stream after a GC, the high-water mark
	Stored           int64 // bytes the stream holds
	Error            string
}

// BenchmarkTopicRSS: the memory of a process holding a stream of
// -topic-mb MiB, each side in a child process of its own (this test
// binary, run again): a JetStream stream on one embedded server beside a
// durable nube topic on one node, both on disk. Goal: nube under 128 MiB
// holding 1 GiB.
func BenchmarkTopicRSS(b *testing.B) {
	for _, side := range []string{"jetstream", "nube"} {
		b.Run(side, func(b *testing.B) {
			var r rssResult
			for b.Loop() {
				r = rssChild(b, side)
			}
			if r.Error != "" {
				b.Fatalf("%s: %s", side, r.Error)
			}
			b.ReportMetric(float64(r.Held)/(1<<20), "rss-MiB")
			b.ReportMetric(float64(r.Peak)/(1<<20), "peak-MiB")
			b.ReportMetric(float64(r.Idle)/(1<<20), "idle-MiB")
			b.ReportMetric(float64(r.Stored)/(1<<20), "held-MiB")
		})
	}
}

// rssChild runs TestTopicRSSChild as side in a process of its own and
// returns what it reports.
func rssChild(b *testing.B, side string) rssResult {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestTopicRSSChild$", "-test.v")
	cmd.Env = append(os.Environ(), "NUBE_TOPIC_RSS_SIDE="+side, fmt.Sprintf("NUBE_BENCH_TOPIC_MB=%d", *topicMB))
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(strings.TrimSpace(line), "rss-result "); ok {
			var r rssResult
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				b.Fatalf("%s child: %v", side, err)
			}
			return r
		}
	}
	b.Fatalf("%s child printed no result (%v):\n%s", side, err, out)
	return rssResult{}
}

// TestTopicRSSChild is BenchmarkTopicRSS's child: it fills a stream of
// NUBE_BENCH_TOPIC_MB MiB on the side NUBE_TOPIC_RSS_SIDE names and
// prints the process's memory. Run by itself it does nothing.
func TestTopicRSSChild(t *testing.T) {
	side := os.Getenv("NUBE_TOPIC_RSS_SIDE")
	if side == "" {
		t.Skip("not a test: the child process of BenchmarkTopicRSS, which sets its env (skipped in short mode and alone)")
	}
	size := int64(envInt("NUBE_BENCH_TOPIC_MB", 1024)) << 20
	n := int(size / topicMsg)
	r := rssResult{}
	defer func() {
		j, _ := json.Marshal(r)
		fmt.Printf("rss-result %s\n", j)
	}()
	msg := make([]byte, topicMsg)
	switch side {
	case "jetstream":
		srv := natsServers(t, 1, true)[0]
		js := jetStream(t, srv, 1, 2*size)
		r.Idle = rss("VmRSS")
		w := newJSWindow(js)
		for range n {
			if err := w.publish(msg); err != nil {
				r.Error = err.Error()
				return
			}
		}
		if err := w.drain(); err != nil {
			r.Error = err.Error()
			return
		}
		st, err := js.Stream(context.Background(), "BENCH")
		if err != nil {
			r.Error = err.Error()
			return
		}
		info, err := st.Info(context.Background())
		if err != nil {
			r.Error = err.Error()
			return
		}
		r.Stored = int64(info.State.Bytes)
	case "nube":
		c := nubetest.Cluster(t, 1, nubetest.WithDataDirs())
		tp, err := nubeDurable(c, nil, 2*size)
		if err != nil {
			r.Error = err.Error()
			return
		}
		r.Idle = rss("VmRSS")
		if err := publishAll(context.Background(), tp, msg, n); err != nil {
			r.Error = "publish: " + err.Error()
			return
		}
		info, err := tp.Info(context.Background())
		if err != nil {
			r.Error = "info: " + err.Error()
			return
		}
		r.Stored = info.Bytes
	default:
		r.Error = "no side " + side
		return
	}
	runtime.GC()
	debug.FreeOSMemory()
	r.Held, r.Peak = rss("VmRSS"), rss("VmHWM")
	if r.Held == 0 {
		r.Error = errors.New("no /proc/self/status here: RSS is read on Linux").Error()
	}
}

// rss reads a field of /proc/self/status in bytes (0 off Linux).
func rss(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
