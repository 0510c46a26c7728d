#!/usr/bin/env bash
# bench/dht.sh: nube's DHT at 20, 100 and 1,000 nodes (lightweight hosts on
# an in-memory network with 10 ms links, the DHT as a node runs it): the
# peers a lookup asks and the time it takes, for finding a peer and for
# finding a provider, beside the goal of a logarithmic search (peers asked
# at the 95th percentile at most 3·log2(n) + 20).
#
#   bench/dht.sh                        # 20, 100 and 1000 nodes
#   NUBE_DHT_SIZES=20,100,2000 bench/dht.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NUBE_DHT_SIZES=${NUBE_DHT_SIZES:-20,100,1000} \
	go test ./bench -run '^TestDHTScale$' -count 1 -v -timeout 60m | grep -E '^RESULT|joined|FAIL|ok' | sed 's/^RESULT //'
echo "$(nproc) cores; each figure over 40 random pairs"
