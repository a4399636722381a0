#!/usr/bin/env bash
# needed-by: test
# what: Debian packages chromium and chromium-driver (the inspector's browser tests)
# first-run: about 1 min
# The inspector's tests drive a real headless Chromium over WebDriver
# (aura-gateway/tests/it/ui.rs); AURA_SKIP_BROWSER=1 skips them instead.
set -euo pipefail
source scripts/lib/apt.sh
apt_install_missing chromium chromium-driver
