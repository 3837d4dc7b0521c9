#!/usr/bin/env bash
# Daemon memory while a large file is copied through the mount, and the copy's speed.
#
#   bash Benchmarks/bigfile_rss.sh          (SIZE_MB=4096 by default; needs root and /dev/fuse)
#
# Mounts a fresh store, copies a SIZE_MB file of random bytes in with cp, reads it back with
# cmp, and prints the time of each step and the daemon's peak resident memory (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE=${SLICE:-.build/release/slice}
SIZE_MB=${SIZE_MB:-4096}
WORK=${WORK:-/var/tmp/slice-bigfile}
[[ -x $SLICE ]] || swift build -c release --product slice >&2
rm -rf "$WORK" && mkdir -p "$WORK/mnt"
trap '"$SLICE" umount "$WORK/mnt" >/dev/null 2>&1 || fusermount3 -u "$WORK/mnt" 2>/dev/null; rm -rf "$WORK"' EXIT
head -c $((SIZE_MB << 20)) /dev/urandom >"$WORK/src"
"$SLICE" mount "$WORK/data" "$WORK/mnt"
pid=$(pgrep -f " mount $WORK/data" | head -1)
sync; echo 3 >/proc/sys/vm/drop_caches
t0=$(date +%s.%N); cp "$WORK/src" "$WORK/mnt/big"; sync "$WORK/mnt/big"; t1=$(date +%s.%N)
echo 3 >/proc/sys/vm/drop_caches
cmp "$WORK/src" "$WORK/mnt/big"; t2=$(date +%s.%N)
hwm=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")
awk -v a="$t0" -v b="$t1" -v c="$t2" -v mb="$SIZE_MB" -v hwm="$hwm" 'BEGIN {
  printf "| file | cp in (+ sync) | cmp (read back, cold) | daemon peak RSS |\n|---|---|---|---|\n"
  printf "| %d MiB | %.1f s (%.0f MB/s) | %.1f s (%.0f MB/s) | %d MiB |\n", mb, b - a, mb * 1.048576 / (b - a), c - b, mb * 1.048576 / (c - b), hwm }'
