#!/usr/bin/env bash
# 2,000 idle and half-sent connections against the release gateway, started under a
# 1,024-descriptor soft limit (issue #27): an authenticated client must still be answered
# within 100 ms, and the held connections closed within the header timeout.
# Usage: benches/connections/run.sh [flood.py args…]   (default: --idle 1000 --half 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/lib/gateway.sh
start_gateway "${AURA_BENCH_PORT:-18081}" 1024
echo "gateway soft limit at start: 1024 (hard: $(ulimit -Hn))"
/usr/bin/python3 benches/connections/flood.py "$addr" "$AURA_GATEWAY_TOKEN" "$@"
