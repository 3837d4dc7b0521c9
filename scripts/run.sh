#!/usr/bin/env bash
# Sets up the machine, builds Slice (release) and runs it on ./slice-data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build -c release --product slice
data="${SLICE_DATA:-./slice-data}"
exec .build/release/slice demo "$data"
