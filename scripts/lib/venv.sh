# Sourced by setup steps: ensure_venv VENV "pip-name:import_name"...
# Creates VENV with Debian's interpreter if missing and pip-installs only the packages
# whose module is not importable yet (idempotent). The caller's environment reaches pip
# (e.g. CMAKE_ARGS for a source build).
ensure_venv() {
    local venv="$1"
    shift
    if [ ! -x "$venv/bin/python" ]; then
        echo "creating $venv"
        /usr/bin/python3 -m venv "$venv"
    fi
    local missing=() entry pip_name import_name
    for entry in "$@"; do
        pip_name="${entry%%:*}"
        import_name="${entry#*:}"
        "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$import_name') is None)" 2>/dev/null \
            || missing+=("$pip_name")
    done
    if ((${#missing[@]})); then
        echo "pip installing into $venv: ${missing[*]}"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    fi
}
