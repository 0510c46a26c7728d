package nubetest

import "go.uber.org/goleak"

// LeakOptions are the goleak options for packages that run nodes: they
// ignore the few goroutines that libraries below us start once per process
// and never stop, so that goleak reports only goroutines nube leaked.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		// go-log's process-wide log pipeline.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		// opencensus's process-wide stats worker (pulled in by go-libp2p-kad-dht).
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		// libp2p's UPnP gateway search (on only when port mapping is, as in
		// the zero-Config test) cannot be cancelled; it ends by itself
		// after its few-second SSDP timeout, after the host has closed.
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/net/nat/internal/nat.discoverNATs.func1"),
		goleak.IgnoreAnyFunction("github.com/koron/go-ssdp/internal/multicast.(*Conn).ReadPackets"),
		// go-flow-metrics' process-wide sweeper, which turns the bandwidth
		// counters' bytes into rates once a second.
		goleak.IgnoreAnyFunction("github.com/libp2p/go-flow-metrics.(*sweeper).run"),
	}
}
