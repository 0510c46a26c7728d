#!/usr/bin/env bash
# bench/capabilities.sh: the host API (nube_v1) beside the library on the
# same node, measured in the same loop turn about (service/hostbench_test.go).
# A reactor module repeats its host call 2000 times in one warm run, so
# the time per call is the host call's and not the run's start.
#
#   space_get of 1 KiB, the space's home is the runner  vs space.GetBytes           goal ≤ 1.5
#     (and the same with Space.Open into one buffer: the host's share alone)
#   open of a SIZE MiB CID, 64 KiB reads, to nothing    vs Content().Get + io.Copy  goal ≥ 70%
#   a nested call of tally (a reactor echo) via call    vs Service("tally").Call    goal ≤ 1.5
#   bytes across the network for space-wc on a SIZE MiB value held on B,
#   called from A with --near (runs on B) and on C      of the value's size     goal < 1%, ≥ 100%
#
# The library anchor for open is Content().Get on the runner (what `nube
# cat` does inside the daemon, without the CLI's pipe); the content is on
# disk (page cache). Nodes run in one process on loopback TCP; the --near
# figure's links go through nubetest's shaper, which counts their bytes.
#
#   bench/capabilities.sh              # 3 runs of each, 256 MiB
#   SIZE=64 bench/capabilities.sh      # a quicker look (MiB)
#   COUNT=5 bench/capabilities.sh      # steadier medians
#   RAW=1 bench/capabilities.sh        # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
size=${SIZE:-256}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./service -run '^$' -count "$count" -benchtime 3x -bench 'HostGet|HostCall$' >>"$out"
NUBE_BENCH_MB=$size go test ./service -run '^$' -count "$count" -benchtime 3x -bench 'HostOpen$' >>"$out"
NUBE_BENCH_MB=$size go test ./service -run '^$' -count 1 -benchtime 1x -bench 'HostNear$' 2>/dev/null >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "module" "library" "ratio" "goal"
row "space_get 1 KiB, local" "$(median "HostGet/get" host-ns/read)" "$(median "HostGet/get" lib-ns/read)" µs \
	"≤ 1.5 (baseline: space.GetBytes on the runner)" 1000
row "  the same, into one buffer" "$(median "HostGet/read" host-ns/read)" "$(median "HostGet/read" lib-ns/read)" µs \
	"(Space.Open: the host's share, without the module's allocation)" 1000
row "open $size MiB CID" "$(median "HostOpen" host-MiB/s)" "$(median "HostOpen" lib-MiB/s)" MiB/s \
	"≥ 0.70 (baseline: Content().Get, io.Copy to io.Discard)"
row "nested call (tally)" "$(median "HostCall" host-ns/call)" "$(median "HostCall" lib-ns/call)" µs \
	"≤ 1.5 (baseline: Service(\"tally\").Call on the runner)" 1000
awk -v v="$(median "HostNear" value-bytes)" -v n="$(median "HostNear" near-bytes)" -v f="$(median "HostNear" far-bytes)" 'BEGIN {
	printf "%-30s %10.1f %-7s %10.1f %-7s %5.3f%%   %s\n", "--near: bytes across", n / 1024, "KiB", v / 1048576, "MiB", 100 * n / v, "< 1% of the value"
	printf "%-30s %10.1f %-7s %10.1f %-7s %5.1f%%   %s\n", "without --near (on C)", f / 1048576, "MiB", v / 1048576, "MiB", 100 * f / v, "≥ 100% of the value" }'
echo
echo "medians of $count runs (--near: one run); loopback TCP, nodes in one process, $(nproc) cores"
