#!/usr/bin/env bash
# Sets up the machine, builds Slice (release) and mounts a store: data in ./slice-data,
# mounted at /mnt/slice (override with SLICE_DATA and SLICE_MOUNT). Unmount with
#   .build/release/slice umount /mnt/slice
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product slice
data="${SLICE_DATA:-$PWD/slice-data}"
mnt="${SLICE_MOUNT:-/mnt/slice}"
mkdir -p "$mnt"
if grep -qs " $mnt fuse.slice " /proc/mounts; then
  echo "already mounted at $mnt"
else
  .build/release/slice mount "$data" "$mnt"
fi
echo "store $data is mounted at $mnt"
echo "try: echo hello > $mnt/greeting; cat $mnt/greeting; cat $mnt/.stats | head"
echo "unmount: .build/release/slice umount $mnt"
