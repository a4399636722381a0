# Sourced by the HTTP benches: builds the release gateway and starts it on a throw-away
# store with a fresh token, for the life of the calling script.
#   start_gateway PORT [SOFT_NOFILE]   sets $addr and exports AURA_GATEWAY_TOKEN
# With AURA_BENCH_GATEWAY_BIN set, that gateway binary runs instead, unbuilt (to
# compare builds: benches/wrk/compare.sh).
start_gateway() {
  local port="$1" nofile="${2:-}"
  local target="${CARGO_TARGET_DIR:-target}"
  local bin="${AURA_BENCH_GATEWAY_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build --release -p aura-examples --bin gateway -j 2
    bin="$target/release/gateway"
  fi
  gateway_tmp="$(mktemp -d)"
  export AURA_DATA_DIR="$gateway_tmp/data" AURA_GATEWAY_TOKEN="bench-$RANDOM$RANDOM" RUST_LOG=warn
  addr="127.0.0.1:$port"
  (
    # The soft open-files limit the gateway starts under, when asked (it raises it itself).
    if [ -n "$nofile" ]; then ulimit -Sn "$nofile"; fi
    exec "$bin" --addr "$addr" --log-dir "$gateway_tmp/logs"
  ) >"$gateway_tmp/out" 2>"$gateway_tmp/err" &
  gateway_pid=$!
  trap 'kill $gateway_pid 2>/dev/null; rm -rf "$gateway_tmp"' EXIT
  for _ in $(seq 100); do
    grep -q listening "$gateway_tmp/out" "$gateway_tmp/err" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the gateway did not start: $(tail -3 "$gateway_tmp/err")" >&2
  return 1
}
