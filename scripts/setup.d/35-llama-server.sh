#!/usr/bin/env bash
# needed-by: test
# what: .venv-llama-server: llama-cpp-python's OpenAI-compatible server (the live tier of OpenAiModel's tests)
# first-run: about 5 min (pip builds llama.cpp from source; later venvs reuse pip's wheel cache)
# The tests of OpenAiModel start this server on loopback, serving the SmolLM2 GGUF that
# 30-model.sh installs, and run the LanguageModel conformance suite, a learn cycle and a
# kill-mid-reply fallback against it. Pinned so that recorded quirks stay true.
# Idempotent: installs only when the server module is not importable, and rebuilds when
# the installed build cannot run a token on this CPU. Runs with cwd = repo root.
set -euo pipefail
source scripts/lib/venv.sh
# Two build jobs: the machine has two cores, and more only thrashes.
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
# The SIMD every x86-64-v3 CPU has, as .cargo/config.toml gives the embedded model, not
# llama.cpp's default -march=native: pip caches the wheel it builds, and a wheel built
# natively on one machine dies with an illegal instruction on a CPU that lacks one of
# that machine's extensions (AVX-512 VNNI, AMX, ...). A caller's CMAKE_ARGS wins.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"
VERSION=0.3.36
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
ensure_venv .venv-llama-server "llama-cpp-python[server]==$VERSION:llama_cpp.server"

# A token after a prompt of some length: importing is not enough, the kernels run only
# when the model answers, and a short prompt takes other kernels than a long one.
runs_here() {
    # In a subshell whose stderr is /dev/null: the shell's own "Illegal instruction" too.
    (.venv-llama-server/bin/python - "$MODEL" <<'PY') >/dev/null 2>&1
import sys
import llama_cpp
m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=512, n_threads=2, verbose=False)
m("Tell me a story about a cat who lives in a house by the sea. " * 4, max_tokens=2)
PY
}
if [ -f "$MODEL" ] && ! runs_here; then
    echo "llama-cpp-python in .venv-llama-server cannot run on this CPU (a wheel built for another);" \
        "rebuilding it for x86-64-v3 (about 7 min)"
    .venv-llama-server/bin/python -m pip cache remove 'llama_cpp_python*' >/dev/null 2>&1 || true
    .venv-llama-server/bin/python -m pip install --quiet --disable-pip-version-check \
        --force-reinstall --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION"
    runs_here || { echo "llama-cpp-python still cannot run a token here; see CMAKE_ARGS in $0" >&2; exit 1; }
fi
