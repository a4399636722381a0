#!/usr/bin/env bash
# needed-by: demo test
# what: Debian packages python3, python3-venv
# first-run: about 1 min
# Debian packages every command needs: the interpreter the jail runs methods with, and
# venv for the project's .venv (the model step downloads with its pip).
set -euo pipefail
source scripts/lib/apt.sh
apt_install_missing python3 python3-venv
