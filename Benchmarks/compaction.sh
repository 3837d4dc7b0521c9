#!/usr/bin/env bash
# Compaction styles and parallelism on one write-heavy workload: a random fill of NUM keys with
# VALUE-byte values (a few GiB), then NUM uniform overwrites, then READS random gets, with
# leveled and universal compaction and 1 or 2 compaction jobs at once. One process per
# configuration (`slice bench`, release build). Prints a Markdown table:
#   fill / overwrite µs/op   throughput of the writing phases (background work included)
#   write amp                (WAL + flush + compaction bytes written) / user bytes
#   space amp                table and blob bytes on disk after the run / live data (NUM × (16 + VALUE))
#   read µs/op, runs         readrandom latency; sorted runs a get may search (L0 files + non-empty levels)
#   stall s, peak jobs       time writers waited: stalls (for a flush or a full L0) plus
#                            slowdowns (1 ms each, L0 past its slowdown trigger); most jobs at once
#
#   bash Benchmarks/compaction.sh                          # 10M keys × 200 B: ~2 GiB live
#   NUM=1000000 CONFIGS="leveled:1 universal:1" bash Benchmarks/compaction.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
NUM=${NUM:-10000000}
VALUE=${VALUE:-200}
READS=${READS:-1000000}
DIR=${DIR:-/tmp/slice-compaction}
BUILD=${BUILD:-1}
CONFIGS=${CONFIGS:-"leveled:1 leveled:2 universal:1 universal:2"}
mkdir -p "$DIR"
[ "$BUILD" = 0 ] || swift build -c release --product slice >&2
echo "| style | jobs | fill µs/op | overwrite µs/op | write amp | space amp | read µs/op | runs | stall s | peak jobs |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for cfg in $CONFIGS; do
  style=${cfg%%:*} jobs=${cfg##*:} db="$DIR/db"
  rm -rf "$db"
  .build/release/slice bench --db "$db" --num "$NUM" --value_size "$VALUE" --reads "$READS" \
    --benchmarks fillrandom,overwrite,readrandom,stats --compaction_style "$style" \
    --max_background_compactions "$jobs" --cache_size $((64 << 20)) > "$DIR/out-$style-$jobs.txt"
  out="$DIR/out-$style-$jobs.txt"
  us() { awk -v n="$1" '$1 == n { print $3 }' "$out"; }
  wamp=$(sed -n 's/.*write amplification \([0-9.]*\).*/\1/p' "$out" | head -1)
  stall=$(sed -n 's/^stalls [0-9]* (\([0-9]*\) us), slowdowns \([0-9]*\).*/\1 \2/p' "$out" | head -1 | awk '{ print $1 + 1000 * $2 }')
  peak=$(sed -n 's/.*peak \([0-9]*\) jobs at once.*/\1/p' "$out" | head -1)
  runs=$(awk '/^  L0:/ { n += $2; next } /^  L[1-9][0-9]*:/ { n += 1 } END { print n + 0 }' "$out")
  disk=$(find "$db" \( -name '*.sst' -o -name '*.blob' \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  live=$((NUM * (16 + VALUE)))
  awk -v s="$style" -v j="$jobs" -v f="$(us fillrandom)" -v o="$(us overwrite)" -v w="$wamp" -v d="$disk" \
    -v l="$live" -v r="$(us readrandom)" -v n="$runs" -v st="${stall:-0}" -v p="$peak" \
    'BEGIN { printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %.1f | %s |\n", s, j, f, o, w, d / l, r, n, st / 1e6, p }'
done
