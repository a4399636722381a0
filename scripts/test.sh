#!/usr/bin/env bash
# The whole test suite: set up what the tests need, then lint and test the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features
# The gateway that `cargo test` just built, fuzzed against the document it serves.
bash scripts/schemathesis.sh
bash scripts/test-python.sh
