#!/usr/bin/env bash
# Checks the machine before setup installs anything, and says what will not work.
# Arguments: the setup purposes. Warnings only, except a missing Rust toolchain.
# README.md, "Before you start" and "Troubleshooting", explains each item.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
needs_build=0
for p in "$@"; do
    case "$p" in demo | test) needs_build=1 ;; esac
done

warn() { echo "warning: $*" >&2; }

[ "$(uname -s)" = "Linux" ] || warn "AURA runs on Linux only (the jail uses Linux namespaces)"

if [ "$needs_build" = 1 ]; then
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: no Rust toolchain: install it with rustup (https://rustup.rs), Rust 1.95 or later" >&2
        exit 1
    fi
    have="$(cargo --version | awk '{print $2}')"
    if [ "$(printf '%s\n' 1.95.0 "$have" | sort -V | head -n1)" != 1.95.0 ]; then
        echo "error: cargo $have is older than the workspace's rust-version 1.95: rustup update" >&2
        exit 1
    fi
    if [ "$(uname -m)" = x86_64 ] && [ -z "${GGML_AVX2:-}" ]; then
        for flag in avx2 fma bmi2; do
            grep -qw "$flag" /proc/cpuinfo \
                || warn "this CPU lacks $flag: the embedded model would die with an illegal instruction; see README.md, Troubleshooting"
        done
    fi
    if ! unshare --user --map-root-user true >/dev/null 2>&1; then
        warn "unprivileged user namespaces are off: the jail cannot run methods; see README.md, Troubleshooting"
    fi
fi
