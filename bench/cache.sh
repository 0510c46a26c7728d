#!/usr/bin/env bash
# bench/cache.sh: nube's caches beside a Go map and groupcache, in one run
# on one loopback (groupcache github.com/golang/groupcache, its second
# peer a child process, over its HTTP pool).
#
#   hit on the local node                    vs a map behind a mutex   goal ≤ 2.0
#   hit on the key's owner, another node     vs groupcache remote hit  goal ≤ 1.2
#   space key read by a non-holder, cached   vs read without a cache   goal ≥ 5x faster
#     at a 90% hit rate
#   invalidation reaching 10 readers, p50 and p99, beside a remote round trip
#
#   bench/cache.sh             # one run
#   COUNT=3 bench/cache.sh     # medians of 3 runs
#   RAW=1 bench/cache.sh       # also print the raw go test output
set -uo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-1}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./bench -run '^$' -count "$count" -benchtime 200000x -bench 'CacheLocalHit' >"$out" 2>&1
go test ./bench -run '^$' -count "$count" -benchtime 5000x -bench 'CacheRemoteHit' >>"$out" 2>&1
go test ./bench -run '^$' -count "$count" -benchtime 2000x -bench 'CacheSpaceRead' >>"$out" 2>&1
go test ./bench -run '^$' -count "$count" -benchtime 200x -timeout 20m -bench 'CacheInvalidation' >>"$out" 2>&1
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
row "hit, local node" "$(median CacheLocalHit/nube ns/op)" "$(median CacheLocalHit/map ns/op)" ns "≤ 2.0 of a map behind a mutex"
row "hit, owner node" "$(median CacheRemoteHit/nube ns/op)" "$(median CacheRemoteHit/groupcache ns/op)" µs "≤ 1.2 of groupcache's remote hit" 1000
row "space read, non-holder" "$(median CacheSpaceRead/cached ns/op)" "$(median CacheSpaceRead/direct ns/op)" µs "≤ 0.2 of no cache (≥ 5x), at $(median CacheSpaceRead/cached hit-%)% hits" 1000
row "invalidation to 10, p50" "$(median CacheInvalidation p50-µs)" "$(median CacheInvalidation rtt-µs)" µs "beside a round trip to the home"
row "invalidation to 10, p99" "$(median CacheInvalidation p99-µs)" "$(median CacheInvalidation rtt-µs)" µs "beside a round trip to the home"
echo "(latency counts from the write's call; the write itself took $(median CacheInvalidation write-µs) µs at p50)"
echo "(the remote layer's own call, listing functions: $(median CacheRemoteHit/nube-call ns/op) ns)"
echo
echo "medians of $count runs; loopback, one process (groupcache's peer: a child process), $(nproc) cores"
if grep -Eq '^ +cache_test.go:[0-9]+: ' "$out"; then
	echo
	grep -E '^ +cache_test.go:[0-9]+: ' "$out" | sed -E 's/^ +cache_test.go:[0-9]+: /failed: /' | sort -u
fi
