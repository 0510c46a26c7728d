#!/usr/bin/env bash
# bench/service.sh: WebAssembly service calls beside a remote call of the
# same work as native Go.
#
# Warm calls of a trivial module (16 bytes in and out) against remote's
# BenchmarkCallRTT/tcp (a native Go function called the same way); a cold
# call (a node that has never seen the module fetches, checks, compiles
# and runs it); and the throughput of a CPU-bound module on 4 nodes at
# once against 1. Nodes run in one process on loopback TCP.
#
#   bench/service.sh            # 5 runs of each benchmark
#   COUNT=10 bench/service.sh   # steadier medians
#   RAW=1 bench/service.sh      # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for _ in $(seq "$count"); do
	go test ./remote -run '^$' -count 1 -benchtime 1s -bench 'CallRTT$/tcp' >>"$out"
	go test ./service -run '^$' -count 1 -benchtime 1s -bench 'WarmCall' >>"$out"
done
go test ./service -run '^$' -count "$count" -benchtime 3x -bench 'ColdCall|CallN' >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
native=$(median "CallRTT/tcp" ns/op)
row "warm call, reactor" "$(median "WarmCall/reactor" ns/op)" "$native" µs "≤ 3 (baseline: native Go remote call)" 1000
row "warm call, command" "$(median "WarmCall/command" ns/op)" "$native" µs "(a Go runtime starts every call)" 1000
awk -v o="$(median "ColdCall" ns/op)" 'BEGIN {
	printf "%-30s %10.1f %-7s %18s %6s   %s\n", "cold call", o / 1e6, "ms", "-", "-", "(fetch 2 MB + check CID + compile + run)" }'
row "CPU-bound, --n 4 vs --n 1" "$(median "CallN/n=4" results/s)" "$(median "CallN/n=1" results/s)" "/s" \
	"(≤ $(nproc) cores: see the README)"
echo
echo "medians of $count runs; loopback TCP, all nodes in one process, $(nproc) cores"
