#!/usr/bin/env bash
# needed-by: test docker
# what: the Docker engine and the aura-sandbox:latest image
# first-run: 3 to 6 min (docker.io, then debootstrap of a minimal Debian)
# The Docker engine and the sandbox image for aura-sandbox's DockerSandbox, idempotently:
# installs docker.io and debootstrap (Debian) when missing, starts dockerd in the
# background when no engine answers, and builds the `aura-sandbox:latest` image offline
# (aura-sandbox/docker/build-image.sh) when it is missing.
set -euo pipefail
cd "${AURA_ROOT:-$(dirname "$0")/../..}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! $SUDO docker info >/dev/null 2>&1; then
    echo "starting dockerd"
    $SUDO sh -c 'nohup dockerd >/var/log/aura-dockerd.log 2>&1 &'
    for _ in $(seq 1 60); do
        $SUDO docker info >/dev/null 2>&1 && break
        sleep 1
    done
    $SUDO docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/aura-dockerd.log" >&2; exit 1; }
fi

IMAGE="${AURA_SANDBOX_IMAGE:-aura-sandbox:latest}"
if ! $SUDO docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "building $IMAGE"
    $SUDO bash aura-sandbox/docker/build-image.sh "$IMAGE"
fi
