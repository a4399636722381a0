#!/usr/bin/env bash
# The forge's training venv (.venv-forge at the repo root), opt-in: does nothing unless
# AURA_SETUP_FORGE=1. aura-forge's LocalForge runs aura-forge/python/train_lora.py in it.
#
# It is a venv of its own, apart from .venv, because it is large: PyPI's torch is the
# CUDA build (about 5.6 GB installed) and no CPU-only wheel is reachable here; it runs
# on the CPU all the same. Packages:
#   torch transformers peft  - load the base GGUF, train the LoRA adapter
#   gguf                     - read the GGUF (transformers needs it) and write the adapter
#   sentencepiece            - tokenizers transformers may build from GGUF metadata
#   safetensors              - transformers' weight format
#   jinja2                   - renders the model's chat template exactly as at inference
#
# Idempotent: creates the venv only if missing, installs only what is not importable.
# Runs with cwd = repo root. Point AURA_FORGE_PYTHON at another interpreter to skip it.
set -euo pipefail
if [ "${AURA_SETUP_FORGE:-0}" != "1" ]; then
    echo "skipped: set AURA_SETUP_FORGE=1 to install the forge's training venv (.venv-forge, ~6 GB)"
    exit 0
fi
PACKAGES=(
    "torch:torch"
    "transformers:transformers"
    "peft:peft"
    "gguf:gguf"
    "sentencepiece:sentencepiece"
    "safetensors:safetensors"
    "jinja2:jinja2"
)
VENV=.venv-forge
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
    echo "pip installing into $VENV: ${missing[*]}"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
