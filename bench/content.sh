#!/usr/bin/env bash
# bench/content.sh: the content layer's figures beside their limits.
#
#   add throughput (256 MiB, on-disk store)   vs dd writing as much to disk
#   one-provider fetch (256 MiB, loopback)    vs the raw libp2p TCP stream
#   parallel fetch, 4 rate-limited providers  vs 1 (tc in a network namespace; needs root)
#   peak RSS adding / fetching 1 GiB          vs 200 MiB
#
#   bench/content.sh                 # everything
#   NUBE_BENCH_RATE=100mbit bench/content.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" ./bench

mbps() { awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i }' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR+1)/2)] }'; }

dd_mbs=$(dd if=/dev/zero of="$tmp/dd" bs=1M count=1024 conv=fsync 2>&1 | awk '/copied/ { print $(NF-1), $NF }')
rm -f "$tmp/dd"
add=$("$tmp/bench.test" -test.run '^$' -test.bench 'BenchmarkAdd$' -test.benchtime 1x -test.count 3 | mbps)
fetch=$("$tmp/bench.test" -test.run '^$' -test.bench 'FetchOneProvider' -test.benchtime 1x -test.count 3 | mbps)
raw=$("$tmp/bench.test" -test.run '^$' -test.bench 'RawStreamThroughput/tcp' -test.benchtime 1000x -test.count 3 | mbps)
rss() { NUBE_BENCH_MB=1024 /usr/bin/time -v "$tmp/bench.test" -test.run '^$' -test.bench "$1" -test.benchtime 1x 2>&1 >/dev/null |
	awk '/Maximum resident/ { printf "%.0f", $NF / 1024 }'; }
rss_add=$(rss 'BenchmarkAdd$')
rss_fetch=$(rss 'FetchOneProvider')
par=$("$tmp/bench.test" -test.run 'ParallelFetchRateLimited' -test.v 2>&1 | grep -o 'RESULT.*' || echo "RESULT skipped (needs root, unshare and tc)")

printf '%-40s %14s %14s   %s\n' figure nube limit goal
printf '%-40s %9s MB/s %14s   %s\n' "add, 256 MiB file" "$add" "dd: $dd_mbs" ">= 50% of dd"
printf '%-40s %9s MB/s %9s MB/s   %s\n' "fetch from 1 provider, 256 MiB" "$fetch" "$raw" ">= 30% of the raw libp2p stream"
printf '%-40s %9s MiB %14s   %s\n' "peak RSS, add 1 GiB (1 node)" "$rss_add" "200 MiB" "under 200 MiB"
printf '%-40s %9s MiB %14s   %s\n' "peak RSS, fetch 1 GiB (2 nodes, 1 proc)" "$rss_fetch" "2 x 200 MiB" "under 200 MiB per node"
echo "parallel fetch: ${par#RESULT }   (goal: 4 providers >= 3x one)"
echo
echo "medians of 3; loopback, nodes in one process, $(nproc) cores"
