#!/usr/bin/env bash
# Builds the DockerSandbox image offline (Debian mirror only, no registry pull):
#   bash aura-sandbox/docker/build-image.sh [IMAGE]      (default aura-sandbox:latest)
# A `debootstrap --variant=minbase bookworm` root filesystem with python3, trimmed,
# then `docker import`ed. The guest runner is not baked in: DockerSandbox passes it
# with every execution, so the image never goes stale against the crate.
set -euo pipefail
IMAGE="${1:-aura-sandbox:latest}"
MIRROR="${AURA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" -eq 0 ] || { echo "run as root (debootstrap needs it)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
WORK="$(mktemp -d /var/tmp/aura-sandbox-rootfs.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
debootstrap --variant=minbase --include=python3 bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
# Trim what a guest never needs.
rm -rf "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc/* \
       "$ROOT"/usr/share/man/* "$ROOT"/usr/share/locale/* "$ROOT"/usr/share/info/*
mkdir -p "$ROOT/scratch" && chmod 1777 "$ROOT/scratch"
tar -C "$ROOT" -c . | docker import \
    -c 'WORKDIR /scratch' -c 'USER 65534:65534' -c 'ENV PATH=/usr/bin:/bin' \
    -c 'LABEL org.aura.sandbox=image' - "$IMAGE" >/dev/null
echo "built $IMAGE"
