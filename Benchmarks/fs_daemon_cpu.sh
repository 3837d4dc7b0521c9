#!/usr/bin/env bash
# Daemon CPU per filesystem operation: mounts a fresh Slice store, runs fs_ops loops on it and
# reads the daemon's CPU ticks (/proc/PID/stat, user + system) around each one.
#   MODE=isolated   create, stat, rename, unlink of N 4 KiB files in one directory, and
#                   create and unlink of E (50,000) empty files in another
#   MODE=sequence   fs_bench.sh's order: create, stat, create in 100 dirs, 100,000 empty
#                   creates, cold read, rename, unlink, unlink of the empty files
#   MOPTS="-o blob_kb=4" passes mount options; BIN=path/to/slice measures another build
#   (A/Bs). Needs Benchmarks/fs_bench.sh run once (it compiles .bench-fs/bin/fs_ops) and root.
#   Each line also gives the FUSE requests per operation, by kind (the daemon's own counts,
#   `fuseRequests` in .stats.json): the kernel round trips behind each call.
#   bash Benchmarks/fs_daemon_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
E=${E:-50000}
MODE=${MODE:-isolated}
BIN=${BIN:-$PWD/.build/release/slice}
F=$PWD/.bench-fs/bin/fs_ops
[[ -x $F ]] || { echo "fs_daemon_cpu: run Benchmarks/fs_bench.sh once first (builds $F)" >&2; exit 1; }
D=$PWD/.bench-fs/cpu
fusermount3 -u "$D/mnt" 2>/dev/null || true
rm -rf "$D"; mkdir -p "$D/data" "$D/mnt"
# shellcheck disable=SC2086
"$BIN" mount "$D/data" "$D/mnt" ${MOPTS:-}
trap '"$BIN" umount "$D/mnt" >/dev/null 2>&1 || fusermount3 -u "$D/mnt" 2>/dev/null || true' EXIT
PID=$(pgrep -n -f -- "mount $D/data $D/mnt --ready-fd")
M=$D/mnt
mkdir "$M/one" "$M/spread" "$M/big"
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# The daemon's FUSE request counts by kind (`fuseRequests` in .stats.json).
requests() { cat "$M/.stats.json" > "$D/requests.$1"; }
# Requests per operation between two snapshots (reading .stats.json itself adds a few).
per_op() {
  python3 - "$D/requests.a" "$D/requests.b" "$1" <<'PY'
import json, sys
a, b = (json.load(open(p)).get("fuseRequests", {}) for p in sys.argv[1:3])
n = int(sys.argv[3])
print(" ".join(f"{k}={(b[k] - a.get(k, 0)) / n:.2f}" for k in sorted(b) if (b[k] - a.get(k, 0)) / n >= 0.01))
PY
}
run() {
  local name=$1 n=$2; shift 2
  local a b r
  requests a; a=$(ticks); r=$("$F" -F 4000 "$@" | grep RESULT); b=$(ticks); requests b
  echo "$name $(echo "$r" | grep -o 'ops_s=[0-9.]*') daemon_us_per_op=$(((b - a) * 10000 / n)) requests_per_op: $(per_op "$n")"
}
if [[ $MODE == isolated ]]; then
  run create "$N" create "$M/one" "$N" 4096
  run stat "$N" stat "$M/one" "$N"
  run mkempty "$E" create "$M/big" "$E" 0
  run rename "$N" -t r rename "$M/one" "$N"
  run unlink "$N" -p r unlink "$M/one" "$N"
  run unlinkempty "$E" unlink "$M/big" "$E"
else
  run create1 "$N" create "$M/one" "$N" 4096
  run stat "$N" stat "$M/one" "$N"
  run create100 "$N" create "$M/spread" "$N" 4096 100
  run mkempty 100000 create "$M/big" 100000 0
  sync; echo 3 > /proc/sys/vm/drop_caches
  run read "$N" read "$M/one" "$N" 4096
  run rename "$N" -t r rename "$M/one" "$N"
  run unlink "$N" -p r unlink "$M/one" "$N"
  run unlinkempty 100000 unlink "$M/big" 100000
fi
