#!/usr/bin/env bash
# needed-by: forge
# what: .venv-forge with torch, transformers, peft (about 6 GB)
# first-run: 10 to 20 min
# The forge's training venv (.venv-forge at the repo root), opt-in: setup.sh runs it for
# `scripts/setup.sh forge` or AURA_SETUP_FORGE=1. aura-forge's LocalForge runs
# aura-forge/python/train_lora.py in it.
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
# Runs with cwd = repo root. Or point AURA_FORGE_PYTHON at an interpreter that has these packages instead.
set -euo pipefail
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
source scripts/lib/venv.sh
ensure_venv "$VENV" "${PACKAGES[@]}"

# llama.cpp's conversion scripts (convert_hf_to_gguf.py and its gguf-py), for the merged
# GGUF model UnslothForge writes (AURA_LLAMA_CPP_DIR, default .venv-forge/llama.cpp). The
# llama.cpp crate's sources lack them; the llama-cpp-python source package on PyPI
# vendors all of llama.cpp, so its sdist is fetched (no build) and the scripts kept.
LLAMA_CPP="$VENV/llama.cpp"
if [ ! -f "$LLAMA_CPP/convert_hf_to_gguf.py" ]; then
    echo "fetching llama.cpp's conversion scripts (llama-cpp-python's source package)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check scikit-build-core
    tmp="$(mktemp -d)"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-build-isolation --no-binary llama-cpp-python llama-cpp-python -d "$tmp"
    tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
    rm -rf "$LLAMA_CPP" && mkdir -p "$LLAMA_CPP"
    src="$(ls -d "$tmp"/llama_cpp_python-*/vendor/llama.cpp)"
    cp -r "$src"/convert_hf_to_gguf.py "$src"/convert_lora_to_gguf.py "$src"/conversion "$src"/gguf-py "$LLAMA_CPP"/
    [ -f "$src/requirements.txt" ] && cp "$src/requirements.txt" "$LLAMA_CPP"/
    rm -rf "$tmp"
fi
