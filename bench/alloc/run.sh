#!/usr/bin/env bash
# bench/alloc/run.sh BUILD_DIR OUT.jsonl - the allocator suite (issue 2).
#
# Every measurement runs each allocator in its own process, BENCH_RUNS
# times, interleaved: run r goes through all allocators (in an order rotated
# by r) before run r+1 starts, so a noisy moment hits one sample of each
# instead of all samples of one.  Medians go to OUT.jsonl.
# docs/benchmarks.md describes every case.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"
bench_begin alloc "$1" "$2"

impls=()
for i in rcgc glibc mimalloc jemalloc tcmalloc pymalloc; do
  bench_have "alloc-$i" && impls+=("$i")
done

if [ "$BENCH_QUICK" = 1 ]; then
  hot_ops=500000 cold_ops=200000 pair_ops=2000000
else
  hot_ops=5000000 cold_ops=2000000 pair_ops=20000000
fi

for ((r = 0; r < BENCH_RUNS; r++)); do
  for impl in $(bench_rotate "$r" "${impls[@]}"); do
    bench_sample "$BIN/alloc-$impl" pairs_hot "$hot_ops"
    bench_sample "$BIN/alloc-$impl" pairs_cold "$cold_ops"
    bench_sample "$BIN/alloc-$impl" pair32 "$pair_ops"
    bench_sample "$BIN/alloc-$impl" memory
    if [ "$impl" = rcgc ]; then
      bench_sample "$BIN/alloc-rcgc" new_decref "$pair_ops"
    fi
  done
done

# Per-object overhead: rcgc's from rcgc_getsizeof, CPython's from
# sys.getsizeof (a two-slot instance for tracked, a complex - two doubles -
# for untracked), both minus the payload.  Deterministic: one run each.
if [[ " ${impls[*]} " == *" rcgc "* ]]; then
  bench_sample "$BIN/alloc-rcgc" overhead
fi
bench_sample python3 - <<'EOF'
import gc, json, sys
class Node:
    __slots__ = ("a", "b")
def emit(case, value):
    print(json.dumps({"suite": "alloc", "case": case, "impl": "cpython",
                      "metric": "bytes", "value": value, "unit": "B"}))
n = Node()
assert gc.is_tracked(n) and not gc.is_tracked(1j)
emit("overhead_tracked", sys.getsizeof(n) - 2 * 8)
emit("overhead_untracked", sys.getsizeof(1j) - 2 * 8)
emit("overhead_untracked_8B", sys.getsizeof(1.0) - 8)
EOF

# Instructions per pair under callgrind: the same for the same binary and
# input however busy the machine is.  Only the timed loop is counted (the
# program toggles collection around it).  Deterministic: one run each.
if command -v valgrind > /dev/null && [ "${BENCH_CALLGRIND:-1}" = 1 ]; then
  for impl in "${impls[@]}"; do
    for c in pairs_hot pairs_cold; do
      ops=200000
      cg="$BIN/callgrind.alloc-$impl.$c.out"
      rm -f "$cg"
      if valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$cg" \
           "$BIN/alloc-$impl" "$c" "$ops" > /dev/null 2>> "$LOG"; then
        total=$(awk '/^(summary|totals):/ {print $2; exit}' "$cg")
        if [ -n "$total" ]; then
          python3 -c 'import json,sys; print(json.dumps({"suite": "alloc", "case": sys.argv[1], "impl": sys.argv[2], "metric": "instr_per_pair", "value": round(int(sys.argv[3]) / int(sys.argv[4]), 2), "unit": "instr"}))' \
            "$c" "$impl" "$total" "$ops" >> "$RAW"
        fi
      else
        echo "  alloc: callgrind run of alloc-$impl $c failed (see $LOG)" >&2
      fi
    done
  done
fi

bench_end
