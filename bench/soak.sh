#!/usr/bin/env bash
# bench/soak.sh: a small network of `nube up` processes on loopback kept
# busy for DURATION seconds (600 by default) while one of them is killed
# with SIGKILL and started again every KILL_EVERY seconds (5). Node 0 is
# never killed: its memory and goroutines, sampled every 30 s, show
# whether anything grows. A client adds files on random nodes and reads
# them back from others all the while. At the end every node is checked:
# every add a node acknowledged is still there and reads back the same,
# and every stored block verifies.
#
#   bench/soak.sh                          # 5 nodes, 10 minutes
#   NODES=8 DURATION=120 bench/soak.sh     # a shorter, wider run
#
# Everything listens on 127.0.0.1, with mDNS and the IPFS DHT off.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${NODES:-5}
duration=${DURATION:-600}
kill_every=${KILL_EVERY:-5}
work=$(mktemp -d)
bin=$work/nube
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$bin" ./cmd/nube

boot=""
start() { # start I: run node I's daemon and wait for its API
	local i=$1
	local args=(up --data "$work/n$i" --api 127.0.0.1:0 --gateway off
		--listen /ip4/127.0.0.1/tcp/0 --no-mdns --no-ipfs --no-portmap --offer-to anyone)
	[ -n "$boot" ] && args+=(--bootstrap "$boot")
	rm -f "$work/n$i/api"
	"$bin" "${args[@]}" >"$work/n$i.out" 2>>"$work/n$i.err" &
	pids[i]=$!
	for _ in $(seq 100); do
		"$bin" --data "$work/n$i" status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "node $i did not start: $(tail -3 "$work/n$i.err")" >&2
	exit 1
}
mkdir -p "$work/n0"
start 0
boot=$("$bin" --data "$work/n0" id --json | grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' | head -1)
for i in $(seq 1 $((nodes - 1))); do mkdir -p "$work/n$i"; start "$i"; done

# sample: RSS (MiB) and goroutines of node 0.
sample() {
	local rss gor url tok
	rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/${pids[0]}/status")
	url=$(cat "$work/n0/api")
	tok=$(cat "$work/n0/api.token")
	gor=$(curl -s -H "Authorization: Bearer $tok" "$url/debug/pprof/goroutine?debug=1" | head -1 | grep -o '[0-9]*$')
	echo "$rss $gor"
}

acked=$work/acked
: >"$acked"
adds=0 reads=0 badreads=0 kills=0
began=$(date +%s)
next_kill=$((began + kill_every))
next_sample=$began
printf '%8s %10s %12s %8s %8s %8s\n' "seconds" "rss(MiB)" "goroutines" "adds" "reads" "kills"
while [ $(($(date +%s) - began)) -lt "$duration" ]; do
	now=$(date +%s)
	if [ "$now" -ge "$next_sample" ]; then
		read -r rss gor <<<"$(sample)"
		printf '%8d %10s %12s %8d %8d %8d\n' $((now - began)) "$rss" "$gor" "$adds" "$reads" "$kills"
		echo "$rss $gor" >>"$work/samples"
		next_sample=$((now + 30))
	fi
	if [ "$now" -ge "$next_kill" ] && [ "$nodes" -gt 1 ]; then
		v=$((1 + RANDOM % (nodes - 1)))
		kill -9 "${pids[v]}" 2>/dev/null || true
		wait "${pids[v]}" 2>/dev/null || true
		kills=$((kills + 1))
		start "$v"
		next_kill=$((now + kill_every))
	fi
	i=$((RANDOM % nodes))
	head -c $((1 + RANDOM * 8)) /dev/urandom >"$work/file"
	if c=$("$bin" --data "$work/n$i" add -q "$work/file" 2>/dev/null); then
		echo "$i $c $(sha256sum <"$work/file" | cut -c1-64)" >>"$acked"
		adds=$((adds + 1))
		j=$((RANDOM % nodes))
		if got=$("$bin" --data "$work/n$j" cat --timeout 20s "$c" 2>/dev/null | sha256sum | cut -c1-64); then
			reads=$((reads + 1))
			[ "$got" = "$(sha256sum <"$work/file" | cut -c1-64)" ] || badreads=$((badreads + 1))
		fi
	fi
done

# The invariants, with every node up.
lost=0
while read -r i c sum; do
	got=$("$bin" --data "$work/n$i" cat --timeout 20s "$c" 2>/dev/null | sha256sum | cut -c1-64)
	[ "$got" = "$sum" ] || { lost=$((lost + 1)); echo "lost: node $i acknowledged $c" >&2; }
done <"$acked"
bad=0
for i in $(seq 0 $((nodes - 1))); do
	"$bin" --data "$work/n$i" repo verify >/dev/null 2>&1 || { bad=$((bad + 1)); echo "node $i: repo verify failed" >&2; }
done
read -r rss0 gor0 <<<"$(head -2 "$work/samples" | tail -1)"
read -r rss1 gor1 <<<"$(tail -1 "$work/samples")"
echo
echo "$nodes nodes, ${duration}s, a SIGKILL every ${kill_every}s: $kills kills, $adds adds acknowledged, $reads reads from another node"
echo "invariants: $lost acknowledged adds lost (goal 0), $bad stores failing verify (goal 0), $badreads reads with wrong bytes (goal 0)"
echo "node 0 (never killed), from its second sample to its last: RSS $rss0 -> $rss1 MiB, goroutines $gor0 -> $gor1 (goal: no growth)"
[ "$lost" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$badreads" -eq 0 ]
