#!/usr/bin/env bash
# bench/run.sh: nube's network figures beside their go-libp2p baselines.
#
# Runs the Go benchmarks in ./bench several times (interleaved, so that a
# noisy moment on a shared machine hits both sides), takes the median of
# each, and prints one table: ours, the baseline, the ratio and the goal.
#
#   bench/run.sh            # 5 runs of each benchmark
#   COUNT=10 bench/run.sh   # more runs, steadier medians
#   RAW=1 bench/run.sh      # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./bench -run '^$' -count "$count" -benchtime 20000x \
	-bench 'FramedVsRaw|RawNewStreamRTT|Ping' >"$out"
go test ./bench -run '^$' -count "$count" -benchtime 1000x \
	-bench 'RawStreamThroughput' >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

row() { # label ours baseline unit goal [divisor]
	awk -v l="$1" -v o="$2" -v b="$3" -v u="$4" -v g="$5" -v d="${6:-1}" 'BEGIN {
		o /= d; b /= d; r = (b > 0) ? o / b : 0
		printf "%-34s %10.1f %-4s %10.1f %-4s %7.2f   %s\n", l, o, u, b, u, r, g }'
}

printf '%-34s %15s %15s %7s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
# The framed and raw round trips come from one benchmark that alternates
# them on the same connection; its ratio is the median of per-run ratios.
for tr in tcp quic; do
	raw=$(median "FramedVsRaw/$tr" raw-µs/rtt)
	fr=$(median "FramedVsRaw/$tr" framed-µs/rtt)
	ratio=$(median "FramedVsRaw/$tr" framed/raw)
	awk -v l="framed message RTT ($tr)" -v o="$fr" -v b="$raw" -v r="$ratio" 'BEGIN {
		printf "%-34s %10.1f %-4s %10.1f %-4s %7.3f   %s\n", l, o, "µs", b, "µs", r, "ratio < 1.10 (vs raw stream RTT, same connection)" }'
done
for tr in tcp quic; do
	ns=$(median "RawNewStreamRTT/$tr" ns/op)
	p=$(median "Ping/$tr" ns/op)
	row "ping, new stream each ($tr)" "$p" "$ns" µs "(vs raw new-stream RTT; ping also waits for the peer's close)" 1000
done
for tr in tcp quic; do
	mb=$(median "RawStreamThroughput/$tr" MB/s)
	row "raw stream throughput ($tr)" "$mb" "$mb" MB/s "baseline for the content layer"
done
echo
echo "medians of $count runs; loopback, both nodes in one process, $(nproc) cores"
