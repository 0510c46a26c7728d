#!/usr/bin/env bash
# bench/jobs.sh: map/reduce jobs (the issue's Speed section), in one run.
# Word count over Zipf-distributed words (seeded) in 64 files, a quarter
# on each of 4 nodes (nubetest, one process, loopback TCP), with the
# example modules wordcount-map and wordcount-reduce (R = 4):
#
#   locality: map input bytes read from the mapper's own store   goal ≥ 95%
#   job wall time  vs  a plain Go word count of the same files,
#     read from disk, in one goroutine                           goal ≤ 3x
#   stragglers: one node's CPU capped to a fifth                 goal ≤ 1.5x
#   a 1 KiB job end to end, modules warm (median of 5)           goal < 300 ms
#
#   bench/jobs.sh            # 1 GiB in 64 files
#   bench/jobs.sh --quick    # 64 MiB in 64 files (a minute or two)
#   bench/jobs.sh --mb 256   # another size
#   RAW=1 bench/jobs.sh      # also print the raw go test output
set -uo pipefail
cd "$(dirname "$0")/.."
mb=1024
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) mb=64 ;;
	--mb) mb=$2; shift ;;
	*) echo "usage: bench/jobs.sh [--quick] [--mb MiB]" >&2; exit 2 ;;
	esac
	shift
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
NUBE_BENCH_JOBS_MB=$mb go test ./bench -run '^$' -count 1 -benchtime 1x -timeout 60m -bench '^BenchmarkJobs$' >"$out" 2>&1
rc=$?
[ -n "${RAW:-}" ] && cat "$out"
if [ $rc -ne 0 ] || ! grep -q '^BenchmarkJobs-' "$out"; then
	echo "the jobs benchmark failed:" >&2
	grep -E 'FAIL|job|Error|panic' "$out" | head -20 >&2
	exit 1
fi

. bench/lib.sh

fig() { median Jobs "$1"; }
awk -v mib="$(fig input-MiB)" -v lp="$(fig local-%)" -v lb="$(fig local-bytes)" -v fb="$(fig fetched-bytes)" \
	-v nodes="$(fig nodes)" -v job="$(fig job-s)" -v nat="$(fig native-s)" -v tiny="$(fig tiny-ms)" 'BEGIN {
	printf "word count over %.0f MiB in 64 files on 4 nodes (%d ran tasks)\n\n", mib, nodes
	printf "%-34s %12s %14s %8s   %s\n", "figure", "nube", "anchor/limit", "ratio", "goal"
	printf "%-34s %10.1f %% %14s %8s   %s\n", "map input read locally", lp, "95 %", "", (lp >= 95 ? "≥ 95%: met" : "≥ 95%: NOT met")
	printf "%-34s %9.1f MiB %10.1f MiB\n", "  read locally / fetched", lb / 1048576, fb / 1048576
	printf "%-34s %10.2f s %12.2f s %8.2f   %s\n", "job wall time vs native Go count", job, nat, job / nat, (job <= 3 * nat ? "≤ 3x: met" : "≤ 3x: NOT met")
	printf "%-34s %10.1f ms %11.0f ms %8.2f   %s\n", "a 1 KiB job, warm modules", tiny, 300, tiny / 300, (tiny < 300 ? "< 300 ms: met" : "< 300 ms: NOT met")
}'
why="the four nodes share one process, so a cgroup would cap them all, and a node's compute limits
  cap memory, time and slots, not a CPU share"
if [ "$(id -u)" != 0 ]; then
	why="not root (a cgroup cpu.max needs it); besides, $why"
elif ! grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
	why="no cgroup v2 cpu controller here (/sys/fs/cgroup/cgroup.controllers); besides, $why"
fi
echo "stragglers (one node's CPU at a fifth, goal ≤ 1.5x): skipped: $why."
echo "  Backup copies of slow tasks are tested in job/ (TestStragglerBackup)."
echo
echo "one run; loopback TCP, nodes in one process, $(nproc) cores"
