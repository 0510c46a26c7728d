#!/usr/bin/env bash
# bench/nat.sh: hole punching through NATs, in network namespaces of its
# own (Linux, root, iproute2 and nftables; nothing leaves the machine).
#
# An "internet" namespace holds a bridge (11.0.0.0/24), a relay R and three
# more public nodes (libp2p trusts an observed address once four peers
# report it). Node A and node B each sit behind a masquerading router
# whose firewall drops unsolicited inbound packets, as a home router's
# does; A is behind two routers in the double case. For every pair of NAT
# kinds and for QUIC and TCP alone, B learns of A only by its peer ID (a
# DHT lookup), reaches it through R, and the script reports:
#
#   direct    whether a direct connection replaced the relayed one
#   time      from B's first ping to the first direct connection
#   relayed   bytes R read while B read a 1 MiB file from A, a minute after
#             the first ping, as a share of the file (0: none went through R;
#             about 1: all did)
#   rate      B reading a 32 MiB file from A then, in MiB/s: over the direct
#             connection where there is one, else through R
#
# NAT kinds: cone (Linux masquerade: the mapping keeps the host's port, so
# it is the same for every destination) and symmetric (masquerade
# fully-random: a new port per destination). DCUtR can punch a pair when
# both mappings are endpoint-independent; a symmetric NAT on either side
# must fall back to the relay.
#
#   sudo bench/nat.sh
#   CASES="cone/cone/quic" sudo bench/nat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for c in ip nft; do
	command -v "$c" >/dev/null || { echo "bench/nat.sh: $c not found (iproute2, nftables): skipped"; exit 0; }
done
[ "$(id -u)" = 0 ] || { echo "bench/nat.sh: needs root for network namespaces: skipped"; exit 0; }
cases=${CASES:-"cone/cone/quic cone/cone/tcp double/cone/quic double/cone/tcp cone/symmetric/quic cone/symmetric/tcp symmetric/symmetric/quic"}
P=nubenat
work=$(mktemp -d)
bin=$work/nube
go build -o "$bin" ./cmd/nube
pids=()
down() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
	for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do ip netns del "$n"; done
}
trap 'down; rm -rf "$work"' EXIT

# veth NS1 IF1 NS2 IF2: a cable between two namespaces.
veth() {
	ip link add "$P-t1" type veth peer name "$P-t2"
	ip link set "$P-t1" netns "$1"
	ip link set "$P-t2" netns "$3"
	ip -n "$1" link set "$P-t1" name "$2" up
	ip -n "$3" link set "$P-t2" name "$4" up
}
ns() { ip netns add "$P-$1"; ip -n "$P-$1" link set lo up; }
# router NAME UP_NS UP_ADDR LAN_PREFIX KIND: a NAT whose WAN side is in
# UP_NS, on its bridge, and whose LAN is LAN_PREFIX.0/24 with one host,
# in namespace hNAME at LAN_PREFIX.2.
router() {
	local name=$1 up=$2 upaddr=$3 lan=$4 kind=$5
	ns "$name"
	veth "$P-$name" wan "$P-$up" "w-$name"
	ip -n "$P-$up" link set "w-$name" master br0
	ip -n "$P-$name" addr add "$upaddr" dev wan
	lan "$name" "$lan"
	nat "$name" wan "$kind"
}
# lan NS PREFIX: a host namespace hNS behind NS, on PREFIX.0/24.
lan() {
	ns "h$1"
	veth "$P-$1" lan "$P-h$1" eth0
	ip -n "$P-$1" addr add "$2.1/24" dev lan
	ip -n "$P-h$1" addr add "$2.2/24" dev eth0
	ip -n "$P-h$1" route add default via "$2.1"
}
# nat NS OUT KIND: NS forwards, masquerades what leaves by OUT, and drops
# unsolicited packets that come in by it.
nat() {
	local masq=masquerade
	[ "$3" = symmetric ] && masq="masquerade fully-random"
	ip netns exec "$P-$1" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$P-$1" nft -f - <<-EOF
		table ip nat {
			chain postrouting { type nat hook postrouting priority 100; oifname "$2" $masq; }
		}
		table ip filter {
			chain input { type filter hook input priority 0; iifname "$2" ct state new drop; }
		}
	EOF
}

common=(--api 127.0.0.1:0 --gateway off --no-mdns --no-ipfs --no-portmap --offer-to anyone)
start() { # start NAME NS ARGS...: a daemon, once its API answers
	local name=$1 ns=$2
	shift 2
	mkdir -p "$work/$name"
	ip netns exec "$P-$ns" "$bin" up --data "$work/$name" "${common[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	for _ in $(seq 100); do
		cli "$name" "$ns" status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "$name did not start: $(tail -3 "$work/$name.err")" >&2
	exit 1
}
cli() { local name=$1 ns=$2; shift 2; ip netns exec "$P-$ns" "$bin" --data "$work/$name" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
relayIn() { # bytes the relay's process has read so far, from sockets above all
	awk '/^rchar/ { print $2 }' "/proc/$rpid/io"
}
now() { date +%s.%N; }

printf '%-28s %-7s %9s %9s %9s\n' "A NAT / B NAT / transport" direct time relayed rate
for c in $cases; do
	IFS=/ read -r ka kb tr <<<"$c"
	down
	rm -rf "${work:?}"/r "$work"/p* "$work"/a "$work"/b
	ns inet
	ip -n "$P-inet" link add br0 type bridge
	ip -n "$P-inet" link set br0 up
	ip -n "$P-inet" addr add 11.0.0.1/24 dev br0
	for i in 11 12 13; do ip -n "$P-inet" addr add "11.0.0.$i/24" dev br0; done
	if [ "$ka" = double ]; then
		# A's host is itself a cone NAT for a LAN of its own.
		router a inet 11.0.0.2/24 10.1.0 cone
		lan ha 10.3.0
		nat ha eth0 cone
		hosta=hha
	else
		router a inet 11.0.0.2/24 10.1.0 "$ka"
		hosta=ha
	fi
	router b inet 11.0.0.3/24 10.2.0 "$kb"

	pub=(--listen /ip4/11.0.0.1/tcp/4001 --listen /ip4/11.0.0.1/udp/4001/quic-v1)
	start r inet --relay "${pub[@]}"
	rpid=${pids[-1]}
	R=$(cli r inet id --json | grep -o '/ip4/11.0.0.1/tcp/4001/p2p/[A-Za-z0-9]*' | head -1)
	for i in 11 12 13; do start "p$i" inet --listen "/ip4/11.0.0.$i/tcp/4001" --listen "/ip4/11.0.0.$i/udp/4001/quic-v1" --bootstrap "$R"; done
	listen=/ip4/0.0.0.0/tcp/4001
	[ "$tr" = quic ] && listen=/ip4/0.0.0.0/udp/4001/quic-v1
	start a "$hosta" --listen "$listen" --bootstrap "$R"
	start b hb --listen "$listen" --bootstrap "$R"
	A=$(cli a "$hosta" id --json | json 'd["id"]')
	# Both behind their NATs: private, with a circuit address through R.
	for n in "a $hosta" "b hb"; do
		read -r name where <<<"$n"
		for _ in $(seq 300); do
			cli "$name" "$where" status --json | json '"Private" if d["reachability"] == "Private" and any("p2p-circuit" in a for a in d["addrs"]) else ""' | grep -q Private && break
			sleep 0.2
		done
	done
	head -c $((1 << 20)) /dev/urandom >"$work/file"
	file=$(cli a "$hosta" add -q "$work/file")
	head -c $((32 << 20)) /dev/urandom >"$work/big"
	big=$(cli a "$hosta" add -q "$work/big")

	t0=$(now)
	cli b hb ping "$A" >/dev/null 2>&1 || true
	direct=no t=-
	while [ "$(echo "$(now) - $t0 < 30" | bc)" = 1 ]; do
		if cli b hb peers --json | json "any(p['id'] == '$A' and any('p2p-circuit' not in x for x in p['addrs']) for p in d)" | grep -q True; then
			direct=yes t=$(printf '%.2fs' "$(echo "$(now) - $t0" | bc)")
			break
		fi
		sleep 0.1
	done
	sleep "$(echo "60 - ($(now) - $t0)" | bc | awk '{ print ($1 > 0) ? $1 : 0 }')"
	before=$(relayIn)
	if cli b hb cat --timeout 20s "$file" >/dev/null 2>&1; then
		share=$(echo "scale=2; ($(relayIn) - $before) / 1048576" | bc)
	else
		share="cat failed"
	fi
	t1=$(now)
	if cli b hb cat --timeout 60s "$big" >/dev/null 2>&1; then
		rate=$(echo "scale=1; 32 / ($(now) - $t1)" | bc)
	else
		rate="failed"
	fi
	printf '%-28s %-7s %9s %9s %9s\n' "$c" "$direct" "$t" "$share" "$rate"
done
