package topic_test

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/space"
	"github.com/nubecloud/nube/topic"
)

// rss is the process's resident memory, from /proc.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status (permission or platform): %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS in /proc/self/status (permission or platform)")
	return 0
}

// TestMemoryOneGiB: a node holding a durable topic of 1 GiB retained
// stays under 128 MiB of resident memory, after writing it and after
// reading it all back: the log lives on disk. It is the goal, not
// yet met (370 MiB after writing, 647 MiB at peak when last measured), so
// it runs only when NUBE_TOPIC_MEMORY is set; bench/topics.sh prints the
// same figure beside JetStream's (TopicRSS).
func TestMemoryOneGiB(t *testing.T) {
	if testing.Short() || os.Getenv("NUBE_TOPIC_MEMORY") == "" {
		t.Skip("short, or NUBE_TOPIC_MEMORY unset: writes 1 GiB to check a goal not yet met; bench/topics.sh prints the figure")
	}
	// The process's memory is what is measured: run in a fresh one, not
	// after the other tests.
	if os.Getenv("NUBE_TOPIC_MEMORY_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryOneGiB$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "NUBE_TOPIC_MEMORY_CHILD=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a process of its own:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	c := nubetest.Cluster(t, 1, nubetest.WithDataDirs())
	ctx := nubetest.Context(t, 5*time.Minute)
	tp, err := c.Node(0).Topics().Create(ctx, "big", topic.Options{Retain: topic.Retention{Bytes: 2 << 30}, Placement: space.Policy{Local: true}})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	base := rss(t)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB
	const total = 1 << 30
	n := total / len(msg)
	var next atomic.Int64
	var wg sync.WaitGroup
	var peak atomic.Int64
	sample := func() {
		if r := rss(t); r > peak.Load() {
			peak.Store(r)
		}
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := tp.Publish(ctx, msg, topic.PublishOptions{}); err != nil {
					t.Error(err)
					return
				}
				if i%256 == 0 {
					sample()
				}
			}
		}()
	}
	wg.Wait()
	info, err := tp.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes < total {
		t.Fatalf("the log holds %d bytes", info.Bytes)
	}
	writePeak := peak.Load()
	if f, err := os.Create("/tmp/topic-heap.out"); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	runtime.GC()
	debug.FreeOSMemory()
	after := rss(t)
	s, err := tp.Subscribe(ctx, topic.SubscribeOptions{From: topic.FromOffset(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset != uint64(i)+1 { // offsets count from 1
			t.Fatalf("offset %d, want %d", m.Offset, i+1)
		}
		if i%256 == 0 {
			sample()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("1 GiB retained (%d messages): RSS %d MiB before, peak %d MiB writing, %d MiB after writing, peak %d MiB reading it all back (goal: under 128 MiB); heap in use now %d MiB, Go runtime holds %d MiB (%d MiB released)", n, base>>20, writePeak>>20, after>>20, peak.Load()>>20, ms.HeapInuse>>20, (ms.Sys-ms.HeapReleased)>>20, ms.HeapReleased>>20)
	// The goal holds at rest; while 256 KiB messages are written or read
	// at full speed the garbage of their copies lifts the peak above it
	// (see the report): the bound below guards against a regression that
	// would keep the log in memory.
	if after > 128<<20 {
		t.Errorf("RSS after writing 1 GiB is %d MiB, over 128 MiB", after>>20)
	}
	if p := peak.Load(); p > 192<<20 {
		t.Errorf("RSS peaked at %d MiB, over 192 MiB", p>>20)
	}
}
