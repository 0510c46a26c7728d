package topic

import "hash/maphash"

// recentKeys answers most dedup lookups without reading the log: a bloom
// filter of the publish IDs stored in the last two generations, each at
// least DedupWindow long by the log's clock. It only says "not seen" for
// sure; "maybe" falls through to the 'i' keys on disk, so every holder
// reaches the same verdict. A key stored before the filter began (before
// this process opened the log, or restored it) is not in it: until the
// dedup window has passed since then, every lookup reads the log.
type recentKeys struct {
	seed  maphash.Seed
	from  int64 // log time the filter began at
	start int64 // log time the current generation began at
	cur   keyFilter
	prev  keyFilter
}

type keyFilter struct {
	bits []uint64
	n    int // keys added
}

// Sizes of a generation's filter, in bits: the next generation is sized
// for about ten bits per key of the last one.
const (
	minFilterBits = 1 << 16 // 8 KiB
	maxFilterBits = 1 << 25 // 4 MiB
	filterHashes  = 4
)

func newRecentKeys(now int64) *recentKeys {
	return &recentKeys{seed: maphash.MakeSeed(), from: now, start: now, cur: newKeyFilter(minFilterBits)}
}

func newKeyFilter(bits int) keyFilter { return keyFilter{bits: make([]uint64, bits/64)} }

func (b *keyFilter) probe(h uint64, set bool) bool {
	m := uint64(len(b.bits) * 64)
	h1, h2 := h, h>>32|1
	for i := range uint64(filterHashes) {
		x := (h1 + i*h2) % m
		w, bit := x/64, uint64(1)<<(x%64)
		if set {
			b.bits[w] |= bit
		} else if b.bits[w]&bit == 0 {
			return false
		}
	}
	return true
}

// rotate starts a new generation once the current one is DedupWindow old.
func (r *recentKeys) rotate(now int64) {
	if now-r.start < int64(DedupWindow) {
		return
	}
	size := minFilterBits
	for size < maxFilterBits && size < 10*r.cur.n {
		size *= 2
	}
	r.prev, r.cur, r.start = r.cur, newKeyFilter(size), now
}

// add records key, stored at now.
func (r *recentKeys) add(key string, now int64) {
	r.rotate(now)
	r.cur.n++
	r.cur.probe(maphash.String(r.seed, key), true)
}

// absent reports whether key was surely not stored within the dedup
// window before now.
func (r *recentKeys) absent(key string, now int64) bool {
	r.rotate(now)
	if now-int64(DedupWindow) <= r.from {
		return false // keys from before the filter may still count
	}
	h := maphash.String(r.seed, key)
	return !r.cur.probe(h, false) && (r.prev.bits == nil || !r.prev.probe(h, false))
}
