#!/usr/bin/env bash
# Runs `slice bench` and the peers (LevelDB, and RocksDB/LMDB when asked) alternately on the
# same disk, ROUNDS times, with the same workloads and settings, and prints a Markdown table of
# medians (micros/op) with Slice/peer ratios (> 1 means Slice is slower).
#
#   bash Benchmarks/compare.sh                       # 1M entries, 3 rounds, LevelDB
#   NUM=200000 ROUNDS=5 PEERS="leveldb rocksdb lmdb" bash Benchmarks/compare.sh
#
# Settings for all engines: 16-byte keys, 100-byte values, WAL on without fsync, no
# compression, 8 MiB block cache, 10 bloom bits per key (LMDB: no cache or bloom settings).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE_BENCH_PEERS=1 source scripts/setup.sh
NUM=${NUM:-1000000}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-leveldb}
BENCHMARKS=${BENCHMARKS:-fillseq,fillrandom,overwrite,readrandom,readmissing,readhot,readseq,seekrandom,deleterandom}
DIR=${DIR:-/tmp/slice-compare}
mkdir -p "$DIR"
swift build -c release --product slice >&2
flags=()
for p in $PEERS; do
  case $p in
    leveldb) flags+=(-DHAVE_LEVELDB -lleveldb) ;;
    rocksdb) flags+=(-DHAVE_ROCKSDB -lrocksdb) ;;
    lmdb) flags+=(-DHAVE_LMDB -llmdb) ;;
  esac
done
gcc -O2 -o "$DIR/peer_bench" Benchmarks/peers/peer_bench.c "${flags[@]}"
common="--num=$NUM --benchmarks=$BENCHMARKS --bloom_bits=10 --cache_size=$((8 << 20))"
for r in $(seq 1 "$ROUNDS"); do
  .build/release/slice bench $(echo "$common" | sed 's/=/ /g') --db "$DIR/slice" 2>/dev/null | sed "s/^/slice $r /" >> "$DIR/results.txt"
  for p in $PEERS; do
    "$DIR/peer_bench" --engine="$p" $common --db="$DIR/$p" | sed "s/^/$p $r /" >> "$DIR/results.txt"
  done
done
python3 - "$DIR/results.txt" "$PEERS" "$BENCHMARKS" <<'PY'
import sys, statistics, collections
path, peers, benches = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(",")
vals = collections.defaultdict(list)
for line in open(path):
    parts = line.split()
    if len(parts) > 4 and parts[3] == ":" and parts[5].startswith("micros/op"):
        vals[(parts[0], parts[2])].append(float(parts[4]))
engines = ["slice"] + peers
print("| benchmark | " + " | ".join(f"{e} µs/op" for e in engines) + " | " + " | ".join(f"slice/{p}" for p in peers) + " |")
print("|---" * (1 + len(engines) + len(peers)) + "|")
for b in benches:
    med = {e: statistics.median(vals[(e, b)]) if vals[(e, b)] else None for e in engines}
    cells = [f"{med[e]:.3f}" if med[e] is not None else "–" for e in engines]
    ratios = [f"{med['slice'] / med[p]:.2f}" if med[p] and med['slice'] else "–" for p in peers]
    print(f"| {b} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
PY
rm -f "$DIR/results.txt"
