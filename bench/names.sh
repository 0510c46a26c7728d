#!/usr/bin/env bash
# bench/names.sh: `name resolve` of a fresh IPNS record that another node
# of the same DHT published (an in-process cluster on loopback, no
# cache), p50 and p95, beside the goal of a tenth of kubo's 30-90 s
# resolves; and the kubo interop test, which needs kubo's ipfs on PATH
# (it says so and skips otherwise).
#
#   bench/names.sh
#   NUBE_NAMES_NODES=30 bench/names.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./bench -run '^(TestNameResolve|TestKuboInterop)$' -count 1 -v -timeout 20m | grep -E '^RESULT|SKIP|ipfs not on PATH|FAIL|^ok' | sed 's/^RESULT //'
echo "$(nproc) cores"
