package cache

import "github.com/prometheus/client_golang/prometheus"

// metrics are the node's, over all its caches (a label per cache would
// let peers' names grow the series without bound).
type metrics struct {
	hits                                                       prometheus.CounterFunc
	remoteHits, misses, loads, invalidations, evictions, stale prometheus.Counter
}

// newMetrics makes the metrics; hits reads the caches' own counts, so
// that a hit costs one atomic add, not two.
func newMetrics(reg prometheus.Registerer, hits func() float64) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "nube", Subsystem: "cache", Name: name, Help: help})
	}
	m := &metrics{
		hits: prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nube", Subsystem: "cache", Name: "hits_total",
			Help: "Gets served from this node's memory."}, hits),
		remoteHits:    c("remote_hits_total", "Gets served by the key's owner node."),
		misses:        c("misses_total", "Gets this node's memory could not serve."),
		loads:         c("loads_total", "Reads of a source by this node."),
		invalidations: c("invalidations_total", "Entries dropped because their source changed."),
		evictions:     c("evictions_total", "Entries dropped to stay within a memory bound."),
		stale:         c("stale_fills_total", "Fills discarded because an invalidation came during them."),
	}
	if reg != nil {
		for _, x := range []prometheus.Collector{m.hits, m.remoteHits, m.misses, m.loads, m.invalidations, m.evictions, m.stale} {
			if err := reg.Register(x); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
