#!/usr/bin/env bash
# The Python bindings' suite: build the wheel with maturin, install it into a fresh venv
# (exactly what a user's `pip install` does), run pytest against it, then check the
# type stubs against the module with mypy's stubtest.
# Called by scripts/test.sh after the Rust suite; needs scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
WHEELS="$TARGET/wheels"
VENV="$TARGET/py-test-venv"

rm -rf "$WHEELS"
# A dev-profile wheel reuses what `cargo test` just compiled; users build `--release`.
(cd bindings/python && CARGO_TARGET_DIR="$TARGET" "$ROOT/.venv/bin/maturin" build \
    --profile dev --interpreter /usr/bin/python3 --out "$WHEELS" --quiet)

/usr/bin/python3 -m venv --clear "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$WHEELS"/aura-*.whl pytest mypy
cd bindings/python
"$VENV/bin/python" -m pytest -q
# The type stubs against the built module: every name, signature and default (mypy's
# stubtest; the allowlist says why its one entry cannot be checked).
echo "stubtest: aura/_aura.pyi against the built aura._aura"
"$VENV/bin/python" -m mypy.stubtest aura._aura --allowlist stubtest-allowlist.txt
