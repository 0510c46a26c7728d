#!/usr/bin/env bash
# bench/space.sh: a space's puts, gets and migration beside what they are
# built on, measured in the same run: a bare remote call round trip, a
# bare content add and fetch of the same bytes. Three nodes in one process
# on loopback TCP: the owner's (home), a holder, a reader with a grant.
#
# Each pair is measured in the same loop, turn about, so that whatever else
# the machine does weighs on both alike.
#
#   get 1 KiB, head cached     vs a remote call round trip          goal ≤ 2.0
#   get 16 MiB, from a holder  vs a bare content fetch (cat)        goal ≥ 0.80
#   put 1 KiB                  vs a bare content add                (reported)
#   put 16 MiB                 vs a bare add followed by a bare fetch of it by
#                              another node: a put stores and copies (reported)
#   migrate a space            vs a bare content fetch of as many bytes, and
#                              the CPU it takes (cpu-s/s near 2 on 2 cores: CPU-bound)
#
#   bench/space.sh                    # 5 runs of each, a 256 MiB migration
#   NUBE_BENCH_MB=1024 bench/space.sh # migrate 1 GiB
#   COUNT=10 bench/space.sh           # steadier medians
#   RAW=1 bench/space.sh              # also print the raw go test output
#   PROFILE=1 bench/space.sh          # and the top of the migration's CPU profile
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
prof=$(mktemp)
trap 'rm -f "$out" "$prof" space.test' EXIT

go test ./bench -run '^$' -count "$count" -benchtime 3000x -bench 'BenchmarkSpace$/1KiB-get' >"$out"
go test ./bench -run '^$' -count "$count" -benchtime 200x -bench 'BenchmarkSpace$/1KiB-put' >>"$out"
go test ./bench -run '^$' -count "$count" -benchtime 10x -bench 'BenchmarkSpace$/16MiB' >>"$out"
go test ./bench -run '^$' -count 1 -benchtime 2x -bench 'SpaceMigrate|FetchOneProvider' -cpuprofile "$prof" -o space.test >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
row "get 1 KiB, head cached" "$(median "Space/1KiB-get" get-µs)" "$(median "Space/1KiB-get" rtt-µs)" µs \
	"≤ 2.0 of a remote call round trip"
row "get 16 MiB from a holder" "$(median "Space/16MiB" get-MB/s)" "$(median "Space/16MiB" cat-MB/s)" MB/s \
	"≥ 0.80 of a bare fetch (cat)"
row "put 1 KiB" "$(median "Space/1KiB-put" put-µs)" "$(median "Space/1KiB-put" add-µs)" ms \
	"(baseline: a bare add; a put also signs a head and copies to the holder)" 1000
add=$(median "Space/16MiB" add-MB/s)
cat=$(median "Space/16MiB" cat-MB/s)
row "put 16 MiB" "$(median "Space/16MiB" put-MB/s)" "$(awk -v a="$add" -v c="$cat" 'BEGIN { print 1 / (1/a + 1/c) }')" MB/s \
	"(baseline: a bare add, then a bare fetch of it by another node)"
row "migrate ${NUBE_BENCH_MB:-256} MiB" "$(median "SpaceMigrate" MB/s)" "$(median "FetchOneProvider" MB/s)" MB/s \
	"network and disk bound: ≈ 1.0 of a bare fetch"
echo "migration CPU: $(median "SpaceMigrate" cpu-s/s) CPU-seconds per second (of $(nproc) cores)"
echo
echo "medians of $count runs (the migration: one run of two moves); loopback, three nodes in one process"
if [ -n "${PROFILE:-}" ]; then
	go tool pprof -top space.test "$prof" 2>/dev/null | sed -n '1,20p'
fi
