#!/usr/bin/env bash
# Runs `slice bench` and the peers (LevelDB, and RocksDB/LMDB when asked) on the same disk with
# the same operation sequences (Sources/slice/BenchWorkload.swift and
# Benchmarks/peers/peer_bench.c implement one definition), one process per engine and run,
# engines alternating, ROUNDS times, and prints a Markdown table of medians with
# Slice ÷ peer throughput ratios (above 1: Slice is faster) and each process's peak RSS.
#
#   bash Benchmarks/compare.sh                           # 1M keys, 3 rounds, LevelDB
#   NUM=200000 ROUNDS=1 RUNS="main threads" bash Benchmarks/compare.sh
#   PEERS="leveldb rocksdb" ROCKSDB_DIR=/opt/rocksdb bash Benchmarks/compare.sh   # RocksDB built from source
#   OUT=/tmp/run1 BUILD=0 bash Benchmarks/compare.sh     # results elsewhere; no `swift build`
#
# Runs (RUNS picks some; each is one process per engine and round):
#   main       8 MiB cache, no bloom filter (LevelDB's defaults): fillseq, fillrandom, overwrite,
#              readrandom, readmissing, readseq, seekrandom, YCSB A/B/C, deleterandom
#   threads    fillrandom with 2 threads into a fresh store, then readrandom with 1, 2, 4 threads
#   batch      fillseq and fillrandom, 100 puts per write batch
#   sync       fillseq and fillrandom with an fsync per write (NUM_SYNC keys)
#   syncbatch  the same with batches of 100 (NUM_SYNC_BATCH keys)
#   syncthreads fillrandom with an fsync per write from 1 and from 8 threads (group commit)
#   cache      256 MiB cache, no bloom: readmissing and seekrandom (after a fillrandom)
#   bloom      256 MiB cache, 10 bloom bits per key: the same
# Keys are 16 digits, values 100 bytes, WAL on; every engine keeps its default write buffer.
# Writes to $OUT: compare.md (the table), compare-rounds.tsv (every round's line).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE_BENCH_PEERS=1 source scripts/setup.sh
NUM=${NUM:-1000000}
NUM_SYNC=${NUM_SYNC:-20000}
NUM_SYNC_BATCH=${NUM_SYNC_BATCH:-200000}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-leveldb}
RUNS=${RUNS:-main threads batch sync syncbatch syncthreads cache bloom}
DIR=${DIR:-/tmp/slice-compare}
OUT=${OUT:-$DIR}
BUILD=${BUILD:-1}
mkdir -p "$DIR" "$OUT"
: > "$DIR/results.txt"
[ "$BUILD" = 0 ] || swift build -c release --product slice >&2
flags=()
for p in $PEERS; do
  case $p in
    leveldb) flags+=(-DHAVE_LEVELDB -lleveldb) ;;
    rocksdb)
      if [ -n "${ROCKSDB_DIR:-}" ]; then
        flags+=(-DHAVE_ROCKSDB -I"$ROCKSDB_DIR/include" "$ROCKSDB_DIR/librocksdb.a" -lstdc++ -ldl -lz -lbz2 -llz4 -lzstd -lsnappy)
      else
        flags+=(-DHAVE_ROCKSDB -lrocksdb)
      fi ;;
    lmdb) flags+=(-DHAVE_LMDB -llmdb) ;;
  esac
done
gcc -O2 -o "$DIR/peer_bench" Benchmarks/peers/peer_bench.c "${flags[@]}" -lm -lpthread
MiB=$((1 << 20))
run_spec() {
  case $1 in
    main) echo "--num=$NUM --cache_size=$((8 * MiB)) --bloom_bits=0|fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,seekrandom,ycsb_a,ycsb_b,ycsb_c,deleterandom" ;;
    threads) echo "--num=$NUM --cache_size=$((8 * MiB)) --bloom_bits=0|fillrandom@2,readrandom@1,readrandom@2,readrandom@4" ;;
    batch) echo "--num=$NUM --cache_size=$((8 * MiB)) --bloom_bits=0 --batch_size=100|fillseq,fillrandom" ;;
    sync) echo "--num=$NUM_SYNC --cache_size=$((8 * MiB)) --bloom_bits=0 --sync=1|fillseq,fillrandom" ;;
    syncbatch) echo "--num=$NUM_SYNC_BATCH --cache_size=$((8 * MiB)) --bloom_bits=0 --sync=1 --batch_size=100|fillseq,fillrandom" ;;
    syncthreads) echo "--num=$NUM_SYNC --cache_size=$((8 * MiB)) --bloom_bits=0 --sync=1|fillrandom@1,fillrandom@8" ;;
    cache) echo "--num=$NUM --cache_size=$((256 * MiB)) --bloom_bits=0|fillrandom,readmissing,seekrandom" ;;
    bloom) echo "--num=$NUM --cache_size=$((256 * MiB)) --bloom_bits=10|fillrandom,readmissing,seekrandom" ;;
    *) echo "compare: unknown run $1" >&2; exit 2 ;;
  esac
}
for r in $(seq 1 "$ROUNDS"); do
  for run in $RUNS; do
    spec=$(run_spec "$run")
    common=${spec%%|*}
    benches=${spec#*|}
    # Slice's flags are --name value; its --sync is a flag.
    sflags=$(echo "$common" | sed -e 's/--sync=1/--sync/' -e 's/=/ /g')
    # shellcheck disable=SC2086
    ${SLICE:-.build/release/slice} bench $sflags --benchmarks "$benches" --db "$DIR/slice" 2>/dev/null |
      sed "s/^/slice $r $run /" >> "$DIR/results.txt"
    for p in $PEERS; do
      # shellcheck disable=SC2086
      "$DIR/peer_bench" --engine="$p" $common --benchmarks="$benches" --db="$DIR/$p" | sed "s/^/$p $r $run /" >> "$DIR/results.txt"
    done
    echo "compare: round $r, $run done" >&2
  done
done
python3 - "$DIR/results.txt" "$PEERS" "$RUNS" "$OUT" "$NUM" "$ROUNDS" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(git rev-parse --short HEAD)" <<'PY'
import sys, statistics, collections, os
path, peers, runs = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
out, num, rounds, date, commit = sys.argv[4:9]
vals = collections.defaultdict(list)
rss = collections.defaultdict(list)
order = []
raw = []
for line in open(path):
    p = line.split()
    if len(p) > 6 and p[4] == ":" and p[6].startswith("micros/op"):
        key = (p[2], p[3])
        if key not in order: order.append(key)
        vals[(p[0],) + key].append(float(p[5]))
        raw.append([p[0], p[1], p[2], p[3], p[5]])
    elif len(p) >= 6 and p[3] == "peak" and p[4] == "RSS:":
        rss[(p[0], p[2])].append(int(p[5]))
engines = ["slice"] + peers
head = "| run | benchmark | " + " | ".join(f"{e} µs/op" for e in engines) + " | " + " | ".join(f"slice ÷ {p}" for p in peers) + " |"
table = [head, "|---" * (2 + len(engines) + len(peers)) + "|"]
for run, b in order:
    med = {e: statistics.median(vals[(e, run, b)]) if vals[(e, run, b)] else None for e in engines}
    cells = [f"{med[e]:.3f}" if med[e] is not None else "–" for e in engines]
    ratios = [f"{med[p] / med['slice']:.2f}" if med[p] and med['slice'] else "–" for p in peers]
    table.append(f"| {run} | {b} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
for run in runs:
    cells = [f"{statistics.median(rss[(e, run)]) / 1024:.0f} MiB" if rss[(e, run)] else "–" for e in engines]
    table.append(f"| {run} | peak RSS | " + " | ".join(cells) + " |" + " |" * len(peers))
print("\n".join(table))
with open(os.path.join(out, "compare-rounds.tsv"), "w") as f:
    f.write("engine\tround\trun\tbenchmark\tmicros_per_op\n")
    f.writelines("\t".join(r) + "\n" for r in raw)
with open(os.path.join(out, "compare.md"), "w") as f:
    f.write(f"`NUM={num} ROUNDS={rounds} PEERS=\"{' '.join(peers)}\" RUNS=\"{' '.join(runs)}\" bash Benchmarks/compare.sh` "
            f"at {commit}, {date}: medians of micros/op (lower is better); slice ÷ peer is the throughput ratio "
            f"(above 1: Slice is faster).\n\n")
    f.write("\n".join(table) + "\n")
PY
echo "compare: table in $OUT/compare.md, every round in $OUT/compare-rounds.tsv" >&2
