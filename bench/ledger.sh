#!/usr/bin/env bash
# bench/ledger.sh: the credit ledger beside what it is built on, measured in
# the same run, turn about in one loop. Five nodes in one process on
# loopback TCP: three keep the ledger (a raft group, Pebble logs synced),
# one runs services, one calls them; those two keep no ledger.
#
#   transfers, 64 at once      vs raw writes (Put) to the same group,
#                                 64 at once                       (reported)
#   priced call, added latency vs one ledger round trip from the
#                                 calling node (a transfer)          goal < 1.0
#
# Every transfer is signed by its payer and its signature checked on the
# node it reaches and again by every member as it applies it; in one
# process three members and the sender share the machine's cores.
#
#   bench/ledger.sh            # 5 runs of each
#   COUNT=10 bench/ledger.sh   # steadier medians
#   RAW=1 bench/ledger.sh      # also print the raw go test output
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

go test ./bench -run '^$' -count "$count" -benchtime 200x -bench 'BenchmarkLedger/transfers' >"$out"
go test ./bench -run '^$' -count "$count" -benchtime 300x -bench 'BenchmarkLedger/priced-call' >>"$out"
[ -n "${RAW:-}" ] && cat "$out"

. bench/lib.sh

printf '%-30s %18s %18s %6s   %s\n' "figure" "nube" "baseline" "ratio" "goal"
row "transfers, 64 at once" "$(median "Ledger/transfers" tx/s)" "$(median "Ledger/transfers" puts/s)" "/s" \
	"(baseline: raw group writes, 64 at once)"
free=$(median "Ledger/priced-call" free-µs)
priced=$(median "Ledger/priced-call" priced-µs)
row "priced call, added latency" "$(awk -v p="$priced" -v f="$free" 'BEGIN { print p - f }')" "$(median "Ledger/priced-call" ledger-rtt-µs)" µs \
	"< 1.0 of one ledger round trip"
row "priced call" "$priced" "$free" µs "(baseline: the same call of a free service)"
echo
echo "medians of $count runs; loopback, five nodes in one process, $(nproc) cores"
