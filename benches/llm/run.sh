#!/usr/bin/env bash
# LocalModel against llama-cpp-python on the same GGUF files, thread count, prompt and
# greedy decoding: load time, prompt and generation tokens/s for each model.
#
#   benches/llm/run.sh [THREADS]            # default 2 threads; both tiny models
#
# llama-cpp-python builds llama.cpp from source (a few minutes on 2 cores) into
# ${AURA_BENCH_VENV:-.venv-bench}, once, with the SIMD flags .cargo/config.toml gives
# LocalModel's llama.cpp (and GGML_NATIVE off: the native build dies here in the AMX kernel).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
THREADS="${1:-2}"
VENV="${AURA_BENCH_VENV:-.venv-bench}"
source scripts/lib/venv.sh
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    ensure_venv "$VENV" llama-cpp-python:llama_cpp
cargo build --release -q -p aura-cognition --example bench_local
BENCH="${CARGO_TARGET_DIR:-target}/release/examples/bench_local"
for model in models/SmolLM2-135M-Instruct.Q4_1.gguf models/gemma-3-270m-q4_k_m.gguf; do
    [ -f "$model" ] || { echo "missing $model: run scripts/setup.sh"; exit 1; }
    echo "== LocalModel: $model"
    "$BENCH" --model "$model" --threads "$THREADS" --gen 128 --runs 5
    echo "== llama-cpp-python $("$VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)'): $model"
    "$VENV/bin/python" aura-cognition/examples/bench_llama_cpp_python.py \
        --model "$model" --threads "$THREADS" --gen 128 --runs 5
done
