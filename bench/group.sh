#!/usr/bin/env bash
# bench/group.sh: replicated groups on nube's libp2p raft transport beside
# hashicorp/raft's in-memory transport, everything else the same (three
# members in one process, the same state machine, Pebble logs on disk).
#
#   write throughput, 64 writers     vs the in-memory transport   goal ≥ 0.80
#   write latency, one writer        vs the in-memory transport   (reported)
#   linearizable Get via a follower  vs a round trip to the leader plus a
#                                       heartbeat round (VerifyLeader)  goal ≤ 1.0
#
#   bench/group.sh            # 5 runs of each benchmark
#   COUNT=10 bench/group.sh   # steadier medians
#   RAW=1 bench/group.sh      # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./group -run '^$' -count "$count" -benchtime 2s -bench 'Write' >"$out"
go test ./group -run '^$' -count "$count" -benchtime 1s -bench 'Read' >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
row "writes, 64 at once" "$(median "Write/libp2p" writes/s)" "$(median "Write/inmem" writes/s)" "/s" \
	"≥ 0.80 of raft's in-memory transport"
row "write latency, one writer" "$(median "WriteLatency/libp2p" ns/op)" "$(median "WriteLatency/inmem" ns/op)" µs \
	"(baseline: in-memory transport)" 1000
rtt=$(median "Read/round-trip-to-leader" ns/op)
hb=$(median "Read/heartbeat-round" ns/op)
row "Get via a follower" "$(median "Read/get-on-follower" ns/op)" "$(awk -v a="$rtt" -v b="$hb" 'BEGIN { print a + b }')" µs \
	"≤ 1.0 of round trip to leader + heartbeat round" 1000
row "Get on the leader" "$(median "Read/get-on-leader" ns/op)" "$hb" µs \
	"≤ 1.0 of a heartbeat round (VerifyLeader)" 1000
echo
echo "medians of $count runs; loopback, three members in one process, $(nproc) cores"
