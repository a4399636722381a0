#!/usr/bin/env bash
# Fuzzes the real gateway against the OpenAPI document it serves: Schemathesis, every
# check, >= 100 examples per operation (config: aura-gateway/schemathesis/schemathesis.toml,
# which says what the gateway under test lacks and why two answers are allowed where
# they apply). Exits non-zero on any failure.
#
#   bash scripts/schemathesis.sh            # builds the gateway (debug) if needed
#   GATEWAY=target/release/gateway bash scripts/schemathesis.sh
#
# Needs the project venv (.venv with schemathesis: scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
export PATH="$HOME/.cargo/bin:$PATH"
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
GATEWAY="${GATEWAY:-$TARGET/debug/gateway}"
if [ ! -x "$GATEWAY" ]; then
    echo "schemathesis: building the gateway"
    # The features `cargo test --workspace --all-features` builds with, so the two share
    # one build.
    cargo build --workspace --all-features --bin gateway
fi
WORK="$(mktemp -d)"
# A port no one is listening on, chosen by the kernel.
PORT="$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TOKEN="schemathesis-$RANDOM$RANDOM"
cleanup() {
    local rc=$?
    if [ -n "${GW_PID:-}" ]; then
        kill "$GW_PID" 2>/dev/null || true
        wait "$GW_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

# A fresh store, no model (a path that does not exist: learning is off), no forge; the
# failed-authentication limit is raised because the fuzzer sends requests without a
# token on purpose, and the limit has tests of its own.
env -i PATH="$PATH" HOME="$HOME" \
    AURA_DATA_DIR="$WORK/data" AURA_LOG_DIR="$WORK/logs" \
    AURA_MODEL_PATH="$WORK/no-model.gguf" \
    AURA_GATEWAY_ADDR="127.0.0.1:$PORT" AURA_GATEWAY_TOKEN="$TOKEN" \
    AURA_GATEWAY_AUTH_FAILURES_PER_MINUTE=1000000 \
    "$GATEWAY" >"$WORK/gateway.out" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$PORT/v1/health" >/dev/null 2>&1 && break
    kill -0 "$GW_PID" 2>/dev/null || { cat "$WORK/gateway.out"; exit 1; }
    sleep 0.1
done

echo "schemathesis: fuzzing the gateway at 127.0.0.1:$PORT (every check, >= 100 examples per operation)"
# /v1/events is a stream that never ends by design; its behaviour has its own tests
# (aura-gateway/tests/it/gateway.rs). Run from the scratch directory: Schemathesis keeps
# its cache (.schemathesis/) in the working directory.
cd "$WORK"
"$ROOT/.venv/bin/schemathesis" \
    --config-file "$ROOT/aura-gateway/schemathesis/schemathesis.toml" \
    run "http://127.0.0.1:$PORT/v1/openapi.json" \
    --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $TOKEN" \
    --checks all \
    --exclude-path /v1/events \
    --no-color \
    "$@"
