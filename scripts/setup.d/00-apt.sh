#!/usr/bin/env bash
# needed-by: demo test
# what: Debian packages python3, python3-venv
# first-run: about 1 min
# Debian packages every command needs: the interpreter the jail runs methods with, and
# venv for the project's .venv (the model step downloads with its pip).
set -euo pipefail
PKGS=(python3 python3-venv)
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
