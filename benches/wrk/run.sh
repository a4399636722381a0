#!/usr/bin/env bash
# Calls a method over the API gateway under load: starts the release gateway on a
# throw-away store, defines `fibonacci` on an object `bench` (a PUT, audited by the
# guard like any method), checks one call, then runs wrk with benches/wrk/call.lua.
# Usage: benches/wrk/run.sh [wrk args…]   (default: -t2 -c32 -d10s)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/lib/gateway.sh
start_gateway "${AURA_BENCH_PORT:-18080}"
auth=(-H "Authorization: Bearer $AURA_GATEWAY_TOKEN" -H "Content-Type: application/json")
curl -sf "${auth[@]}" "http://$addr/v1/objects" -d '{"name": "bench"}' >/dev/null
curl -sf "${auth[@]}" -X PUT "http://$addr/v1/objects/bench/methods/fibonacci" \
  -d '{"source": "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n", "doc": "the n-th Fibonacci number"}' >/dev/null
echo "one call: $(curl -sf "${auth[@]}" "http://$addr/v1/objects/bench/messages" -d '{"selector": "fibonacci", "args": [20]}')"
if [ $# -eq 0 ]; then set -- -t2 -c32 -d10s; fi
wrk "$@" -s benches/wrk/call.lua "http://$addr/v1/objects/bench/messages"
