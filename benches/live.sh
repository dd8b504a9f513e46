#!/bin/sh
# Runs `benches/live.rs` on a filesystem of its own: an ext4 image mounted (loop) in a private
# mount namespace, so the fanotify filesystem mark sees only the benchmark's events and not
# every other process's writes to the machine's root filesystem (that case is measured by
# `--only foreign`). The image and the trees generated in it are kept between runs.
#
# sudo sh benches/live.sh [ARGS for benches/live.rs]   (e.g. --only cpu --sizes 1000000)
set -eu
IMG=${DTUI_LIVEBENCH_IMG:-/tmp/dtui-livebench.img}
MNT=${DTUI_LIVEBENCH_MNT:-/tmp/dtui-livebench-fs}
cd "$(dirname "$0")/.."
cargo bench --bench live --no-run
EXE=$(ls -t target/release/deps/live-* | grep -v '\.d$' | head -1)
if [ ! -f "$IMG" ]; then
    truncate -s 24G "$IMG"
    mkfs.ext4 -q -N 4000000 "$IMG"
fi
mkdir -p "$MNT"
exec unshare -m --propagation private sh -c 'mount -o loop "$1" "$2" && shift 2 && exec "$@"' \
    sh "$IMG" "$MNT" "$EXE" --base "$MNT" "$@"
