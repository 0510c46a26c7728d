package topic_test

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nubecloud/nube/nubetest"
	"github.com/nubecloud/nube/topic"
)

// BenchmarkDurablePublish publishes 1 KiB messages to a topic of 3
// holders with 64 publishes in flight, each awaited until a majority
// stored it (the figure, beside NATS JetStream R3's).
func BenchmarkDurablePublish(b *testing.B) {
	c := nubetest.Cluster(b, 4, nubetest.WithConfig(fast), nubetest.WithDataDirs())
	ctx := nubetest.Context(b, 5*time.Minute)
	tp := durableTopicB(b, c, "bench", []int{1, 2, 3})
	msg := bytes.Repeat([]byte("x"), 1024)
	if _, err := tp.Publish(ctx, msg, topic.PublishOptions{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := tp.Publish(ctx, msg, topic.PublishOptions{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

func durableTopicB(b *testing.B, c *nubetest.C, name string, on []int) *topic.Topic {
	b.Helper()
	return durableTopicTB(b, nubetest.Context(b, time.Minute), c, name, topic.Retention{Count: 1 << 30}, on...)
}
