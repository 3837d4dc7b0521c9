#!/usr/bin/env bash
# Filesystem benchmark, side by side on the same disk:
#   slice           a fresh Slice store mounted with `slice mount DATA MNT` (FUSE, daemonized)
#   passthrough_ll  libfuse's passthrough_ll example over a local directory (FUSE, 1 s timeouts),
#                   compiled here from /usr/share/doc/libfuse3-dev/examples
#   local           that local directory itself (no FUSE)
#   null            `slice null-mount MNT`: a filesystem answering from the daemon's memory, no
#                   store behind it (same FUSE bridge and timeouts as slice): the FUSE request
#                   ceiling. Files live in RAM (at most 1 GiB each), so keep BIG_MB <= 1024.
#   etcd            `slice mount etcd://…/benchR`: a tree in a 3-member etcd cluster on loopback
#                   (scripts/etcd-cluster.sh, started here in the work dir; members on ports
#                   ETCD_BASE+1..3), the shared-mount backend. Keep N and BIG_MB small: every
#                   change is a Raft commit on three members of the same disk.
# Every target runs the same workloads in the same order; per-file loops run in one process
# (Benchmarks/fs_ops.c, compiled here) so the numbers measure the filesystem, not fork/exec.
# Prints a Markdown table (medians over ROUNDS, targets alternating within each round) and
# writes it with machine information to Benchmarks/results/fs-<date>.md.
#
#   sudo bash Benchmarks/fs_bench.sh
#   N=2000 DIR_ENTRIES=10000 BIG_MB=256 FIO_SECONDS=3 bash Benchmarks/fs_bench.sh   # quick
#   ROUNDS=3 TARGETS="slice passthrough_ll" bash Benchmarks/fs_bench.sh
#
# Knobs (environment):
#   N=20000             4 KiB files for create/stat/read/rename/unlink
#   DIR_ENTRIES=100000  empty files in the readdir directory
#   BIG_MB=2048         size of the sequential write/read file (1 MiB blocks)
#   FIO_SECONDS=10      duration of each fio job (4 KiB randread, randwrite); fio optional
#   FIO_SIZE_MB=256     size of the fio file
#   ROUNDS=1            >1: every round runs all targets (order rotates), the table shows medians
#   TARGETS="slice passthrough_ll local"
#   SLICE_BIN=.build/release/slice   (copied into the work dir at start, so a rebuild during
#                                     the run does not change what is measured)
#   SLICE_OPTS          extra `slice mount -o` options (default: none; files of any size work)
#   FORGET_EVERY=4000   see below; 0 turns it off
#   SETTLE_SECONDS=65   see below; 0 turns it off
#   WORK=.bench-fs      work directory (same disk as the repo); KEEP_WORK=1 keeps its data
#
# Caches: `sync; echo 3 > /proc/sys/vm/drop_caches` runs before every "cold" step (read,
# seqread, readdir cold, fio randread). That empties the kernel's page, dentry and inode
# caches for all three targets (FUSE page cache included), but not what a daemon keeps in its
# own memory (Slice's memtables and block cache).
#
# FORGET_EVERY: passthrough_ll holds one O_PATH descriptor per inode the kernel knows, and a
# process here may hold at most 20,000 descriptors (root cannot raise it), so 20,000 files in
# one directory (or 100,000 entries) fail with EMFILE. Every FORGET_EVERY items of a per-file
# loop, fs_ops therefore writes 2 to drop_caches (the kernel forgets unused inodes and tells
# the daemon) and waits 0.1 s, outside the measured time. It is done for all targets alike.
#
# SETTLE_SECONDS: this disk's ext4 has no journal, and ext4 without a journal skips inodes
# deleted in the last 60 s (recently_deleted() in find_inode_bit) when it allocates one; right
# after 100,000 deletions a create costs ~1 ms of kernel CPU instead of ~25 µs. So each target
# creates everything before it deletes anything, and a target starts only SETTLE_SECONDS after
# the previous ext4-backed target (passthrough_ll, local) finished deleting.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
COMMAND_LINE="$0${*:+ $*}"

N=${N:-20000}
DIR_ENTRIES=${DIR_ENTRIES:-100000}
BIG_MB=${BIG_MB:-2048}
FIO_SECONDS=${FIO_SECONDS:-10}
FIO_SIZE_MB=${FIO_SIZE_MB:-256}
ROUNDS=${ROUNDS:-1}
TARGETS=${TARGETS:-slice passthrough_ll local}
SLICE_BIN=${SLICE_BIN:-$REPO/.build/release/slice}
SLICE_OPTS=${SLICE_OPTS:-}
FORGET_EVERY=${FORGET_EVERY:-4000}
SETTLE_SECONDS=${SETTLE_SECONDS:-65}
ETCD_BASE=${ETCD_BASE:-25790}
WORK=${WORK:-$REPO/.bench-fs}
KEEP_WORK=${KEEP_WORK:-0}
FILE_SIZE=4096
SUBDIRS=100

say() { printf '[fs_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { printf 'fs_bench: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preconditions
[[ $(id -u) == 0 ]] || fail "must run as root (FUSE mounts, drop_caches)"
[[ -c /dev/fuse ]] || fail "/dev/fuse is missing (load the fuse module / give the container the device)"
for n in N DIR_ENTRIES BIG_MB FIO_SECONDS FIO_SIZE_MB ROUNDS FORGET_EVERY SETTLE_SECONDS; do
  [[ ${!n} =~ ^[0-9]+$ ]] || fail "$n must be a non-negative integer (got '${!n}')"
done
((ROUNDS >= 1)) || fail "ROUNDS must be at least 1"
for t in $TARGETS; do
  case $t in slice | passthrough_ll | local | null | etcd) ;; *) fail "unknown target '$t' (slice, passthrough_ll, local, null, etcd)" ;; esac
done
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
command -v gcc >/dev/null || fail "gcc is missing (apt-get install gcc)"
command -v python3 >/dev/null || fail "python3 is missing"
if has_target slice || has_target passthrough_ll || has_target null; then
  command -v fusermount3 >/dev/null || fail "fusermount3 is missing (apt-get install fuse3)"
fi
if has_target null && ((BIG_MB > 1024)); then fail "the null target keeps files in memory, at most 1 GiB each: set BIG_MB <= 1024"; fi
if has_target slice || has_target null; then
  [[ -x $SLICE_BIN ]] || fail "no Slice binary at $SLICE_BIN (build it: swift build -c release, or set SLICE_BIN)"
fi
if has_target passthrough_ll; then
  pkg-config --exists fuse3 2>/dev/null || fail "pkg-config fuse3 failed (apt-get install libfuse3-dev pkg-config)"
  EXAMPLES=/usr/share/doc/libfuse3-dev/examples
  if [[ -f $EXAMPLES/passthrough_ll.c ]]; then PT_SRC=$EXAMPLES/passthrough_ll.c
  elif [[ -f $EXAMPLES/passthrough_ll.c.gz ]]; then PT_SRC=$EXAMPLES/passthrough_ll.c.gz
  else fail "passthrough_ll.c not found in $EXAMPLES (apt-get install libfuse3-dev)"; fi
fi
DROP=1
if ! [[ -w /proc/sys/vm/drop_caches ]] || ! (echo 1 >/proc/sys/vm/drop_caches) 2>/dev/null; then
  say "warning: cannot write /proc/sys/vm/drop_caches: reads are not cold, FORGET_EVERY is off"
  DROP=0
  FORGET_EVERY=0
fi
HAVE_FIO=0
if command -v fio >/dev/null; then HAVE_FIO=1; else say "fio not installed: skipping the fio workloads (apt-get install fio)"; fi

# ---------------------------------------------------------------- work dir, helpers, cleanup
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
BIN=$WORK/bin
RAW=$WORK/raw.tsv
mkdir -p "$BIN"
: >"$RAW"

SLICE_PID=""
SLICE_MNT=""
PT_PID=""
PT_MNT=""
NULL_PID=""
NULL_MNT=""
ETCD_PID=""
ETCD_MNT=""

is_mounted() { findmnt -rn --mountpoint "$1" >/dev/null 2>&1; }

# Waits up to $2 seconds for process $1 to exit.
wait_exit() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $SLICE_MNT ]] && is_mounted "$SLICE_MNT"; then
    say "cleanup: unmounting $SLICE_MNT"
    "$BIN/slice" umount --timeout 120 "$SLICE_MNT" >/dev/null 2>&1 || fusermount3 -u -z "$SLICE_MNT" 2>/dev/null || umount -l "$SLICE_MNT" 2>/dev/null || true
  fi
  if [[ -n $SLICE_PID ]] && kill -0 "$SLICE_PID" 2>/dev/null; then
    wait_exit "$SLICE_PID" 30 || { say "cleanup: killing Slice daemon $SLICE_PID"; kill "$SLICE_PID" 2>/dev/null || true; }
  fi
  if [[ -n $PT_MNT ]] && is_mounted "$PT_MNT"; then
    say "cleanup: unmounting $PT_MNT"
    fusermount3 -u "$PT_MNT" 2>/dev/null || fusermount3 -u -z "$PT_MNT" 2>/dev/null || umount -l "$PT_MNT" 2>/dev/null || true
  fi
  if [[ -n $PT_PID ]] && kill -0 "$PT_PID" 2>/dev/null; then
    wait_exit "$PT_PID" 30 || { say "cleanup: killing passthrough_ll $PT_PID"; kill "$PT_PID" 2>/dev/null || true; }
  fi
  if [[ -n $NULL_MNT ]] && is_mounted "$NULL_MNT"; then
    fusermount3 -u "$NULL_MNT" 2>/dev/null || fusermount3 -u -z "$NULL_MNT" 2>/dev/null || true
  fi
  if [[ -n $NULL_PID ]] && kill -0 "$NULL_PID" 2>/dev/null; then
    wait_exit "$NULL_PID" 30 || kill "$NULL_PID" 2>/dev/null || true
  fi
  if [[ -n $ETCD_MNT ]] && is_mounted "$ETCD_MNT"; then
    "$BIN/slice" umount --timeout 120 "$ETCD_MNT" >/dev/null 2>&1 || fusermount3 -u -z "$ETCD_MNT" 2>/dev/null || true
  fi
  if [[ -d $WORK/etcd ]]; then SLICE_ETCD_BASE=$ETCD_BASE bash "$REPO/scripts/etcd-cluster.sh" stop "$WORK/etcd" || true; fi
  if [[ $KEEP_WORK != 1 ]]; then
    rm -rf "$WORK/slice-data" "$WORK/slice-mnt" "$WORK/pt-src" "$WORK/pt-mnt" "$WORK/null-mnt" "$WORK/local" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an interrupted run.
for m in "$WORK/slice-mnt" "$WORK/pt-mnt" "$WORK/null-mnt" "$WORK/etcd-mnt"; do
  if is_mounted "$m"; then
    say "unmounting a leftover mount at $m"
    fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  fi
done

say "compiling fs_ops"
gcc -O2 -Wall -o "$BIN/fs_ops" "$REPO/Benchmarks/fs_ops.c"
FS_OPS=$BIN/fs_ops
if has_target passthrough_ll; then
  say "compiling passthrough_ll from $PT_SRC"
  # The example includes passthrough_helpers.h: copy the sources and headers, unpacking .gz.
  mkdir -p "$BIN/examples"
  for f in "$EXAMPLES"/*.c "$EXAMPLES"/*.h "$EXAMPLES"/*.c.gz "$EXAMPLES"/*.h.gz; do
    [[ -f $f ]] || continue
    case $f in
      *.gz) b=${f##*/}; gzip -dc "$f" >"$BIN/examples/${b%.gz}" ;;
      *) cp "$f" "$BIN/examples/" ;;
    esac
  done
  # shellcheck disable=SC2046
  gcc -O2 -Wall -o "$BIN/passthrough_ll" "$BIN/examples/passthrough_ll.c" $(pkg-config --cflags --libs fuse3)
fi
if has_target slice || has_target null; then
  # A copy, so that a rebuild during the run changes nothing; retried while the binary is
  # being replaced.
  for attempt in 1 2 3; do
    if cp "$SLICE_BIN" "$BIN/slice.tmp" && "$BIN/slice.tmp" --help >/dev/null 2>&1; then
      mv "$BIN/slice.tmp" "$BIN/slice"
      break
    fi
    ((attempt < 3)) || fail "$SLICE_BIN does not run"
    say "$SLICE_BIN does not run (being rebuilt?); retrying in 60 s"
    sleep 60
  done
  SLICE_SHA=$(sha256sum "$BIN/slice" | cut -c1-16)
  SLICE_MTIME=$(date -r "$SLICE_BIN" '+%Y-%m-%d %H:%M:%S')
fi

drop_caches() {
  sync
  if ((DROP)); then echo 3 >/proc/sys/vm/drop_caches; fi
}

# record ROUND TARGET WORKLOAD OPS_S MB_S NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

# op ROUND TARGET WORKLOAD fs_ops-args...: runs fs_ops, records ops/s and MB/s, or the error.
op() {
  local round=$1 target=$2 workload=$3 out line ops mb
  shift 3
  local forget=()
  ((FORGET_EVERY > 0)) && forget=(-F "$FORGET_EVERY")
  if out=$("$FS_OPS" "${forget[@]}" "$@" 2>"$WORK/fs_ops.err"); then
    line=$(grep '^RESULT ' <<<"$out" | tail -1)
    ops=$(sed -n 's/.* ops_s=\([^ ]*\).*/\1/p' <<<"$line")
    mb=$(sed -n 's/.* mb_s=\([^ ]*\).*/\1/p' <<<"$line")
    record "$round" "$target" "$workload" "$ops" "$mb" ""
    say "  $target $workload: $(sed 's/^RESULT //' <<<"$line")"
  else
    line=$(tail -1 "$WORK/fs_ops.err" | sed -e 's/^fs_ops: //' -e "s|$WORK/[^/ ]*/||g" | tr '\t|' '  ')
    record "$round" "$target" "$workload" "" "" "${line:-failed}"
    say "  $target $workload: FAILED: $line"
    return 1
  fi
}

# fio_job ROUND TARGET WORKLOAD RW FILE
fio_job() {
  local round=$1 target=$2 workload=$3 rw=$4 file=$5 json res
  json=$WORK/fio-$target-$rw.json
  if fio --name="$rw" --filename="$file" --rw="$rw" --bs=4k --size="${FIO_SIZE_MB}M" \
    --ioengine=psync --direct=0 --numjobs=1 --runtime="$FIO_SECONDS" --time_based \
    --fallocate=none --invalidate=1 --randrepeat=0 --norandommap \
    $([[ $rw == randwrite ]] && echo --end_fsync=1) \
    --output-format=json --output="$json" >/dev/null 2>"$WORK/fio.err"; then
    res=$(python3 - "$json" "$rw" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["read" if sys.argv[2] == "randread" else "write"]
print(f'{d["iops"]:.1f}\t{d["bw_bytes"] / 1e6:.2f}\t{j.get("error", 0)}')
PY
    )
    IFS=$'\t' read -r iops mbs ferr <<<"$res"
    if [[ $ferr != 0 ]]; then
      record "$round" "$target" "$workload" "" "" "fio error $ferr"
      say "  $target $workload: fio error $ferr"
    else
      record "$round" "$target" "$workload" "$iops" "$mbs" ""
      say "  $target $workload: $iops IOPS, $mbs MB/s"
    fi
  else
    local msg
    msg=$(grep -v '^$' "$WORK/fio.err" | tail -1 | tr '\t|' '  ')
    record "$round" "$target" "$workload" "" "" "fio failed: ${msg:-?}"
    say "  $target $workload: fio FAILED: $msg"
  fi
}

vmhwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true; }


# wait_mounted NAME MOUNTPOINT PID LOG: waits up to 10 s for a foreground FUSE daemon's mount.
wait_mounted() {
  local name=$1 mnt=$2 pid=$3 log=$4 i
  for ((i = 0; i < 100; i++)); do
    is_mounted "$mnt" && return 0
    kill -0 "$pid" 2>/dev/null || fail "$name exited: $(cat "$log")"
    sleep 0.1
  done
  fail "$name did not mount within 10 s"
}

# mount_target TARGET -> sets MNT (and SLICE_PID / PT_PID / NULL_PID)
mount_target() {
  local t=$1 attempt
  case $t in
    slice)
      rm -rf "$WORK/slice-data" "$WORK/slice-mnt"
      mkdir -p "$WORK/slice-mnt"
      SLICE_MNT=$WORK/slice-mnt
      local opts=()
      [[ -n $SLICE_OPTS ]] && opts=(-o "$SLICE_OPTS")
      for attempt in 1 2 3; do
        if "$BIN/slice" mount "$WORK/slice-data" "$SLICE_MNT" "${opts[@]}" 2>"$WORK/slice-mount.err"; then break; fi
        ((attempt < 3)) || fail "slice mount failed: $(cat "$WORK/slice-mount.err"); log: $WORK/slice-data/mount.log"
        say "slice mount failed ($(tr '\n' ' ' <"$WORK/slice-mount.err")); retrying in 60 s"
        sleep 60
      done
      SLICE_PID=$(pgrep -f -- "slice mount $WORK/slice-data $SLICE_MNT --ready-fd" | head -1 || true)
      [[ -n $SLICE_PID ]] || fail "mounted, but no Slice daemon process found"
      MNT=$SLICE_MNT
      say "slice mounted at $MNT (daemon pid $SLICE_PID${SLICE_OPTS:+, -o $SLICE_OPTS})"
      ;;
    passthrough_ll)
      rm -rf "$WORK/pt-src" "$WORK/pt-mnt"
      mkdir -p "$WORK/pt-src" "$WORK/pt-mnt"
      PT_MNT=$WORK/pt-mnt
      "$BIN/passthrough_ll" -f -o "source=$WORK/pt-src,timeout=1" "$PT_MNT" >"$WORK/passthrough_ll.log" 2>&1 &
      PT_PID=$!
      wait_mounted passthrough_ll "$PT_MNT" "$PT_PID" "$WORK/passthrough_ll.log"
      MNT=$PT_MNT
      say "passthrough_ll mounted at $MNT over $WORK/pt-src (pid $PT_PID, -o timeout=1)"
      ;;
    null)
      rm -rf "$WORK/null-mnt"
      mkdir -p "$WORK/null-mnt"
      NULL_MNT=$WORK/null-mnt
      "$BIN/slice" null-mount "$NULL_MNT" >"$WORK/null.log" 2>&1 &
      NULL_PID=$!
      wait_mounted "slice null-mount" "$NULL_MNT" "$NULL_PID" "$WORK/null.log"
      MNT=$NULL_MNT
      say "null mounted at $MNT (pid $NULL_PID, in memory)"
      ;;
    etcd)
      if [[ ! -d $WORK/etcd ]]; then
        SLICE_ETCD_BASE=$ETCD_BASE bash "$REPO/scripts/etcd-cluster.sh" start "$WORK/etcd" >&2 || fail "etcd cluster did not start"
      fi
      rm -rf "$WORK/etcd-mnt"
      mkdir -p "$WORK/etcd-mnt"
      ETCD_MNT=$WORK/etcd-mnt
      local url="etcd://127.0.0.1:$((ETCD_BASE + 1)),127.0.0.1:$((ETCD_BASE + 2)),127.0.0.1:$((ETCD_BASE + 3))/bench$RANDOM$RANDOM"
      "$BIN/slice" mount "$url" "$ETCD_MNT" 2>"$WORK/etcd-mount.err" || fail "slice mount $url failed: $(cat "$WORK/etcd-mount.err")"
      ETCD_PID=$(pgrep -f -- "slice mount $url $ETCD_MNT --ready-fd" | head -1 || true)
      [[ -n $ETCD_PID ]] || fail "mounted, but no Slice daemon process found"
      MNT=$ETCD_MNT
      say "etcd tree $url mounted at $MNT (daemon pid $ETCD_PID)"
      ;;
    local)
      rm -rf "$WORK/local"
      mkdir -p "$WORK/local"
      MNT=$WORK/local
      say "local: $MNT ($(findmnt -no FSTYPE -T "$MNT"))"
      ;;
  esac
}

# unmount_target ROUND TARGET: records the daemon's peak RSS, unmounts, waits for it to exit.
unmount_target() {
  local round=$1 t=$2 hwm
  case $t in
    slice)
      hwm=$(vmhwm_mib "$SLICE_PID")
      record "$round" "$t" rss "$hwm" "" ""
      say "  slice daemon VmHWM: $hwm MiB; unmounting"
      "$BIN/slice" umount --timeout 600 "$SLICE_MNT" || say "warning: slice umount failed"
      wait_exit "$SLICE_PID" 120 || { say "warning: Slice daemon still running; killing it"; kill "$SLICE_PID" || true; }
      SLICE_PID=""
      ;;
    passthrough_ll)
      hwm=$(vmhwm_mib "$PT_PID")
      record "$round" "$t" rss "$hwm" "" ""
      say "  passthrough_ll VmHWM: $hwm MiB; unmounting"
      fusermount3 -u "$PT_MNT" || say "warning: fusermount3 -u failed"
      wait_exit "$PT_PID" 60 || { say "warning: passthrough_ll still running; killing it"; kill "$PT_PID" || true; }
      wait "$PT_PID" 2>/dev/null || true
      PT_PID=""
      ;;
    null)
      hwm=$(vmhwm_mib "$NULL_PID")
      record "$round" "$t" rss "$hwm" "" ""
      fusermount3 -u "$NULL_MNT" || say "warning: fusermount3 -u failed"
      wait_exit "$NULL_PID" 60 || { say "warning: slice null-mount still running; killing it"; kill "$NULL_PID" || true; }
      wait "$NULL_PID" 2>/dev/null || true
      NULL_PID=""
      ;;
    etcd)
      hwm=$(vmhwm_mib "$ETCD_PID")
      record "$round" "$t" rss "$hwm" "" ""
      say "  etcd-backed daemon VmHWM: $hwm MiB; cluster databases: $(du -sh "$WORK/etcd" | cut -f1); unmounting"
      "$BIN/slice" umount --timeout 600 "$ETCD_MNT" || say "warning: slice umount failed"
      wait_exit "$ETCD_PID" 120 || { say "warning: Slice daemon still running; killing it"; kill "$ETCD_PID" || true; }
      ETCD_PID=""
      ;;
    local) record "$round" "$t" rss "" "" "n/a" ;;
  esac
}

# Waits until SETTLE_SECONDS have passed since the last target that deleted many files from the
# disk's filesystem (see SETTLE_SECONDS above).
settle() {
  sync
  ((LAST_DELETE > 0 && SETTLE_SECONDS > 0)) || return 0
  local left=$((LAST_DELETE + SETTLE_SECONDS - $(date +%s)))
  if ((left > 0)); then
    say "settling ${left} s (ext4 skips inodes deleted in the last 60 s when allocating)"
    sleep "$left"
  fi
}
LAST_DELETE=0

# Small files: every create comes before any delete, so no create phase runs right after mass
# deletes (see SETTLE_SECONDS). Big files come last: in Slice a file is one value, stored
# inline in a table block, and a lookup that lands in such a block reads the whole block.
run_target() {
  local r=$1 t=$2
  say "round $r/$ROUNDS: $t"
  settle
  drop_caches
  mount_target "$t"
  local one=$MNT/one spread=$MNT/spread big=$MNT/big
  op "$r" "$t" create1 create "$one" "$N" "$FILE_SIZE" || true
  op "$r" "$t" stat stat "$one" "$N" || true
  op "$r" "$t" create100 create "$spread" "$N" "$FILE_SIZE" "$SUBDIRS" || true
  op "$r" "$t" mkempty create "$big" "$DIR_ENTRIES" 0 || true
  drop_caches
  op "$r" "$t" read read "$one" "$N" "$FILE_SIZE" || true
  op "$r" "$t" rename -t r rename "$one" "$N" || true
  drop_caches
  op "$r" "$t" readdir_cold readdir "$big" || true
  op "$r" "$t" readdir_warm readdir "$big" || true
  op "$r" "$t" unlink -p r unlink "$one" "$N" || true
  op "$r" "$t" unlink100 unlink "$spread" "$N" "$SUBDIRS" || true
  op "$r" "$t" unlinkempty unlink "$big" "$DIR_ENTRIES" || true
  rm -rf "$one" "$spread" "$big"

  if ((BIG_MB > 0)); then
    if op "$r" "$t" seqwrite seqwrite "$MNT/big.dat" "$BIG_MB"; then
      drop_caches
      op "$r" "$t" seqread seqread "$MNT/big.dat" || true
    else
      record "$r" "$t" seqread "" "" "skipped (the write failed)"
    fi
    rm -f "$MNT/big.dat"
  fi

  if ((HAVE_FIO && FIO_SECONDS > 0)); then
    if "$FS_OPS" seqwrite "$MNT/fio.dat" "$FIO_SIZE_MB" >/dev/null 2>"$WORK/fs_ops.err"; then
      drop_caches
      fio_job "$r" "$t" randread randread "$MNT/fio.dat"
      fio_job "$r" "$t" randwrite randwrite "$MNT/fio.dat"
    else
      local msg
      msg=$(tail -1 "$WORK/fs_ops.err" | sed -e 's/^fs_ops: //' -e "s|$WORK/[^/ ]*/||g" | tr '\t|' '  ')
      record "$r" "$t" randread "" "" "fio file: $msg"
      record "$r" "$t" randwrite "" "" "fio file: $msg"
    fi
    rm -f "$MNT/fio.dat"
  fi
  unmount_target "$r" "$t"
  [[ $t == slice || $t == null || $t == etcd ]] || LAST_DELETE=$(date +%s)
}

START=$(date '+%Y-%m-%d %H:%M:%S %Z')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
read -r -a target_list <<<"$TARGETS"
for ((r = 1; r <= ROUNDS; r++)); do
  # Rotate the order each round so no target always runs first (or right after another).
  k=$(((r - 1) % ${#target_list[@]}))
  for t in "${target_list[@]:k}" "${target_list[@]:0:k}"; do
    run_target "$r" "$t"
  done
done
END=$(date '+%Y-%m-%d %H:%M:%S %Z')

# ---------------------------------------------------------------- report
mkdir -p "$REPO/Benchmarks/results"
OUT=$REPO/Benchmarks/results/fs-$(date +%Y-%m-%d-%H%M%S).md
knobs="N=$N DIR_ENTRIES=$DIR_ENTRIES BIG_MB=$BIG_MB FIO_SECONDS=$FIO_SECONDS FIO_SIZE_MB=$FIO_SIZE_MB ROUNDS=$ROUNDS TARGETS=\"$TARGETS\" FORGET_EVERY=$FORGET_EVERY SETTLE_SECONDS=$SETTLE_SECONDS"
[[ -n $SLICE_OPTS ]] && knobs+=" SLICE_OPTS=\"$SLICE_OPTS\""
table=$(N=$N DIR_ENTRIES=$DIR_ENTRIES BIG_MB=$BIG_MB FIO_SIZE_MB=$FIO_SIZE_MB FIO_SECONDS=$FIO_SECONDS \
  SUBDIRS=$SUBDIRS ROUNDS=$ROUNDS HAVE_FIO=$HAVE_FIO python3 - "$RAW" "$TARGETS" <<'PY'
import os, statistics, sys
raw, targets = sys.argv[1], sys.argv[2].split()
E = os.environ
n, entries, big, fsize, fsec, subdirs, rounds = (E["N"], E["DIR_ENTRIES"], E["BIG_MB"], E["FIO_SIZE_MB"],
    E["FIO_SECONDS"], E["SUBDIRS"], int(E["ROUNDS"]))
def num(s): return f"{int(s):,}"
# key, label, how a cell reads: ops (ops/s), opsmb (ops/s + MB/s), mb (MB/s), iops, rss (MiB)
rows = [
    ("create1", f"create+write+close {num(n)} × 4 KiB, 1 dir", "opsmb"),
    ("create100", f"create+write+close {num(n)} × 4 KiB, {subdirs} dirs", "opsmb"),
    ("stat", f"stat {num(n)} files, 1 dir (warm)", "ops"),
    ("read", f"open+read+close {num(n)} × 4 KiB, 1 dir (cold)", "opsmb"),
    ("rename", f"rename {num(n)} files, 1 dir", "ops"),
    ("unlink", f"unlink {num(n)} files, 1 dir", "ops"),
    ("unlink100", f"unlink {num(n)} files, {subdirs} dirs", "ops"),
    ("mkempty", f"create {num(entries)} empty files, 1 dir", "ops"),
    ("readdir_cold", f"readdir {num(entries)} entries (cold), entries/s", "ops"),
    ("readdir_warm", f"readdir {num(entries)} entries (again), entries/s", "ops"),
    ("unlinkempty", f"unlink {num(entries)} empty files", "ops"),
]
if int(big) > 0:
    rows += [("seqwrite", f"sequential write {num(big)} MiB, 1 MiB blocks + fsync", "mb"),
             ("seqread", f"sequential read {num(big)} MiB, 1 MiB blocks (cold)", "mb")]
if E["HAVE_FIO"] == "1" and int(fsec) > 0:
    rows += [("randread", f"fio 4 KiB randread, {fsize} MiB file, {fsec} s (cold start)", "iops"),
             ("randwrite", f"fio 4 KiB randwrite, {fsize} MiB file, {fsec} s", "iops")]
rows.append(("rss", "daemon peak RSS (VmHWM), MiB", "rss"))

vals, notes = {}, {}
for line in open(raw):
    parts = line.rstrip("\n").split("\t")
    if len(parts) < 6: continue
    _, t, w, ops, mb, note = parts[:6]
    if ops:
        vals.setdefault((t, w), []).append((float(ops), float(mb) if mb else 0.0))
    elif note:
        notes.setdefault((t, w), []).append(note)

def med(t, w):
    v = vals.get((t, w))
    if not v: return None
    return statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), len(v)

def fmt(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"

def cell(t, w, kind):
    m = med(t, w)
    if m is None:
        ns = notes.get((t, w))
        if not ns: return "–"
        return ns[0] if ns[0] == "n/a" or ns[0].startswith("skipped") else "**error**: " + ns[0]
    ops, mb, k = m
    s = {"ops": f"{fmt(ops)}/s", "opsmb": f"{fmt(ops)}/s · {fmt(mb)} MB/s", "mb": f"{fmt(mb)} MB/s",
         "iops": f"{fmt(ops)} IOPS · {fmt(mb)} MB/s", "rss": f"{fmt(ops)} MiB"}[kind]
    if k < rounds: s += f" ({k}/{rounds} ok)"
    return s

def primary(t, w, kind):
    m = med(t, w)
    if m is None: return None
    return m[1] if kind == "mb" else m[0]

ratio = "slice" in targets and "passthrough_ll" in targets
ceiling = "slice" in targets and "null" in targets
head = "| workload | " + " | ".join(targets) + (" | slice ÷ passthrough_ll" if ratio else "") + (" | slice ÷ null" if ceiling else "") + " |"
print(head)
print("|---" * (1 + len(targets) + ratio + ceiling) + "|")
for key, label, kind in rows:
    cells = [cell(t, key, kind) for t in targets]
    line = f"| {label} | " + " | ".join(cells)
    if ratio:
        a, b = primary("slice", key, kind), primary("passthrough_ll", key, kind)
        line += " | " + (f"{a / b:.2f}×" if a is not None and b else "–")
    if ceiling:
        a, b = primary("slice", key, kind), primary("null", key, kind)
        line += " | " + (f"{a / b:.2f}" if a is not None and b else "–")
    print(line + " |")
PY
)

{
  echo "# Filesystem benchmark: ${TARGETS// / vs }"
  echo
  echo "$table"
  echo
  echo "Medians over $ROUNDS round(s); targets alternate within each round. Ratio column: Slice's"
  echo "throughput divided by passthrough_ll's (ops/s, MB/s for the sequential rows, IOPS for fio):"
  echo "above 1 Slice is faster. For the RSS row it is the memory ratio (above 1 Slice uses more)."
  if has_target null; then
    echo "slice ÷ null: Slice's throughput as a fraction of the FUSE request ceiling (\`slice null-mount\`, the"
    echo "same bridge answering from memory with no store; its RSS holds every file's bytes)."
  fi
  echo "MB = 10^6 bytes. \"cold\": after \`sync; echo 3 > /proc/sys/vm/drop_caches\` (kernel caches only;"
  echo "Slice's own memtables and block cache stay warm). \"warm\" stat: right after creating the files"
  echo "(FUSE attribute/entry timeouts are 1 s for both FUSE targets, so most are revalidated)."
  if ((FORGET_EVERY > 0)); then
    echo "Every $FORGET_EVERY items of a per-file loop the kernel's dentry/inode caches were dropped (outside"
    echo "the measured time) so passthrough_ll stays under the 20,000-descriptor limit; same for all targets."
  fi
  echo "Order per target: create 1 dir, stat, create $SUBDIRS dirs, create empties, read, rename, readdir, the"
  echo "unlinks, then sequential and fio. Creates never follow mass deletes (ext4 without a journal, as here,"
  echo "skips inodes deleted in the last 60 s); a target starts ${SETTLE_SECONDS} s after the last ext4-backed one."
  echo "Slice mounted with default options${SLICE_OPTS:+ plus \`-o $SLICE_OPTS\`}."
  echo "passthrough_ll: \`-f -o source=DIR,timeout=1\` (default cache=auto, multithreaded)."
  echo "Per-file loops: one process (Benchmarks/fs_ops.c), CLOCK_MONOTONIC; 4 KiB pseudo-random content."
  if ((HAVE_FIO && FIO_SECONDS == 0)); then
    echo "fio: skipped (FIO_SECONDS=0)."
  elif ((HAVE_FIO)); then
    echo "fio: psync, buffered, 1 job, \`--invalidate=1\` after a cache drop; randwrite with \`--end_fsync=1\` (IOPS as fio reports them)."
    echo "Buffered I/O: once the ${FIO_SIZE_MB} MiB are in the page cache, randread measures the kernel's cache (for the"
    echo "FUSE targets too: cached pages are served without the daemon)."
  else
    echo "fio: not installed, fio workloads skipped (\`apt-get install fio\`)."
  fi
  echo
  echo "## Machine"
  echo
  echo '```'
  echo "command:  $knobs bash $COMMAND_LINE"
  echo "started:  $START   finished: $END   load average at start: $LOAD_START"
  echo "host:     $(uname -n), kernel $(uname -r), $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1))"
  echo "memory:   $(free -h | awk '/^Mem:/ { print $2 " total, " $7 " available" }')"
  echo "work dir: $WORK on $(findmnt -no SOURCE,FSTYPE,OPTIONS -T "$WORK" | head -1)"
  df -h "$WORK" | sed 's/^/          /'
  lsblk -d -o NAME,SIZE,ROTA,TYPE,MODEL 2>/dev/null | sed 's/^/          /'
  if has_target slice; then
    echo "slice:    $SLICE_BIN (modified $SLICE_MTIME, sha256 $SLICE_SHA…), git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$REPO" diff --quiet HEAD -- Sources 2>/dev/null || echo ' + uncommitted changes in Sources/')"
  fi
  echo "libfuse:  $(pkg-config --modversion fuse3 2>/dev/null || echo ?), fusermount3 $(fusermount3 -V 2>/dev/null | awk '{ print $NF }')"
  echo "fio:      $( ((HAVE_FIO)) && fio --version || echo 'not installed')"
  echo "gcc:      $(gcc -dumpfullversion)"
  echo '```'
  echo
  echo "Raw per-round numbers (round, target, workload, ops/s, MB/s, note):"
  echo
  echo '```'
  cat "$RAW"
  echo '```'
} >"$OUT"

echo "$table"
echo
say "results written to ${OUT#"$REPO"/}"
# A chart of the table next to it (SVG, and PNG when rsvg-convert is installed).
if python3 "$REPO/Benchmarks/chart.py" --fs "$OUT" -o "${OUT%.md}.svg" --png >/dev/null 2>&1; then
  say "chart written to ${OUT%.md}.svg"
fi
