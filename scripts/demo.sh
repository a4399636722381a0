#!/usr/bin/env bash
# The main job: set up what AURA needs, then run the demo on the embedded defaults
# (SQLite store under data/, the namespace jail).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# Debian's interpreter starts in ~19 ms; a pyenv shim on PATH takes ~130 ms.
export AURA_SANDBOX_PYTHON="${AURA_SANDBOX_PYTHON:-/usr/bin/python3}"
exec cargo run --release -q -p aura-examples --bin demo -- "$@"
