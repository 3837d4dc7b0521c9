#!/usr/bin/env bash
# etcd requests per filesystem operation on a shared mount, and their latency: mounts a fresh
# tree of a 3-member loopback cluster (scripts/etcd-cluster.sh) with the release binary, runs
# N of each operation in one process (Benchmarks/fs_ops.c), and prints, per operation, the
# etcd range and txn requests it cost and their mean latency (from the mount's .stats).
# Then the cost of one gateway request by itself (keep-alive client, ranges and puts).
#
#   N=1000 bash Benchmarks/etcd_requests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
N=${N:-1000}
BASE=${ETCD_BASE:-26790}
WORK=${WORK:-$REPO/.bench-etcd}
BIN=${SLICE_BIN:-$REPO/.build/release/slice}
mkdir -p "$WORK"
gcc -O2 -Wall -o "$WORK/fs_ops" Benchmarks/fs_ops.c
export SLICE_ETCD_BASE=$BASE
bash scripts/etcd-cluster.sh start "$WORK/etcd" >&2
MNT=$WORK/mnt
mkdir -p "$MNT"
URL="etcd://127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))/req$RANDOM"
cleanup() {
  "$BIN" umount "$MNT" >/dev/null 2>&1 || fusermount3 -u -z "$MNT" 2>/dev/null || true
  bash scripts/etcd-cluster.sh stop "$WORK/etcd" || true
}
trap cleanup EXIT
"$BIN" mount "$URL" "$MNT"

counters() { # prints: ranges txns range_seconds txn_seconds
  awk '/^slice_etcd_requests_total\{op="range"\}/ {r=$2} /^slice_etcd_requests_total\{op="txn"\}/ {t=$2}
       /^slice_etcd_request_seconds_total\{op="range"\}/ {rs=$2} /^slice_etcd_request_seconds_total\{op="txn"\}/ {ts=$2}
       END {print r, t, rs, ts}' "$MNT/.stats"
}

printf '| operation (N=%d) | ops/s | etcd ranges/op | txns/op | mean range ms | mean txn ms |\n|---|---|---|---|---|---|\n' "$N"
measure() {
  local name=$1
  shift
  read -r r0 t0 rs0 ts0 < <(counters)
  local out
  out=$("$WORK/fs_ops" "$@")
  read -r r1 t1 rs1 ts1 < <(counters)
  python3 - "$name" "$N" "$out" "$r0" "$t0" "$rs0" "$ts0" "$r1" "$t1" "$rs1" "$ts1" <<'PY'
import sys
name, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r0, t0, rs0, ts0, r1, t1, rs1, ts1 = map(float, sys.argv[4:])
ops = next((f.split("=")[1] for f in out.split() if f.startswith("ops_s=")), "?")
dr, dt = r1 - r0, t1 - t0
print(f"| {name} | {ops} | {dr / n:.1f} | {dt / n:.1f} | {1000 * (rs1 - rs0) / dr if dr else 0:.2f} | {1000 * (ts1 - ts0) / dt if dt else 0:.2f} |")
PY
}
measure "create 4 KiB" create "$MNT/d" "$N" 4096
measure "stat" stat "$MNT/d" "$N"
measure "read 4 KiB" read "$MNT/d" "$N" 4096
measure "rename" rename "$MNT/d" "$N"
measure "unlink" -p r unlink "$MNT/d" "$N"

# What one request costs by itself: a keep-alive client against one member's JSON gateway
# (300 linearizable ranges, 300 serializable ranges, 100 puts of a small key).
python3 - "$((BASE + 1))" <<'PY'
import base64, http.client, json, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
def call(path, body):
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return c.getresponse().read()
k = base64.b64encode(b"etcd_requests-probe").decode()
call("/v3/kv/put", {"key": k, "value": k})
for label, path, body, n in (("range, linearizable", "/v3/kv/range", {"key": k}, 300),
                             ("range, serializable", "/v3/kv/range", {"key": k, "serializable": True}, 300),
                             ("put", "/v3/kv/put", {"key": k, "value": k}, 100)):
    t = time.time()
    for _ in range(n): call(path, body)
    print(f"gateway {label}: {(time.time() - t) / n * 1000:.2f} ms per request")
PY
