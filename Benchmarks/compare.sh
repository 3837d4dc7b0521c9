#!/usr/bin/env bash
# Runs `slice bench` and the peers (LevelDB, and RocksDB/LMDB when asked) alternately on the
# same disk, ROUNDS times, with the same workloads and settings, and prints a Markdown table of
# medians (micros/op) with Slice/peer ratios (> 1 means Slice is slower).
#
#   bash Benchmarks/compare.sh                       # 1M entries, 3 rounds, LevelDB
#   NUM=200000 ROUNDS=5 PEERS="leveldb rocksdb lmdb" bash Benchmarks/compare.sh
#   OUT=/tmp/run1 BUILD=0 bash Benchmarks/compare.sh  # results elsewhere; no `swift build`
#
# Besides printing the table, each run writes to $OUT (default: $DIR; relative paths in DIR and
# OUT are taken from the repository root):
#   compare.md          the same Markdown table, with the settings and date
#   compare.tsv         medians in micros/op (benchmark x engine), `# key<TAB>value` metadata
#   compare-rounds.tsv  every round's raw result (engine, round, benchmark, micros/op, MB/s)
#   compare.svg         grouped bar chart of throughput (Benchmarks/chart.py --compare)
#   compare.png         the same chart, when rsvg-convert (librsvg2-bin) is installed
#
# Settings for all engines: 16-byte keys, 100-byte values, WAL on without fsync, no
# compression, 8 MiB block cache, 10 bloom bits per key (LMDB: no cache or bloom settings).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE_BENCH_PEERS=1 source scripts/setup.sh
NUM=${NUM:-1000000}
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-leveldb}
BENCHMARKS=${BENCHMARKS:-fillseq,fillrandom,overwrite,readrandom,readmissing,readhot,readseq,readreverse,seekrandom,deleterandom}
DIR=${DIR:-/tmp/slice-compare}
OUT=${OUT:-$DIR}
BUILD=${BUILD:-1}
mkdir -p "$DIR" "$OUT"
rm -f "$DIR/results.txt"
[ "$BUILD" = 0 ] || swift build -c release --product slice >&2
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
  ${SLICE:-.build/release/slice} bench $(echo "$common" | sed 's/=/ /g') --db "$DIR/slice" 2>/dev/null | sed "s/^/slice $r /" >> "$DIR/results.txt"
  for p in $PEERS; do
    "$DIR/peer_bench" --engine="$p" $common --db="$DIR/$p" | sed "s/^/$p $r /" >> "$DIR/results.txt"
  done
done
python3 - "$DIR/results.txt" "$PEERS" "$BENCHMARKS" "$OUT" "$NUM" "$ROUNDS" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY'
import sys, statistics, collections, os
path, peers, benches = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(",")
out, num, rounds, date = sys.argv[4:8]
vals = collections.defaultdict(list)
raw = []
for line in open(path):
    parts = line.split()
    if len(parts) > 5 and parts[3] == ":" and parts[5].startswith("micros/op"):
        vals[(parts[0], parts[2])].append(float(parts[4]))
        mbs = parts[6] if len(parts) > 7 and parts[7] == "MB/s" else ""
        raw.append([parts[0], parts[1], parts[2], parts[4], mbs])
engines = ["slice"] + peers
table = ["| benchmark | " + " | ".join(f"{e} µs/op" for e in engines) + " | " + " | ".join(f"slice/{p}" for p in peers) + " |",
         "|---" * (1 + len(engines) + len(peers)) + "|"]
tsv = []
for b in benches:
    med = {e: statistics.median(vals[(e, b)]) if vals[(e, b)] else None for e in engines}
    cells = [f"{med[e]:.3f}" if med[e] is not None else "–" for e in engines]
    ratios = [f"{med['slice'] / med[p]:.2f}" if med[p] and med['slice'] else "–" for p in peers]
    table.append(f"| {b} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    tsv.append("\t".join([b] + [c if c != "–" else "" for c in cells]))
print("\n".join(table))
meta = {"source": "Benchmarks/compare.sh", "date": date, "num": num, "rounds": rounds,
        "peers": " ".join(peers), "benchmarks": ",".join(benches), "unit": "micros/op",
        "key_size": "16", "value_size": "100", "cache_size": str(8 << 20), "bloom_bits": "10"}
with open(os.path.join(out, "compare.tsv"), "w") as f:
    f.writelines(f"# {k}\t{v}\n" for k, v in meta.items())
    f.write("\t".join(["benchmark"] + engines) + "\n")
    f.writelines(l + "\n" for l in tsv)
with open(os.path.join(out, "compare-rounds.tsv"), "w") as f:
    f.write("engine\tround\tbenchmark\tmicros_per_op\tmb_per_s\n")
    f.writelines("\t".join(r) + "\n" for r in raw)
with open(os.path.join(out, "compare.md"), "w") as f:
    f.write(f"`NUM={num} ROUNDS={rounds} PEERS=\"{' '.join(peers)}\" bash Benchmarks/compare.sh`, {date}: "
            f"medians of micros/op, lower is better; slice/peer above 1 means Slice is slower.\n\n")
    f.write("\n".join(table) + "\n")
PY
rm -f "$DIR/results.txt"
if python3 Benchmarks/chart.py --compare "$OUT/compare.tsv" -o "$OUT/compare.svg" --png; then
  echo "compare: results in $OUT/compare.{md,tsv,svg} and compare-rounds.tsv" >&2
else
  echo "compare: chart.py failed; the table is in $OUT/compare.md and $OUT/compare.tsv" >&2
fi
