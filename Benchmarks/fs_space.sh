#!/usr/bin/env bash
# Disk use and write amplification of the workloads that rewrite, append and write at random,
# through a real mount, without any `.compact`:
#   rewrite   a 256 KiB file rewritten (open O_TRUNC, write, close: what `cp` does) 2,000 times
#   append    2,000 lines appended to a log, one open/write/close each (and again with
#             `-o writeback`, which commits a burst of closes once)
#   random    100,000 writes of 4 KiB at random offsets of a 2 MiB file, fsync every 1,000
# For each: bytes the user wrote, bytes the daemon wrote to disk (/proc/PID/io write_bytes, up
# to 5 s after the workload, background work included),
# their ratio (write amplification), the live size at the end, the peak size of the data
# directory (sampled every 0.1 s) and its size 5 s after the workload (space given back).
#   bash Benchmarks/fs_space.sh                      # release build, prints a Markdown table
#   SLICE_BIN=.build/debug/slice bash Benchmarks/fs_space.sh
# Needs root (or fuse) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE_BIN=${SLICE_BIN:-$PWD/.build/release/slice}
WORK=${WORK:-$PWD/.bench-space}
[[ -x $SLICE_BIN ]] || { echo "fs_space: $SLICE_BIN missing (swift build -c release --product slice)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK/mnt"

du_bytes() { du -sb --apparent-size "$1" 2>/dev/null | cut -f1; }
disk_bytes() { du -sB1 "$1" 2>/dev/null | cut -f1; }

# run NAME LIVE_BYTES USER_BYTES PYTHON_WORKLOAD
run() {
  local name=$1 live=$2 user=$3 code=$4
  local data=$WORK/$name-data mnt=$WORK/mnt
  # shellcheck disable=SC2086
  "$SLICE_BIN" mount "$data" "$mnt" ${MOUNT_OPTS:-}
  local pid
  pid=$(pgrep -n -f -- "mount $data $mnt --ready-fd")
  local w0
  w0=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
  local peak=0
  (while kill -0 "$pid" 2>/dev/null; do
    b=$(disk_bytes "$data"); a=$(du_bytes "$data")
    echo $((b > a ? b : a))
    sleep 0.1
  done) >"$WORK/$name.samples" &
  local sampler=$!
  python3 -c "$code" "$mnt"
  # Bytes written are read 5 s after the workload, so they include what it left to the
  # background: files the write-back held, flushes, compactions and blob garbage collection.
  sleep 5
  local w1 after
  w1=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
  after=$(disk_bytes "$data")
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  peak=$(sort -n "$WORK/$name.samples" | tail -1)
  "$SLICE_BIN" umount "$mnt" >/dev/null
  python3 - "$name" "$user" "$((w1 - w0))" "$live" "$peak" "$after" <<'PY'
import sys
name, user, disk, live, peak, after = sys.argv[1], *map(int, sys.argv[2:])
mib = lambda b: f"{b / 2**20:.1f}"
print(f"| {name} | {mib(user)} | {mib(disk)} | {disk / user:.2f} | {mib(live)} | {mib(peak)} | {mib(after)} |")
PY
}

echo "| workload | user MiB | written to disk MiB | write amplification | live MiB | peak on disk MiB | 5 s later MiB |"
echo "|---|---|---|---|---|---|---|"
run rewrite $((256 << 10)) $((2000 * (256 << 10))) '
import os, sys
p = os.path.join(sys.argv[1], "file")
for r in range(2000):
    with open(p, "wb") as f:
        f.write(bytes([r % 251]) * (256 << 10))
'
run append 117000 117000 '
import os, sys
p = os.path.join(sys.argv[1], "app.log")
for i in range(2000):
    with open(p, "ab") as f:
        f.write(f"{i}: the quick brown fox jumps over the lazy dog {i * 7919}\n".encode())
'
MOUNT_OPTS="-o writeback" run append-writeback 117000 117000 '
import os, sys
p = os.path.join(sys.argv[1], "app.log")
for i in range(2000):
    with open(p, "ab") as f:
        f.write(f"{i}: the quick brown fox jumps over the lazy dog {i * 7919}\n".encode())
'
run random $((2 << 20)) $((100000 * 4096)) '
import os, sys, random
p = os.path.join(sys.argv[1], "random.dat")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 2 << 20)
rng = random.Random(11)
block = bytearray(4096)
for i in range(100000):
    block[0] = i & 255
    os.pwrite(fd, bytes(block), rng.randrange(512) * 4096)
    if i % 1000 == 999:
        os.fsync(fd)
os.close(fd)
'
rm -rf "$WORK"
