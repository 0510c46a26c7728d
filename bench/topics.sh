#!/usr/bin/env bash
# bench/topics.sh: nube's topics beside NATS, in one run on one loopback.
# nats-server (JetStream on) is embedded in the benchmark binary, so the
# anchor runs in the same process, on the same cores, as nube's side.
#
#   durable publish, 3 replicas, 1 KiB, 64 in flight   vs JetStream R3
#                                                      goal ≥ 0.50
#   live fan-out to 10 and 100 subscribers, p50, p99   vs NATS core
#     (each subscriber a node of its own / a connection of its own)
#                                                      goal ≤ 2.0
#   RSS of a process holding a stream of 1 GiB         vs JetStream,
#     (each side in a child process of its own)        goal < 128 MiB
#
#   bench/topics.sh            # everything: 1 GiB retained, 10 and 100 subscribers
#   bench/topics.sh --quick    # 64 MiB retained, 10 subscribers (a minute or two)
#   bench/topics.sh --mb 256   # retain 256 MiB for the RSS figure
#   COUNT=3 bench/topics.sh    # medians of 3 runs (default 1: a hundred nodes
#                              # take minutes to start on two cores)
#   RAW=1 bench/topics.sh      # also print the raw go test output
#
# A side that fails (nube's, while the topic layer is not built) prints
# its reason under the table; NATS's figures print all the same.
set -uo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-1}
mb=${NUBE_BENCH_TOPIC_MB:-1024}
fanout=${NUBE_BENCH_FANOUT:-10,100}
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) mb=64 fanout=10 ;;
	--mb) mb=$2; shift ;;
	*) echo "usage: bench/topics.sh [--quick] [--mb MiB]" >&2; exit 2 ;;
	esac
	shift
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
export NUBE_BENCH_TOPIC_MB=$mb NUBE_BENCH_FANOUT=$fanout

go test ./bench -run '^$' -count "$count" -benchtime 20000x -bench 'TopicPublish' >"$out" 2>&1
go test ./bench -run '^$' -count "$count" -benchtime 300x -timeout 60m -bench 'TopicFanout' >>"$out" 2>&1
go test ./bench -run '^$' -count "$count" -benchtime 1x -timeout 30m -bench 'TopicRSS' -topic-mb "$mb" >>"$out" 2>&1
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

# trow LABEL OURS BASELINE UNIT GOAL: row, or the baseline alone when our
# figure is missing (its reason prints below the table).
trow() {
	if [ "$2" = nan ]; then
		awk -v l="$1" -v b="$3" -v u="$4" -v g="$5" 'BEGIN {
			printf "%-30s %12s %-7s %10.1f %-7s %8s   %s\n", l, "—", "", b, u, "—", g }'
	else
		row "$@"
	fi
}

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "NATS" "ratio" "goal"
trow "durable publish, R3, 1 KiB" "$(median TopicPublish/nube-r3 msgs/s)" "$(median TopicPublish/jetstream-r3 msgs/s)" "msg/s" \
	"≥ 0.50 of JetStream R3 (64 in flight)"
for n in ${fanout//,/ }; do
	for p in p50 p99; do
		trow "live fan-out to $n, $p" "$(median "TopicFanout/nube-$n" "$p-µs")" "$(median "TopicFanout/nats-$n" "$p-µs")" µs \
			"≤ 2.0 of NATS core"
	done
done
trow "RSS holding $mb MiB" "$(median TopicRSS/nube rss-MiB)" "$(median TopicRSS/jetstream rss-MiB)" MiB \
	"< 128 MiB (at 1 GiB); JetStream's beside it"
trow "  its peak while filling" "$(median TopicRSS/nube peak-MiB)" "$(median TopicRSS/jetstream peak-MiB)" MiB "(reported)"
holders=$(median TopicPublish/nube-r3 holders)
[ "$holders" != nan ] && echo "(nube's durable topic named $holders holders in its info: node 0, where it was published, and the two it was placed on)"
echo
echo "medians of $count runs; loopback, everything in one process (the RSS: one child process a side), $(nproc) cores"
# Why a figure is missing: the failures' own words.
if grep -Eq '^ +topics_test.go:[0-9]+: ' "$out"; then
	echo
	grep -E '^ +topics_test.go:[0-9]+: ' "$out" | sed -E 's/^ +topics_test.go:[0-9]+: /failed: /' | sort -u
fi
