#!/usr/bin/env bash
# Compares gateway builds under run.sh's load, alternating them round by round, so that
# a machine whose speed drifts (these VMs' does, by 20 % within an hour) favours none.
# Usage: benches/wrk/compare.sh ROUNDS GATEWAY_BINARY...
#   e.g. keep a copy of target/release/gateway, change the code, rebuild, then
#   benches/wrk/compare.sh 3 /tmp/gateway-before target/release/gateway
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 2 ]; then
  sed -n '2,6p' "$0" >&2
  exit 2
fi
rounds="$1"
shift
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    rate=$(AURA_BENCH_GATEWAY_BIN="$(realpath "$bin")" benches/wrk/run.sh -t2 -c32 -d8s |
      awk '/Requests\/sec/ {print $2}')
    echo "round $round  $bin  ${rate:-failed} req/s"
  done
done
