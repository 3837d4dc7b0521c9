#!/usr/bin/env bash
# Block compression side by side: Slice with none / LZ4 / zstd, LevelDB with none / snappy and
# RocksDB with none / LZ4 / zstd, each given the same setting on every level, the same
# operation sequences (`slice bench` and Benchmarks/peers/peer_bench.c share one definition)
# and values that compress to COMPRESSION_RATIO of their size (db_bench's --compression_ratio).
# One process per engine and setting, ROUNDS times, engines alternating. Prints a Markdown
# table: fillrandom and readrandom µs/op, readseq MB/s, table bytes on disk after the run
# (.sst/.ldb files, after a full manual compaction: the compressed data), and the CPU time of
# the whole process.
#
#   bash Benchmarks/compression.sh                    # 1M keys, 100-byte values, ratio 0.5
#   NUM=200000 ROUNDS=1 BUILD=0 bash Benchmarks/compression.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE_BENCH_PEERS=1 source scripts/setup.sh
NUM=${NUM:-1000000}
ROUNDS=${ROUNDS:-1}
RATIO=${COMPRESSION_RATIO:-0.5}
DIR=${DIR:-/tmp/slice-compression}
BUILD=${BUILD:-1}
mkdir -p "$DIR"
[ "$BUILD" = 0 ] || swift build -c release --product slice >&2
gcc -O2 -o "$DIR/peer_bench" Benchmarks/peers/peer_bench.c -DHAVE_LEVELDB -lleveldb -DHAVE_ROCKSDB -lrocksdb -lm -lpthread
CONFIGS=${CONFIGS:-"slice:none slice:lz4 slice:zstd leveldb:none leveldb:snappy rocksdb:none rocksdb:lz4 rocksdb:zstd"}
common="--num=$NUM --cache_size=$((8 << 20)) --bloom_bits=10 --compression_ratio=$RATIO"
: > "$DIR/rounds.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for cfg in $CONFIGS; do
    engine=${cfg%%:*} c=${cfg##*:} db="$DIR/db-$engine"
    rm -rf "$db"
    if [ "$engine" = slice ]; then
      cmd=(.build/release/slice bench --benchmarks fillrandom,compact,readrandom,readseq --db "$db" --compression_type "$c")
      for f in $common; do cmd+=("${f%%=*}" "${f#*=}"); done
    else
      cmd=("$DIR/peer_bench" --engine="$engine" --benchmarks=fillrandom,compact,readrandom,readseq --db="$db" --compression="$c" $common)
    fi
    /usr/bin/time -f "cpu %U %S" -o "$DIR/time.txt" "${cmd[@]}" > "$DIR/out.txt"
    us() { awk -v n="$1" '$1 == n { print $3 }' "$DIR/out.txt"; }
    mbs() { awk -v n="$1" '$1 == n { for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i - 1) }' "$DIR/out.txt"; }
    tables=$(find "$db" \( -name '*.sst' -o -name '*.ldb' \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    cpu=$(awk '/^cpu/ { print $2 + $3 }' "$DIR/time.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$engine" "$c" "$(us fillrandom)" "$(us readrandom)" \
      "$(mbs readseq)" "$tables" "$cpu" | tee -a "$DIR/rounds.tsv" >&2
  done
done
echo "| engine | compression | fillrandom µs/op | readrandom µs/op | readseq MB/s | tables MiB | CPU s |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '{ k = $2 "\t" $3; if (!(k in seen)) { order[++n] = k; seen[k] = 1 }
  f[k] = f[k] " " $4; r[k] = r[k] " " $5; s[k] = s[k] " " $6; t[k] = t[k] " " $7; c[k] = c[k] " " $8 }
  function med(list,   a, m, i, j, x) { m = split(list, a, " "); for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
    return a[int((m + 1) / 2)] }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, e, "\t")
    printf "| %s | %s | %.2f | %.2f | %.1f | %.1f | %.1f |\n", e[1], e[2], med(f[k]), med(r[k]), med(s[k]), med(t[k]) / 1048576, med(c[k]) } }' \
  "$DIR/rounds.tsv"
