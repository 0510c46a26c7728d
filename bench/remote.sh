#!/usr/bin/env bash
# bench/remote.sh: remote calls beside the raw go-libp2p stream they ride on.
#
# Runs the benchmarks of package remote several times (interleaved), takes
# the median of each and prints one table: ours, the baseline, the ratio
# and the goal. Both nodes run in one process on loopback.
#
#   bench/remote.sh            # 5 runs of each benchmark
#   COUNT=10 bench/remote.sh   # steadier medians
#   RAW=1 bench/remote.sh      # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./remote -run '^$' -count "$count" -benchtime 1s \
	-bench 'RawStreamRTT|CallRTT$|RawStreamParallel|CallParallel|StreamCallRTT|StreamItems' >"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "raw libp2p" "ratio" "goal"
for tr in tcp quic; do
	row "call round trip ($tr)" "$(median "CallRTT/$tr" ns/op)" "$(median "RawStreamRTT/$tr" ns/op)" µs \
		"≤ 1.5 (raw: new stream, 1 byte each way)" 1000
done
for tr in tcp quic; do
	row "parallel calls ($tr)" "$(median "CallParallel/$tr" calls/s)" "$(median "RawStreamParallel/$tr" rtt/s)" "/s" \
		"≥ 0.70 (same concurrency: 16 per core)"
done
for tr in tcp quic; do
	row "call on its own stream ($tr)" "$(median "StreamCallRTT/$tr" ns/op)" "$(median "RawStreamRTT/$tr" ns/op)" µs \
		"(streaming calls, inputs > 64 KiB)" 1000
done
for tr in tcp quic; do
	awk -v l="streamed results ($tr)" -v o="$(median "StreamItems/$tr" items/s)" 'BEGIN {
		printf "%-30s %10.1f %-7s %18s %6s   %s\n", l, o, "/s", "-", "-", "(≈100-byte results, 1 MiB window)" }'
done
echo
echo "medians of $count runs; loopback, both nodes in one process, $(nproc) cores"
