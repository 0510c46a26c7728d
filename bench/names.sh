#!/usr/bin/env bash
# bench/names.sh: `name resolve` of a fresh IPNS record that another node
# of the same DHT published (an in-process cluster on loopback, no
# cache), p50 and p95, beside the goal of a tenth of kubo's 30-90 s
# resolves; and the kubo interop test (kubo resolves and fetches a name
# nube published, nube one kubo published, over an IPFS DHT of kubo
# alone), with kubo's own resolve time of nube's name.
#
#   bench/names.sh
#   NUBE_NAMES_NODES=30 bench/names.sh
#   BUILD_KUBO=1 bench/names.sh     # build kubo v0.43.1 first if ipfs is not on PATH
#
# The interop test needs kubo's ipfs on PATH and skips without it.
# BUILD_KUBO builds it from its Go module; its go.mod replaces go-libp2p
# with a fork the module proxy does not serve, so it is built with
# go-libp2p v0.51.0 (nube's) in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v ipfs >/dev/null && [ -n "${BUILD_KUBO:-}" ]; then
	kubo=$(mktemp -d "${TMPDIR:-/tmp}/nube-kubo.XXXXXX")
	trap 'rm -rf "$kubo"' EXIT
	dir=$(go mod download -json github.com/ipfs/kubo@v0.43.1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
	cp -r "$dir" "$kubo/src" && chmod -R u+w "$kubo/src"
	(cd "$kubo/src" && go mod edit -dropreplace github.com/libp2p/go-libp2p &&
		GOFLAGS=-mod=mod go get github.com/libp2p/go-libp2p@v0.51.0 >/dev/null 2>&1 &&
		go build -mod=mod -o "$kubo/bin/ipfs" ./cmd/ipfs)
	PATH=$kubo/bin:$PATH
fi
go test ./bench -run '^(TestNameResolve|TestKuboInterop)$' -count 1 -v -timeout 20m | grep -E '^RESULT|SKIP|ipfs not on PATH|FAIL|^ok' | sed 's/^RESULT //'
echo "$(nproc) cores"
