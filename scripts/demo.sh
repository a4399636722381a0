#!/usr/bin/env bash
# The main job: set up what the demo needs (not Docker: it runs methods in the jail),
# build it, then run it on the embedded defaults (SQLite store under data/, the
# namespace jail, the local model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
source scripts/lib/demo-env.sh
echo "==> build: the demo, release profile, llama.cpp included (first run: 10–15 min on 2 cores; later: seconds)"
start=$SECONDS
cargo build --release -p aura-examples --bin demo
echo "    build done in $((SECONDS - start)) s"
echo "==> demo: the model's steps are logged on stderr as they happen (the five scenarios: about 100 s on 2 idle cores)"
exec cargo run --release -q -p aura-examples --bin demo -- "$@"
