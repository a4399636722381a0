#!/usr/bin/env bash
# Installs everything AURA's demo and tests need, idempotently: Debian packages,
# the Python venv (.venv) with the PyPI packages, the local GGUF model, the Docker
# engine and the sandbox image. Each step lives in scripts/setup.d/NN-name.sh and
# skips itself when its work is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
export AURA_ROOT="$PWD"
for step in scripts/setup.d/*.sh; do
    echo "==> setup: $(basename "$step" .sh)"
    bash "$step"
done
echo "==> setup: done"
