#!/usr/bin/env bash
# bench/tracemalloc/run.sh BUILD_DIR OUT.jsonl - the tracemalloc suite
# (issue 4): tracing's slowdown on the core's allocation benchmark (call-site
# frame and 16 native frames) beside CPython's tracemalloc on the same
# workload, tracing memory per block, take_snapshot + statistics('lineno')
# over 1M live traces, and dump size/time against CPython's pickle.
# Runs are interleaved with CPython's; medians go to OUT.jsonl.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../common/lib.sh"
bench_begin tracemalloc "$1" "$2"

if [ "$BENCH_QUICK" = 1 ]; then
  hot=500000 cold=200000 pyops=100000 nsnap=1000000 nmem=200000
else
  hot=5000000 cold=2000000 pyops=300000 nsnap=1000000 nmem=1000000
fi
dump="$BIN/tracemalloc-dump"

if bench_have tm_bench; then
  for ((r = 0; r < BENCH_RUNS; r++)); do
    bench_sample "$BIN/tm_bench" pairs_hot "$hot"
    bench_sample python3 "$HERE/py_tm.py" pairs_hot "$pyops"
    bench_sample "$BIN/tm_bench" pairs_cold "$cold"
    bench_sample python3 "$HERE/py_tm.py" pairs_cold "$pyops"
    bench_sample "$BIN/tm_bench" snapshot "$nsnap" "$dump.rcgc"
    bench_sample python3 "$HERE/py_tm.py" snapshot "$nsnap" "$dump.pickle"
  done
  bench_sample "$BIN/tm_bench" memory "$nmem"
  rm -f "$dump.rcgc" "$dump.pickle"
fi
bench_end
