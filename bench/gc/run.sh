#!/usr/bin/env bash
# bench/gc/run.sh BUILD_DIR OUT.jsonl - the collector suite (issue 3).
#
# rcgc (gc-rcgc, bt-*; also gc-rcgc-traverse and bt-rcgc-traverse, impl
# rcgc-traverse: the same node types with traverse functions instead of
# rcgc_type.refs) and CPython (gc_bench.py, binarytrees.py, run by
# `python3`, or $BENCH_PYTHON) in the same run, each sample its own process,
# BENCH_RUNS runs interleaved (run r starts with a different implementation).
# Medians go to OUT.jsonl, followed by the slopes: cost per object at 10M
# divided by the cost at 1M, per case and implementation.
# docs/benchmarks.md describes every case.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/../common/lib.sh"
bench_begin gc "$1" "$2"
PY=${BENCH_PYTHON:-python3}

if [ "$BENCH_QUICK" = 1 ]; then
  sizes="100000 1000000" depth=14
else
  sizes="1000000 10000000" depth=18
fi
echo "  gc: CPython is $($PY -c 'import sys, platform; print(platform.python_version(), sys.executable)')"

have_rcgc=0
bench_have gc-rcgc && have_rcgc=1
gc_impls=()
[ $have_rcgc = 1 ] && gc_impls+=(rcgc)
bench_have gc-rcgc-traverse && gc_impls+=(rcgc-traverse)
gc_impls+=(cpython)
bt_impls=()
for i in rcgc rcgc-traverse glibc mimalloc boehm; do
  bench_have "bt-$i" && bt_impls+=("$i")
done
# rcgc with automatic collection off: shows what the collector costs.
[[ " ${bt_impls[*]} " == *" rcgc "* ]] && bt_impls+=("rcgc-gcoff")
bt_impls+=("cpython")

gc_sample() {   # gc_sample IMPL CASE N
  case "$1" in
    cpython) bench_sample "$PY" "$HERE/gc_bench.py" "$2" "$3" ;;
    *) bench_sample "$BIN/gc-$1" "$2" "$3" ;;
  esac
}

bt_sample() {   # bt_sample IMPL
  case "$1" in
    cpython) bench_sample "$PY" "$HERE/binarytrees.py" "$depth" ;;
    rcgc-gcoff) bench_sample "$BIN/bt-rcgc" "$depth" gcoff ;;
    *) bench_sample "$BIN/bt-$1" "$depth" ;;
  esac
}

for ((r = 0; r < BENCH_RUNS; r++)); do
  for n in $sizes; do
    for c in ring garbage churn; do
      for impl in $(bench_rotate "$r" "${gc_impls[@]}"); do
        gc_sample "$impl" "$c" "$n"
      done
    done
  done
  for impl in $(bench_rotate "$r" "${bt_impls[@]}"); do
    bt_sample "$impl"
  done
done

# Bytes of overhead per tracked object: deterministic, one run each.
[ $have_rcgc = 1 ] && bench_sample "$BIN/gc-rcgc" overhead
bench_sample "$PY" "$HERE/gc_bench.py" overhead

status=0
bench_end --paired || status=1

# Slopes: per-object cost at the big size over the cost at the small one
# (1 = flat).
python3 - "$BENCH_OUTFILE" $sizes <<'EOF' || status=1
import json, sys
path, small, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def label(n):
    return "%dM" % (n // 1000000) if n % 1000000 == 0 else str(n)
recs = [json.loads(l) for l in open(path) if l.startswith("{")]
val = {(r["case"], r["impl"], r["metric"]): r["value"] for r in recs}
with open(path, "a") as out:
    for kind, metric in (("ring", "ns_per_object"), ("garbage", "ns_per_object"),
                         ("churn", "ns_per_cycle")):
        for impl in ("rcgc", "rcgc-traverse", "cpython"):
            a = val.get(("%s_%s" % (kind, label(small)), impl, metric))
            b = val.get(("%s_%s" % (kind, label(big)), impl, metric))
            if a and b:
                out.write(json.dumps({"suite": "gc", "case": "%s_slope" % kind,
                                      "impl": impl,
                                      "metric": "%s_over_%s" % (label(big), label(small)),
                                      "value": round(b / a, 3), "unit": "x"}) + "\n")
EOF
exit $status
