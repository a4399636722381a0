#!/usr/bin/env bash
# needed-by: test
# what: .venv-llama-server: llama-cpp-python's OpenAI-compatible server (the live tier of OpenAiModel's tests)
# first-run: about 5 min (pip builds llama.cpp from source; later venvs reuse pip's wheel cache)
# The tests of OpenAiModel start this server on loopback, serving the SmolLM2 GGUF that
# 30-model.sh installs, and run the LanguageModel conformance suite, a learn cycle and a
# kill-mid-reply fallback against it. Pinned so that recorded quirks stay true.
# Idempotent: installs only when the server module is not importable. Runs with cwd = repo root.
set -euo pipefail
source scripts/lib/venv.sh
# Two build jobs: the machine has two cores, and more only thrashes.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
ensure_venv .venv-llama-server "llama-cpp-python[server]==0.3.36:llama_cpp.server"
