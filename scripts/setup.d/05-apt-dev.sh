#!/usr/bin/env bash
# needed-by: test
# what: Debian packages python3-dev, pkg-config, libssl-dev
# first-run: about 1 min
# Debian packages the whole workspace's build needs beyond the demo's (the tests build
# every crate with every feature).
set -euo pipefail
# python3-dev: libpython for the pyo3 bindings; pkg-config + libssl-dev: reqwest's TLS
# in the ArangoDB adapter (arangors).
source scripts/lib/apt.sh
apt_install_missing python3-dev pkg-config libssl-dev
