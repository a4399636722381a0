#!/usr/bin/env bash
# Keeps a shared cargo target directory from filling the disk. Called by .ci/run.
#
#   scripts/lib/prune-target.sh TARGET_DIR [--force]
#
# Each test and example executable is ~350 MB, and a changed hash leaves the old one
# behind (55 GB of them filled the disk once); so does every build of llama.cpp under
# another feature set (a 400 MB library and a 1.3 GB build directory each: a
# `cargo test -p <crate>` unifies features differently). When under 20 GiB is free (or
# with --force), it removes the test executables no build wrote in the last hour, and
# keeps only the newest few copies of each library and build-script directory. A
# build remakes any it still needs, so pruning costs time, never correctness.
set -euo pipefail
target="$1"
debug="$target/debug"
[ -d "$debug/deps" ] || exit 0
free_kib=$(df --output=avail -k "$target" 2>/dev/null | tail -1 || echo 0)
if [ "${2:-}" != --force ] && [ "${free_kib:-0}" -ge $((20 * 1024 * 1024)) ]; then
    exit 0
fi
# The entries of the current directory beyond the $1 newest of each name without its
# hash (`libfoo-0123abcd.rlib` and `libfoo-4567ef01.rlib` are two copies of one).
stale() {
    ls -t | awk -v keep="$1" '{
        key = $0; sub(/-[0-9a-f]+\./, ".", key); sub(/-[0-9a-f]+$/, "", key)
        if (++seen[key] > keep) print
    }'
}
echo "prune: removing stale test executables, libraries and build directories from $debug"
find "$debug/deps" -maxdepth 1 -type f ! -name '*.*' -mmin +60 -delete || true
(cd "$debug/deps" && stale 3 | xargs -r rm -f --) || true
# A build script has two directories per build: its compiled program, and its run.
if [ -d "$debug/build" ]; then
    (cd "$debug/build" && stale 6 | xargs -r rm -rf --) || true
fi
echo "prune: $(df -h --output=avail "$target" | tail -1 | tr -d ' ') free now"
