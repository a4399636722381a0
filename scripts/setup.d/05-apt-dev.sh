#!/usr/bin/env bash
# needed-by: test
# what: Debian packages python3-dev, pkg-config, libssl-dev
# first-run: about 1 min
# Debian packages the whole workspace's build needs beyond the demo's (the tests build
# every crate with every feature).
set -euo pipefail
# python3-dev: libpython for the pyo3 bindings; pkg-config + libssl-dev: reqwest's TLS
# in the ArangoDB adapter (arangors).
PKGS=(python3-dev pkg-config libssl-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
