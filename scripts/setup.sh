#!/usr/bin/env bash
# Installs what Slice needs on a fresh Debian machine (run as root): the FUSE library and
# tools, LZ4 and zstd, pkg-config, rsync and attr (used by the tests), etcd (the shared-mount tests), and with SLICE_BENCH_PEERS=1 the
# engines the benchmarks compare against. Safe to run again.
set -euo pipefail

need=()
dpkg -s libfuse3-dev >/dev/null 2>&1 || need+=(libfuse3-dev)
dpkg -s fuse3 >/dev/null 2>&1 || need+=(fuse3)
# Block compression (LZ4 for upper levels, zstd for the bottom one).
dpkg -s liblz4-dev >/dev/null 2>&1 || need+=(liblz4-dev)
dpkg -s libzstd-dev >/dev/null 2>&1 || need+=(libzstd-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# The filesystem tests drive real tools through the mount.
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v setfattr >/dev/null 2>&1 || need+=(attr)
command -v python3 >/dev/null 2>&1 || need+=(python3)  # the filesystem tests drive sockets and mmap from Python
command -v git >/dev/null 2>&1 || need+=(git)  # NodeKindTests clone a repository into a mount
# Shared mounts: EtcdMountTests run a 3-member cluster on loopback (scripts/etcd-cluster.sh).
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
if [ "${SLICE_BENCH_PEERS:-0}" = 1 ]; then
  for p in libleveldb-dev librocksdb-dev liblmdb-dev; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq </dev/null
  apt-get install -y -qq "${need[@]}" </dev/null >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then export PATH="/opt/swift/usr/bin:$PATH"; else
    echo "setup: Swift 6.1 or later is required (swift not found)" >&2; exit 1
  fi
fi
[ -e /dev/fuse ] || echo "setup: warning: /dev/fuse is missing; mounting will not work" >&2
