#!/usr/bin/env bash
# bench/gateway-conformance.sh: the IPFS HTTP gateway conformance suite
# (ipfs/gateway-conformance) against nube's gateway, with the suite's
# fixtures loaded as a user would: CAR files with `nube dag import
# --no-pin`, IPNS records with `nube routing put`, DNSLink names through
# the daemon's local map (IPFS_NS_MAP, as kubo reads it).
#
#   GATEWAY_CONFORMANCE=~/src/gateway-conformance bench/gateway-conformance.sh
#   BASE=f561a2a GATEWAY_CONFORMANCE=… bench/gateway-conformance.sh   # and a base commit, side by side
#   RUN='TestGatewayIPNS|TestDNSLink|TestCors' …                       # only some of the suite's tests
#   SPECS=path-gateway …                                              # only some specs (the suite's -specs)
#
# GATEWAY_CONFORMANCE is a checkout of the suite's source (nothing of it is
# kept in this repository): its tests run with `go test ./tests` there,
# and need its Go modules. Without it the script says so and stops.
#
# It prints the checks passed and failed (the suite's leaf tests, as its
# report counts them) in all, and for the areas of names: IPNS
# (path_gateway_ipns, trustless_gateway_ipns, subdomain .ipns), DNSLink,
# CORS and X-Ipfs-Path (tests that name them), and to stderr the failed
# tests' names. Everything listens on 127.0.0.1, with mDNS and the
# IPFS DHT off; two daemons, so that nube's DHT has a peer to store in.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${GATEWAY_CONFORMANCE:-}
if [ -z "$src" ] || [ ! -d "$src/tests" ]; then
	echo "skipped: set GATEWAY_CONFORMANCE to a checkout of github.com/ipfs/gateway-conformance" >&2
	exit 0
fi
src=$(cd "$src" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/nube-gwc.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$src" && go run ./cmd/gateway-conformance extract-fixtures --directory "$work/fixtures" >/dev/null)
nsmap=$(cat "$work/fixtures/dnslinks.IPFS_NS_MAP" 2>/dev/null || true)

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# suite LABEL BIN: start two daemons of BIN, load the fixtures, run the suite, print the counts.
suite() {
	local label=$1 bin=$2 dir=$work/$1 gw
	mkdir -p "$dir/n0" "$dir/n1"
	gw=$(port)
	start() { # start I GATEWAY [BOOTSTRAP]
		local i=$1 args=(up --data "$dir/n$1" --api 127.0.0.1:0 --gateway "$2"
			--listen /ip4/127.0.0.1/tcp/0 --no-mdns --no-ipfs --no-portmap)
		[ -n "${3:-}" ] && args+=(--bootstrap "$3")
		IPFS_NS_MAP="$nsmap" "$bin" "${args[@]}" >"$dir/n$i.out" 2>"$dir/n$i.err" &
		pids+=($!)
		for _ in $(seq 100); do
			"$bin" --data "$dir/n$i" status >/dev/null 2>&1 && return 0
			sleep 0.2
		done
		echo "$label: daemon $i did not start: $(tail -3 "$dir/n$i.err")" >&2
		exit 1
	}
	start 0 "127.0.0.1:$gw"
	start 1 off "$("$bin" --data "$dir/n0" id --json | grep -o '/ip4/127.0.0.1/tcp/[0-9]*/p2p/[A-Za-z0-9]*' | head -1)"
	for _ in $(seq 50); do
		[ "$("$bin" --data "$dir/n0" peers --json | grep -c '"id"')" -ge 1 ] && break
		sleep 0.2
	done
	local cars=0 recs=0 refused=0
	for f in "$work"/fixtures/*.car; do
		"$bin" --data "$dir/n0" dag import --no-pin "$f" >/dev/null 2>>"$dir/import.err" && cars=$((cars + 1))
	done
	for f in "$work"/fixtures/*.ipns-record; do
		local name
		name=$(basename "$f" .ipns-record)
		name=${name%%_*}
		if "$bin" --data "$dir/n0" routing put "/ipns/$name" "$f" >/dev/null 2>>"$dir/routing.err"; then
			recs=$((recs + 1))
		else
			refused=$((refused + 1))
		fi
	done
	echo "$label: loaded $cars CAR files, $recs IPNS records ($refused refused), $(echo "$nsmap" | tr ',' '\n' | grep -c . || true) DNSLink names" >&2
	(cd "$src" && GATEWAY_URL="http://127.0.0.1:$gw" SUBDOMAIN_GATEWAY_URL="http://localhost:$gw" \
		go test ./tests -count=1 -json ${RUN:+-run "$RUN"} -timeout 10m ${SPECS:+-specs "$SPECS"} >"$dir/report.json" 2>"$dir/test.err" || true)
	count "$label" "$dir/report.json"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}

# count LABEL REPORT: leaf tests passed and failed, in all and by area.
count() {
	python3 - "$1" "$2" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
res = {}
for line in open(path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    t = e.get("Test")
    if t and e.get("Action") in ("pass", "fail"):
        res[t] = e["Action"]
leaves = {t: a for t, a in res.items() if not any(o.startswith(t + "/") for o in res)}
areas = {
    "all": lambda t: True,
    "IPNS": lambda t: "IPNS" in t.upper() or "/ipns/" in t,
    "DNSLink": lambda t: "DNSLINK" in t.upper(),
    "CORS": lambda t: t.startswith("TestCors"),
    "X-Ipfs-Path": lambda t: "X-IPFS-PATH" in t.upper().replace("_", "-"),
}
for area, f in areas.items():
    p = sum(1 for t, a in leaves.items() if f(t) and a == "pass")
    n = sum(1 for t, a in leaves.items() if f(t))
    print(f"{label:<10} {area:<12} {p:5d} of {n:5d} passed")
for t, a in sorted(leaves.items()):
    if a == "fail":
        print(f"{label}: failed {t}", file=sys.stderr)
PY
}

go build -o "$work/nube" ./cmd/nube
echo "nube       area         checks"
suite this "$work/nube"
if [ -n "${BASE:-}" ]; then
	mkdir -p "$work/base-src"
	git archive "$BASE" | tar -x -C "$work/base-src"
	(cd "$work/base-src" && go build -o "$work/nube-base" ./cmd/nube)
	suite base "$work/nube-base"
fi
