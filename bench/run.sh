#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - run every benchmark suite, merge, print, check.
#
# Every bench/<suite>/run.sh (in sorted order) is called as
#     bash bench/<suite>/run.sh BUILD_DIR OUT.jsonl
# and appends one JSON object per measurement to OUT.jsonl (keys suite,
# case, impl, metric, value, unit).  The results of all suites are merged
# into BUILD_DIR/bench/results.json (a JSON array) and printed as tables,
# with the ratios rcgc / peer and the target checks of each suite's
# targets.txt (bench/common/report.py explains the format).
#
# Environment:
#   BENCH_SUITES  space-separated suites to run (default: all)
#   BENCH_RUNS    runs per measurement, medians taken (default 5; drivers
#                 interleave the implementations run by run)
#   BENCH_QUICK=1 smaller sizes and 3 runs: checks the plumbing in a minute,
#                 numbers not comparable to the documented ones
#
# A failing suite does not stop the others; the exit status is then 1.
# Timings are outputs, never pass/fail conditions.
set -uo pipefail

if [ $# -lt 1 ]; then
  echo "usage: bench/run.sh BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd) || { echo "bench: no build directory $1" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$BUILD/bench"
mkdir -p "$OUT"

# Nothing may stand between the benchmarks and the allocators they measure.
unset RCGC_MALLOC RCGC_TRACEMALLOC PYTHONMALLOC PYTHONTRACEMALLOC \
      PYTHONDEVMODE LD_PRELOAD MALLOC_CONF MIMALLOC_VERBOSE
if [ -z "${BENCH_RUNS:-}" ]; then
  if [ "${BENCH_QUICK:-0}" = 1 ]; then BENCH_RUNS=3; else BENCH_RUNS=5; fi
fi
export BENCH_RUNS BENCH_QUICK=${BENCH_QUICK:-0}

suites=()
for dir in "$HERE"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/run.sh" ] || continue
  if [ -n "${BENCH_SUITES:-}" ] && ! [[ " $BENCH_SUITES " == *" $name "* ]]; then
    continue
  fi
  suites+=("$name")
done

echo "bench: suites ${suites[*]:-none}; $BENCH_RUNS runs each; build $BUILD"
echo "bench: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
status=0
files=()
for name in "${suites[@]}"; do
  out="$OUT/$name.jsonl"
  rm -f "$out"
  t0=$(date +%s)
  echo "bench: suite $name ..."
  if ! bash "$HERE/$name/run.sh" "$BUILD" "$out"; then
    echo "bench: suite $name FAILED" >&2
    status=1
  fi
  echo "bench: suite $name took $(( $(date +%s) - t0 )) s"
  [ -f "$out" ] && files+=("$out")
done

python3 "$HERE/common/report.py" --out "$OUT/results.json" --bench-dir "$HERE" "${files[@]}" \
  || status=1
echo "bench: total $(( $(date +%s) - start )) s"
exit $status
