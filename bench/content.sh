#!/usr/bin/env bash
# bench/content.sh: the content layer's figures beside their limits, as a
# user meets them: two `nube up` daemons on loopback, the CLI adding a file
# to one and fetching it from the other (cat, get and pin add), each
# daemon's CPU time and peak RSS read from /proc. In the same run: dd
# writing as much to the same disk, and the raw libp2p stream.
#
#   add                      vs dd conv=fsync             goal >= 0.80 of dd
#   fetch a->b: cat/get/pin  vs the raw libp2p TCP stream  goal >= 0.50, get >= cat
#   peak RSS, each daemon                                  goal < 96 MiB
#   CPU seconds per GiB: the fetcher during cat and get    goal <= 3
#                        the provider during any fetch     goal <= 1
#   4 rate-limited providers vs 1 (tc in a namespace; root) goal >= 3.5x
#
# Each figure is measured between two measures of its limit (dd before
# and after the add, the raw stream before and after each fetch) and
# divided by their mean: a shared VM's speed drifts within minutes. The
# table shows the median of the rounds' ratios, each round's in brackets.
#
#   bench/content.sh                  # 1 GiB, 3 runs, medians
#   MB=256 RUNS=1 bench/content.sh    # a quick look
#   DIR=/some/disk bench/content.sh   # data dirs and dd on another disk
#   KUBO=/path/to/ipfs bench/content.sh  # and kubo's figures beside ours
#
# With KUBO, two kubo daemons (`ipfs init --profile test`, no routing)
# add and fetch the same files the same way after nube's rounds (`ipfs
# add --cid-version 1`, `cat`, `get -o`, `pin add`), measured alike.
#
# Linux only (it reads /proc). Everything listens on 127.0.0.1, with mDNS
# and the IPFS DHT off.
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${MB:-1024}
runs=${RUNS:-3}
work=$(mktemp -d "${DIR:-${TMPDIR:-/tmp}}/nube-bench.XXXXXX")
bin=$work/nube
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$bin" ./cmd/nube
go test -c -o "$work/bench.test" ./bench

start() { # start I [BOOTSTRAP]: run daemon I and wait for its API
	local i=$1 args=(up --data "$work/n$1" --api 127.0.0.1:0 --gateway off
		--listen /ip4/127.0.0.1/tcp/0 --no-mdns --no-ipfs --no-portmap)
	[ -n "${2:-}" ] && args+=(--bootstrap "$2")
	mkdir -p "$work/n$i"
	"$bin" "${args[@]}" >"$work/n$i.out" 2>"$work/n$i.err" &
	pids[i]=$!
	for _ in $(seq 100); do
		"$bin" --data "$work/n$i" status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "daemon $i did not start: $(tail -3 "$work/n$i.err")" >&2
	exit 1
}
nube() { local i=$1; shift; "$bin" --data "$work/n$i" "$@"; }
cpu() { awk '{ print ($14 + $15) / ticks }' ticks="$(getconf CLK_TCK)" "/proc/$1/stat"; } # user+system seconds
resetpeak() { echo 5 >"/proc/$1/clear_refs"; }                                      # peak RSS starts again from now
peak() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }

start 0
start 1 "$(nube 0 id --json | grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' | head -1)"

results=$work/results
: >"$results"
record() { echo "$*" >>"$results"; } # record KIND SECONDS CPU PEAK [PROVIDER-CPU PROVIDER-PEAK]
measure() { # measure KIND PID OTHER OUT COMMAND...: time COMMAND (its output to OUT), the daemon's CPU and peak RSS, and the other's (the provider of a fetch; - for none)
	local kind=$1 pid=$2 other=$3 out=$4 t0 c0 o0=0
	shift 4
	resetpeak "$pid"
	c0=$(cpu "$pid")
	if [ "$other" != - ]; then
		resetpeak "$other"
		o0=$(cpu "$other")
	fi
	t0=$(now)
	"$@" >"$out"
	local t1 ocpu=0 opeak=0
	t1=$(now)
	if [ "$other" != - ]; then
		ocpu=$(echo "$(cpu "$other") - $o0" | bc)
		opeak=$(peak "$other")
	fi
	record "$kind" "$(echo "$t1 - $t0" | bc)" "$(echo "$(cpu "$pid") - $c0" | bc)" "$(peak "$pid")" "$ocpu" "$opeak"
}

ddonce() { # time dd writing the file to the same disk, with fsync
	local t0
	t0=$(now)
	dd if="$work/file" of="$work/dd" bs=1M conv=fsync status=none
	record dd "$(echo "$(now) - $t0" | bc)" 0 0
	rm -f "$work/dd"
}
rawonce() { # the raw libp2p stream carrying as many bytes, recorded as seconds for $mb MiB
	local raw
	raw=$("$work/bench.test" -test.run '^$' -test.bench 'RawStreamThroughput/tcp' -test.benchtime "${mb}x" |
		awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "MB/s") print $i / 1.048576 }')
	record raw "$(echo "scale=4; $mb / $raw" | bc)" 0 0
}

for r in $(seq "$runs"); do
	head -c $((mb << 20)) /dev/urandom >"$work/file"
	sync
	ddonce
	measure add "${pids[0]}" - "$work/out" nube 0 add -q "$work/file"
	ddonce
	cid=$(cat "$work/out")
	rawonce
	for how in cat get pin; do
		case $how in
		cat) measure cat "${pids[1]}" "${pids[0]}" /dev/null nube 1 cat "$cid" ;;
		get) measure get "${pids[1]}" "${pids[0]}" /dev/null nube 1 get -o "$work/got" "$cid" ;;
		pin) measure pin "${pids[1]}" "${pids[0]}" /dev/null nube 1 pin add "$cid" ;;
		esac
		rm -rf "$work/got"
		nube 1 pin rm "$cid" >/dev/null 2>&1 || true
		nube 1 gc >/dev/null
		rawonce
	done
	nube 0 pin rm "$cid" >/dev/null
	nube 0 gc >/dev/null
done

if [ -n "${KUBO:-}" ]; then
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	kstart() { # kstart I: a kubo daemon on loopback, with no routing
		export IPFS_PATH=$work/k$1
		"$KUBO" init --profile test >/dev/null
		"$KUBO" config Routing.Type none
		"$KUBO" daemon >"$work/k$1.out" 2>&1 &
		pids[$1]=$!
		for _ in $(seq 150); do grep -q 'Daemon is ready' "$work/k$1.out" && return 0; sleep 0.2; done
		echo "kubo $1 did not start" >&2
		exit 1
	}
	kstart 0
	kstart 1
	ipfs() { local i=$1; shift; IPFS_PATH=$work/k$i "$KUBO" "$@"; }
	kaddr=$(ipfs 0 id -f '<addrs>' | grep '/ip4/127.0.0.1/tcp/' | head -1)
	case $kaddr in */p2p/*) ;; *) kaddr=$kaddr/p2p/$(ipfs 0 id -f '<id>') ;; esac
	for r in $(seq "$runs"); do
		head -c $((mb << 20)) /dev/urandom >"$work/file"
		sync
		measure kadd "${pids[0]}" - "$work/out" ipfs 0 add -Q --cid-version 1 "$work/file"
		cid=$(cat "$work/out")
		rawonce
		for how in cat get pin; do
			# Kubo finds no provider without routing: connect again in
			# case its connection manager closed the connection.
			ipfs 1 swarm connect "$kaddr" >/dev/null
			case $how in
			cat) measure kcat "${pids[1]}" "${pids[0]}" /dev/null ipfs 1 cat "$cid" ;;
			get) measure kget "${pids[1]}" "${pids[0]}" /dev/null ipfs 1 get -o "$work/got" "$cid" ;;
			pin) measure kpin "${pids[1]}" "${pids[0]}" /dev/null ipfs 1 pin add "$cid" ;;
			esac
			rm -rf "$work/got"
			ipfs 1 pin rm "$cid" >/dev/null 2>&1 || true
			ipfs 1 repo gc >/dev/null
			rawonce
		done
		ipfs 0 pin rm "$cid" >/dev/null
		ipfs 0 repo gc >/dev/null
	done
fi

par=$("$work/bench.test" -test.run 'ParallelFetchRateLimited' -test.v 2>&1 | grep -o 'RESULT.*' || echo "RESULT skipped (needs root, unshare and tc)")

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR+1)/2)] }'; } # of the numbers on stdin, one a line
# med KIND FIELD: the median of a field (2 seconds, 3 CPU, 4 peak, 5 the
# provider's CPU, 6 its peak) over the runs.
med() { awk -v k="$1" -v f="$2" '$1 == k { print $f }' "$results" | median; }
rate() { echo "scale=1; $mb / $(med "$1" 2)" | bc; }
gib=$(echo "scale=4; $mb / 1024" | bc)
# ratios KIND LIMIT: each KIND's rate over its LIMIT's at that moment: the
# mean of the LIMIT's rates measured just before it and just after.
ratios() {
	awk -v k="$1" -v l="$2" '{ kind[NR] = $1; secs[NR] = $2 } END {
		for (i = 1; i <= NR; i++) {
			if (kind[i] != k) continue
			for (a = i - 1; a > 0 && kind[a] != l; a--) {}
			for (b = i + 1; b <= NR && kind[b] != l; b++) {}
			printf "%.2f\n", 2 / secs[i] / (1 / secs[a] + 1 / secs[b])
		}
	}' "$results"
}

printf '%-34s %12s %14s %7s   %s\n' figure nube limit ratio goal
line() { # line LABEL KIND LIMIT GOAL
	local rs
	rs=$(ratios "$2" "$3")
	printf '%-34s %7s MiB/s %8s MiB/s %7s   %s [rounds: %s]\n' "$1" "$(rate "$2")" "$(rate "$3")" \
		"$(echo "$rs" | median)" "$4" "$(echo $rs)"
}
line "add ${mb} MiB" add dd ">= 0.80 of dd conv=fsync"
for how in cat get pin; do
	line "fetch ${mb} MiB a->b, $how" "$how" raw ">= 0.50 of the raw libp2p stream"
done
# get against cat, round by round (each round's get over its cat).
gc=$(paste <(ratios get raw) <(ratios cat raw) | awk '{ printf "%.2f\n", $1 / $2 }')
printf '%-34s %31s %7s   %s [rounds: %s]\n' "get / cat" "" "$(echo "$gc" | median)" ">= 1" "$(echo $gc)"
echo
printf '%-34s %8s %12s %14s %12s   %s\n' "daemon, during" "peak RSS" "CPU s/GiB" "provider RSS" "its CPU s/GiB" "goal"
for k in add cat get pin; do
	goal="RSS < 96 MiB"
	case $k in cat | get) goal="$goal; CPU <= 3, provider's <= 1" ;; pin) goal="$goal; provider's CPU <= 1" ;; esac
	pr=- pc=-
	if [ "$k" != add ]; then
		pr="$(med $k 6) MiB" pc=$(echo "scale=2; $(med $k 5) / $gib" | bc)
	fi
	printf '%-34s %4s MiB %12s %14s %12s   %s\n' "$k" "$(med $k 4)" "$(echo "scale=2; $(med $k 3) / $gib" | bc)" "$pr" "$pc" "$goal"
done
if [ -n "${KUBO:-}" ]; then
	echo
	printf '%-34s %12s %12s %10s %12s %12s\n' "beside kubo $("$KUBO" version -n)" "nube MiB/s" "kubo MiB/s" "nube/kubo" "CPU s/GiB" "peak RSS"
	for k in add cat get pin; do
		printf '%-34s %12s %12s %10s %12s %12s\n' "$k" "$(rate $k)" "$(rate k$k)" "$(echo "scale=2; $(med k$k 2) / $(med $k 2)" | bc)" \
			"$(echo "scale=2; $(med $k 3) / $gib" | bc) / $(echo "scale=2; $(med k$k 3) / $gib" | bc)" "$(med $k 4) / $(med k$k 4) MiB"
	done
fi
echo
echo "parallel fetch: ${par#RESULT }   (goal: 4 providers >= 3.5x one)"
echo "medians of $runs; two daemons on loopback TCP; $(nproc) cores; data in $(df --output=source,fstype "$work" | tail -1)"
