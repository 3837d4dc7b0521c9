#!/usr/bin/env bash
# A 3-member etcd cluster on loopback, for shared Slice mounts (`slice mount etcd://...`) and
# their tests. Members listen on 127.0.0.1 only.
#
#   bash scripts/etcd-cluster.sh start [DIR]   # members 1-3: clients on 127.0.0.1:23791-23793
#   bash scripts/etcd-cluster.sh stop [DIR]
#   bash scripts/etcd-cluster.sh kill N [DIR]  # SIGKILL member N (1-3)
#   bash scripts/etcd-cluster.sh revive N [DIR]
#   bash scripts/etcd-cluster.sh endpoints     # prints the mount URL's host list
#
# DIR (default: $SLICE_ETCD_DIR or /tmp/slice-etcd) holds each member's data and log. Ports
# come from SLICE_ETCD_BASE (default 23790: clients BASE+1..3, peers BASE+11..13);
# SLICE_ETCD_QUOTA sets the database quota in bytes (default 8 GiB).
#
# Limits given to the members (etcd's defaults are 1.5 MiB per request and 128 operations per
# transaction): a Slice commit of a file writes up to 64 chunks of 64 KiB in one transaction,
# so requests up to 8 MiB and 1,024 operations are allowed; the database quota is 8 GiB
# (etcd's recommended maximum). A cluster with smaller limits still works: commits are cut to
# fit, and a change that cannot be cut answers EFBIG or EXDEV through the mount (README,
# "Shared mounts on etcd"). History is compacted every minute (etcd keeps every revision of
# every key until then), and heartbeats and elections are fast, as on loopback they can be.
set -euo pipefail

cmd=${1:-start}
case "$cmd" in kill | revive) member=${2:?member number}; dir=${3:-${SLICE_ETCD_DIR:-/tmp/slice-etcd}} ;;
*) dir=${2:-${SLICE_ETCD_DIR:-/tmp/slice-etcd}} ;; esac
base=${SLICE_ETCD_BASE:-23790}
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 + i))"; done

need_etcd() {
  if ! command -v etcd >/dev/null 2>&1; then
    echo "etcd-cluster: installing etcd-server and etcd-client" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client </dev/null >/dev/null
  fi
}

# Descriptors above 2 that this script inherited (a test harness's pipes) are closed, so the
# members do not keep them open and the caller sees end-of-file when this script exits.
close_inherited() {
  local fd
  for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
  return 0
}

start_member() {
  local i=$1 state=$2
  mkdir -p "$dir/m$i"
  # setsid: the member outlives the shell that started it, and a test's SIGINT does not reach it.
  setsid etcd --name "m$i" --data-dir "$dir/m$i/data" \
    --listen-client-urls "http://127.0.0.1:$((base + i))" --advertise-client-urls "http://127.0.0.1:$((base + i))" \
    --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
    --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token slice-test \
    --max-request-bytes 8388608 --max-txn-ops 1024 --quota-backend-bytes "${SLICE_ETCD_QUOTA:-8589934592}" \
    --heartbeat-interval 50 --election-timeout 500 \
    --auto-compaction-mode periodic --auto-compaction-retention 1m \
    >"$dir/m$i/log" 2>&1 </dev/null &
  echo $! >"$dir/m$i/pid"
}

healthy() { ETCDCTL_API=3 etcdctl --endpoints "$(endpoints)" --command-timeout=2s endpoint health >/dev/null 2>&1; }
endpoints() { local e=""; for i in 1 2 3; do e+="${e:+,}127.0.0.1:$((base + i))"; done; echo "$e"; }

stop_member() {
  local i=$1 sig=${2:-TERM}
  [ -f "$dir/m$i/pid" ] || return 0
  kill -"$sig" "$(cat "$dir/m$i/pid")" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$(cat "$dir/m$i/pid")" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/m$i/pid"
}

case "$cmd" in start | revive) close_inherited ;; esac

case "$cmd" in
start)
  need_etcd
  if healthy; then echo "etcd-cluster: already running at $(endpoints)"; exit 0; fi
  for i in 1 2 3; do stop_member "$i"; done
  rm -rf "$dir"
  for i in 1 2 3; do start_member "$i" new; done
  for _ in $(seq 100); do healthy && break; sleep 0.2; done
  healthy || { echo "etcd-cluster: members did not become healthy; logs in $dir/m*/log" >&2; tail -5 "$dir"/m*/log >&2; exit 1; }
  echo "etcd-cluster: running at $(endpoints) (data in $dir)"
  ;;
stop) for i in 1 2 3; do stop_member "$i"; done; rm -rf "$dir" ;;
kill) stop_member "$member" KILL ;;
revive) start_member "$member" existing ;;
endpoints) endpoints ;;
*) echo "usage: $0 start|stop|kill N|revive N|endpoints [DIR]" >&2; exit 2 ;;
esac
