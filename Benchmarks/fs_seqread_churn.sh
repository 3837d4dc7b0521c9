#!/usr/bin/env bash
# Cold sequential read of a 2 GiB file through a fresh Slice mount, optionally after the small-file
# churn fs_bench.sh runs first (BENCHMARKS.md, "no FLUSH on close": the slower read it left).
#   CHURN=1   first create and delete 20,000 × 4 KiB and 100,000 empty files (default 1)
#   MODE=wo   write the big file as fs_ops does (created O_WRONLY: direct_io, no FLUSH)
#   MODE=rw   write it through an O_RDWR descriptor instead (the page cache path)
#   BIN=path/to/slice  the build to measure (default .build/release/slice)
# Prints the read rate (MB/s). Needs Benchmarks/fs_bench.sh run once (it compiles fs_ops) and root.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/.build/release/slice}
CHURN=${CHURN:-1}
MODE=${MODE:-wo}
F=$PWD/.bench-fs/bin/fs_ops
[[ -x $F ]] || { echo "fs_seqread_churn: run Benchmarks/fs_bench.sh once first (builds $F)" >&2; exit 1; }
D=$PWD/.bench-fs/seqread
fusermount3 -u "$D/mnt" 2>/dev/null || true
rm -rf "$D"; mkdir -p "$D/data" "$D/mnt"
"$BIN" mount "$D/data" "$D/mnt"
trap '"$BIN" umount "$D/mnt" >/dev/null 2>&1 || fusermount3 -u "$D/mnt" 2>/dev/null || true' EXIT
M=$D/mnt
if [[ $CHURN == 1 ]]; then
  mkdir "$M/one" "$M/big"
  "$F" -F 4000 create "$M/one" 20000 4096 >/dev/null
  "$F" -F 4000 create "$M/big" 100000 0 >/dev/null
  "$F" -F 4000 unlink "$M/one" 20000 >/dev/null
  "$F" -F 4000 unlink "$M/big" 100000 >/dev/null
  rmdir "$M/one" "$M/big"
fi
if [[ $MODE == wo ]]; then
  "$F" seqwrite "$M/a.dat" 2048 >/dev/null
else
  python3 -c "
import os
fd = os.open('$M/a.dat', os.O_RDWR | os.O_CREAT, 0o644)
block = b'x' * (1 << 20)
for _ in range(2048): os.write(fd, block)
os.fsync(fd); os.close(fd)"
fi
sync; echo 3 >/proc/sys/vm/drop_caches
echo "CHURN=$CHURN MODE=$MODE $("$F" seqread "$M/a.dat" | grep -o 'mb_s=[0-9.]*')"
