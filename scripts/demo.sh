#!/usr/bin/env bash
# The main job: set up what the demo needs (not Docker: it runs methods in the jail),
# build it, then run it on the embedded defaults (SQLite store under data/, the
# namespace jail, the local model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
export PATH="$HOME/.cargo/bin:$PATH"
# Debian's interpreter starts in ~19 ms; a pyenv shim on PATH takes ~130 ms.
export AURA_SANDBOX_PYTHON="${AURA_SANDBOX_PYTHON:-/usr/bin/python3}"
# Offline defaults for the real-time context: a configured place and a local feed.
export AURA_LOCATION="${AURA_LOCATION:-the AURA lab}"
export AURA_NEWS_FEED_URL="${AURA_NEWS_FEED_URL:-file://$PWD/examples/data/local-news.rss}"
# The embedded model is tiny and slow on 2 cores: ALFRED alone keeps the demo short.
export AURA_CASCADE_MODE="${AURA_CASCADE_MODE:-single}"
echo "==> build: the demo, release profile, llama.cpp included (first run: about 10 min on 2 cores; later: seconds)"
start=$SECONDS
cargo build --release -p aura-examples --bin demo
echo "    build done in $((SECONDS - start)) s"
echo "==> demo: the model's steps are logged on stderr as they happen (the five scenarios: about 100 s on 2 idle cores)"
exec cargo run --release -q -p aura-examples --bin demo -- "$@"
