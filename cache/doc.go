// Package cache keeps a source's values in the memory of the nodes that
// read them, and drops them when the source changes, driven by the
// source's own change stream rather than by the program that writes.
//
//	src, _ := node.SpaceSource("OWNER/NAME")     // or GroupSource, Loader
//	c, _ := node.Cache(ctx, src, cache.Options{}) // one line
//	v, err := c.Get(ctx, "key")
//
// # Where a value comes from
//
// A Get is served from this node's memory; else from the key's owner
// among the nodes that use the cache (rendezvous hashing over them, so a
// node that comes or goes moves only its own share of keys); else the
// owner loads it from the source once, however many nodes and goroutines
// ask at once: each node sends one call per key to the owner, and the
// owner makes one load per key. A node that reads a key another owns
// HotReads times keeps a copy of it. The nodes of a cache find each other
// by greeting their connected peers (nube.cache.hello) when the cache
// opens and every ten seconds after, and through Options.Peers; a peer
// that does not answer leaves the ring until it greets again.
//
// A space is read under this node's user's grant; an owner serves a
// peer only after checking the peer's cert and grant chain against the
// space's newest head (revocations included). A group's map is cached by
// its members (a group's change stream is its members' own). A Loader is
// a program's own load and version functions.
//
// # What it guarantees
//
// Every node follows the source's change stream (a space's heads through
// Watch, a group's log through Watch) and drops the entries a change
// names, and every third of the bound it asks the source's version (a
// heartbeat). Then, with the bound B (Options.Bound, one second by
// default):
//
//   - A change the source acknowledged more than B before a Get began is
//     never hidden by an entry: an entry is served only while the source
//     confirmed, less than B ago, that this node had applied every change
//     up to then. A stream that stays behind the heartbeat for a beat has
//     missed something, and every entry older than the version seen goes.
//     While the network is healthy a change reaches the readers in about
//     the time of one message from the source (see bench/cache.sh).
//   - So an entry whose invalidations cannot be confirmed (a partition
//     from the source) is not served past B: the Get goes to the source,
//     and fails if it cannot be reached.
//   - A fill that began before an invalidation of its key is discarded
//     (its lease is broken) and the key loaded again: no Get returns a
//     value older than an invalidation it raced.
//   - A writer that writes through the cache (Put, Delete) reads its own
//     write at once: the write drops the key here and on its owner, and
//     the next Get asks for at least the write's version. A write made
//     straight to the source is seen within B, as any other.
//   - Options.Strict asks the source's version on each Get (one small
//     round trip) and serves an entry only if this node has applied every
//     change up to it; else it loads. Strict reads are linearizable.
//   - A reader whose grant is revoked has its entries dropped and its
//     Gets refused (ErrNotAuthorised).
//
// # Bounds
//
// Each cache keeps at most Options.MaxBytes of values on a node, and all
// caches of a node at most Config.MaxBytes; a value over
// Options.MaxEntry is served but not kept. Past a bound the least
// recently used entry goes (LRU: O(1) on each hit, and it is what
// groupcache and memcached do; a scan-resistant policy buys little when
// invalidation already removes what changed). The node's metrics
// (nube_cache_hits_total, remote_hits, misses, loads, invalidations,
// evictions, stale_fills) count over all its caches.
package cache
