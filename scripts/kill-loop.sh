#!/usr/bin/env bash
# Kill loop: SIGKILLs a writer at random moments, cycle after cycle, and after every kill checks
# that each acknowledged write survived and nothing unwritten appeared.
#
#   api    `slice crash-writer` writes through the API (sync=always, tiny memtables and blob
#          files, so kills land in flushes, compactions and blob writes too); acknowledged =
#          the call returned. After the kill, `slice crash-verify` opens the store, compares
#          it with everything acknowledged so far, and runs `check`.
#   mount  the store is mounted and `slice crash-file-writer` writes files through it;
#          acknowledged = fsync returned (unlink and rename: the call returned). Then the mount
#          daemon AND the writer are SIGKILLed together, the store is mounted again at once
#          (over the dead mount, which must be cleared: exactly one mount may be there), and
#          the files are checked through the new mount.
#
# Usage: scripts/kill-loop.sh [--cycles N] [--mode api|mount|both] [--max-ms MS] [--seed S]
#                             [--slice PATH] [--work DIR] [--keep]
#   N=200 scripts/kill-loop.sh      same as --cycles 200 (default 1000, for each mode)
# Prints one summary line per mode and a total line; exits 1 on any loss (the work directory is
# kept for inspection), 2 on a usage or setup error. Mount mode needs root (or fuse) and
# fusermount3.
set -uo pipefail

CYCLES=${N:-1000}
MODE=both
MAX_MS=400
SEED=$((RANDOM * 32768 + RANDOM))
SLICE=${SLICE:-}
WORK=
KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cycles) CYCLES=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    --max-ms) MAX_MS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --slice) SLICE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "kill-loop: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$MODE" in api|mount|both) ;; *) echo "kill-loop: --mode is api, mount or both" >&2; exit 2 ;; esac
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "$SLICE" ]]; then
  SLICE=$REPO/.build/debug/slice
  [[ -x "$SLICE" ]] || SLICE=$REPO/.build/release/slice
fi
[[ -x "$SLICE" ]] || { echo "kill-loop: no slice binary (build first, or pass --slice)" >&2; exit 2; }
[[ -n "$WORK" ]] || WORK=$(mktemp -d /tmp/slice-kill-XXXXXX)
mkdir -p "$WORK"
RANDOM=$SEED
echo "kill-loop: seed $SEED, $CYCLES cycles per mode ($MODE), kills within ${MAX_MS} ms of a start, work dir $WORK"

FAILED=0
WRITER=
MNT=
TOTAL_CYCLES=0
TOTAL_ACKS=0
START=$SECONDS

cleanup() {
  [[ -n "$WRITER" ]] && kill -9 "$WRITER" 2>/dev/null
  if [[ -n "$MNT" ]] && [[ $(layers "$MNT") -gt 0 ]]; then
    "$SLICE" umount "$MNT" >/dev/null 2>&1 || while [[ $(layers "$MNT") -gt 0 ]]; do
      fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || break
    done
  fi
  if [[ $FAILED -eq 0 && $KEEP -eq 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# Mounts (of any kind) at exactly this mount point, from the kernel's table.
layers() { awk -v m="$1" '$5 == m { n++ } END { print n + 0 }' /proc/self/mountinfo; }

# The process holding the store's LOCK: the mount daemon.
daemon_pid() {
  local ino
  ino=$(stat -c %i "$1/LOCK") || return 1
  awk -v ino="$ino" '$2 == "FLOCK" { split($6, f, ":"); if (f[3] == ino) print $5 }' /proc/locks | head -1
}

# Waits until a killed process is gone (or a zombie: it holds nothing then).
wait_gone() {
  local i
  for ((i = 0; i < 1000; i++)); do
    [[ -e /proc/$1 ]] || return 0
    [[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.01
  done
  return 1
}

# Reports a loss or a broken cycle, then stops with the evidence kept.
fail() {
  FAILED=1
  echo "kill-loop: FAILURE in $1 cycle $2: $3" >&2
  summary "$1" "$2" "$ACKS" 1
  echo "kill-loop: cycles=$((TOTAL_CYCLES + $2)) acknowledged_ops_verified=$((TOTAL_ACKS + ACKS)) failures=1 runtime=$((SECONDS - START))s (work dir kept: $WORK)"
  exit 1
}

summary() {
  echo "kill-loop: $1: cycles=$2 acknowledged_ops_verified=$3 failures=$4 kills_before_first_ack=$EMPTY runtime=$((SECONDS - MODE_START))s"
}

# Runs crash-verify; adds what it checked to ACKS or fails the cycle.
verify() {
  local mode=$1 cycle=$2 out n
  shift 2
  if ! out=$("$SLICE" crash-verify "$@" 2>"$WORK/verify-err"); then
    fail "$mode" "$cycle" "$(echo "$out"; cat "$WORK/verify-err")"
  fi
  n=$(sed -n 's/^checked: \([0-9]*\) acknowledged.*/\1/p' <<<"$out")
  [[ "$n" == 0 ]] && EMPTY=$((EMPTY + 1))
  ACKS=$((ACKS + n))
}

run_api() {
  local dir=$WORK/api c status
  MODE_START=$SECONDS ACKS=0 EMPTY=0
  for ((c = 1; c <= CYCLES; c++)); do
    "$SLICE" crash-writer "$dir" --seed "$c" --keys 400 >"$WORK/api-out" 2>"$WORK/api-err" &
    WRITER=$!
    sleep_ms $((RANDOM % MAX_MS))
    kill -9 "$WRITER" 2>/dev/null
    status=0
    { wait "$WRITER"; } 2>/dev/null || status=$?
    WRITER=
    [[ $status -eq 137 ]] || fail api "$c" "the writer exited by itself (status $status): $(tail -3 "$WORK/api-err")"
    verify api "$c" "$dir" --state "$WORK/api-state" --log "$WORK/api-out"
    ((c % 100 == 0)) && echo "kill-loop: api: $c cycles, $ACKS acknowledged operations verified"
  done
  TOTAL_CYCLES=$((TOTAL_CYCLES + CYCLES))
  TOTAL_ACKS=$((TOTAL_ACKS + ACKS))
  summary api "$CYCLES" "$ACKS" 0
}

# Mounts the store, clearing the mount the last kill left; exactly one mount may result.
mount_store() {
  local n
  "$SLICE" mount "$1" "$MNT" -o memtable_mb=1 >/dev/null 2>"$WORK/mount-err" ||
    fail mount "$2" "slice mount failed: $(cat "$WORK/mount-err")"
  n=$(layers "$MNT")
  [[ $n -eq 1 ]] || fail mount "$2" "$n mounts at $MNT after slice mount"
}

run_mount() {
  local dir=$WORK/fs c daemon status
  MNT=$WORK/mnt
  mkdir -p "$MNT"
  MODE_START=$SECONDS ACKS=0 EMPTY=0
  for ((c = 1; c <= CYCLES; c++)); do
    mount_store "$dir" "$c"
    if ((c > 1)); then verify mount "$((c - 1))" "$MNT" --mount --state "$WORK/fs-state" --log "$WORK/fs-out"; fi
    daemon=$(daemon_pid "$dir")
    [[ -n "$daemon" ]] || fail mount "$c" "cannot find the mount daemon"
    "$SLICE" crash-file-writer "$MNT" --seed "$c" >"$WORK/fs-out" 2>"$WORK/fs-err" &
    WRITER=$!
    sleep_ms $((RANDOM % MAX_MS))
    kill -0 "$daemon" 2>/dev/null || fail mount "$c" "the mount daemon died by itself (see $dir/mount.log)"
    # Both at once, in either order: the writer first lets the kernel release its open files
    # (the daemon may commit them as it dies); the daemon first fails the writer's calls.
    if ((RANDOM % 2)); then kill -9 "$daemon" "$WRITER"; else kill -9 "$WRITER" "$daemon"; fi 2>/dev/null
    status=0
    { wait "$WRITER"; } 2>/dev/null || status=$?
    WRITER=
    # Status 3: a call failed because the daemon was already gone (ENOTCONN, ECONNABORTED).
    if [[ $status -ne 137 ]] && ! { [[ $status -eq 3 ]] && grep -q '^E.*conn' "$WORK/fs-out"; }; then
      fail mount "$c" "the writer exited by itself (status $status): $(grep '^E' "$WORK/fs-out" | head -3)"
    fi
    wait_gone "$daemon" || fail mount "$c" "the mount daemon $daemon did not die"
    ((c % 100 == 0)) && echo "kill-loop: mount: $c cycles, $ACKS acknowledged operations verified"
  done
  mount_store "$dir" "$CYCLES"
  verify mount "$CYCLES" "$MNT" --mount --state "$WORK/fs-state" --log "$WORK/fs-out"
  "$SLICE" umount "$MNT" 2>"$WORK/mount-err" || fail mount "$CYCLES" "slice umount failed: $(cat "$WORK/mount-err")"
  [[ $(layers "$MNT") -eq 0 ]] || fail mount "$CYCLES" "mounts left at $MNT after slice umount"
  "$SLICE" check "$dir" >/dev/null 2>"$WORK/check-err" || fail mount "$CYCLES" "check: $(cat "$WORK/check-err")"
  TOTAL_CYCLES=$((TOTAL_CYCLES + CYCLES))
  TOTAL_ACKS=$((TOTAL_ACKS + ACKS))
  summary mount "$CYCLES" "$ACKS" 0
}

[[ $MODE == mount ]] || run_api
[[ $MODE == api ]] || run_mount
echo "kill-loop: cycles=$TOTAL_CYCLES acknowledged_ops_verified=$TOTAL_ACKS failures=0 runtime=$((SECONDS - START))s"
