#!/usr/bin/env bash
# Key-value separation: what the blob threshold buys, and write amplification of 1 MiB values.
#
#   bash Benchmarks/blob_bench.sh            (release build of slice; about 3 minutes)
#
# For values of 8, 32 and 128 KiB (about 1 GiB of data each), runs fillrandom, overwrite and
# readrandom twice: values kept inline in the LSM tree (--blob_threshold 1 GiB) and values in
# blob files (threshold = value size). Then 2 GiB of 1 MiB values with the default threshold,
# written, overwritten and compacted. Prints a Markdown table: µs/op and write amplification
# (bytes written to disk by WAL, blobs, flushes and compactions per user byte).
set -euo pipefail
cd "$(dirname "$0")/.."
SLICE=${SLICE:-.build/release/slice}
DB=${DB:-/var/tmp/slice-blob-bench}
TOTAL_MB=${TOTAL_MB:-1024}
[[ -x $SLICE ]] || swift build -c release --product slice >&2

run() { # value_size threshold num benchmarks -> prints "name µs/op" lines and "wamp X"
  rm -rf "$DB"
  "$SLICE" bench --db "$DB" --num "$3" --value_size "$1" --blob_threshold "$2" --benchmarks "$4,stats" 2>/dev/null |
    awk '/micros\/op/ { print $1, $3 } /write amplification/ { print "wamp", $NF }'
}
pick() { awk -v k="$1" '$1 == k { print $2 }'; }

echo "| value size | storage | fillrandom µs/op | overwrite µs/op | readrandom µs/op | write amplification |"
echo "|---|---|---|---|---|---|"
for v in 8192 32768 131072; do
  num=$(( TOTAL_MB * 1048576 / v ))
  for mode in inline blob; do
    if [[ $mode == inline ]]; then t=$((1 << 30)); else t=$v; fi
    out=$(run "$v" "$t" "$num" fillrandom,overwrite,readrandom)
    echo "| $((v / 1024)) KiB × $num | $mode | $(pick fillrandom <<<"$out") | $(pick overwrite <<<"$out") | $(pick readrandom <<<"$out") | $(pick wamp <<<"$out") |"
  done
done
echo
echo "1 MiB values, 2 GiB written then overwritten, then a full compaction (default threshold 32 KiB):"
echo
out=$(run 1048576 32768 2048 fillrandom,overwrite,compact)
echo "| fillrandom µs/op | overwrite µs/op | compact s | write amplification |"
echo "|---|---|---|---|"
echo "| $(pick fillrandom <<<"$out") | $(pick overwrite <<<"$out") | $(awk '$1=="compact"{printf "%.2f", $2/1e6}' <<<"$out") | $(pick wamp <<<"$out") |"
rm -rf "$DB"
