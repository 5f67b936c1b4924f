#!/usr/bin/env bash
# bench/prof/run.sh BUILD_DIR OUT.jsonl - the profiler suite (issue 5).
#
# The allocation benchmark (alloc_bench.c: 5M free+malloc pairs of 8..512 B
# over 1,000 live blocks, the core issue's workload) runs unprofiled
# ("none"), under rcgc-prof with 16-frame native stacks ("rcgc") and under
# heaptrack ("heaptrack"), interleaved run by run.  Measured:
#   alloc_bench  seconds, cpu_seconds (wall; user+sys of the whole process
#                tree, heaptrack's interpreter included), slowdown (profiled
#                wall / unprofiled wall of the same round), cpu_slowdown (the
#                same with CPU time: steadier on a loaded machine, where
#                heaptrack's second process hides part of its cost from the
#                wall clock)
#   capture      bytes of the capture file (rcgc-prof's, heaptrack's .zst)
#   capture_4x   bytes of rcgc-prof's capture of a 4x longer run
#   report_10M   seconds to print the text report of a 10M-allocation
#                capture (rcgc-prof report; heaptrack_print), and the HTML one
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"
mkdir -p "$1/bench"
bench_begin prof "$1" "$2"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROF="$BENCH_BUILD/bin/rcgc-prof"
if [ ! -x "$PROF" ]; then
  echo "  prof: $PROF is missing (not built); skipped" >&2
  exit 0
fi
PROG="$BIN/prof-alloc-bench"
if [ ! -x "$PROG" ]; then # a build without the bench targets: build it here
  mkdir -p "$BIN"
  cc -O2 -g -o "$PROG" "$HERE/alloc_bench.c" || { echo "  prof: cannot build alloc_bench" >&2; exit 1; }
fi
HAVE_HT=0
command -v heaptrack > /dev/null && command -v heaptrack_print > /dev/null && HAVE_HT=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ "$BENCH_QUICK" = 1 ]; then pairs=1000000; else pairs=5000000; fi

emit() { # case impl metric value unit
  printf '{"suite":"prof","case":"%s","impl":"%s","metric":"%s","value":%s,"unit":"%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" >> "$RAW"
}
# timed CMD...: runs it, sets T_WALL and T_CPU (seconds, children included)
timed() {
  local TIMEFORMAT='%R %U %S' out
  out=$({ time "$@" > /dev/null 2> "$WORK/stderr"; } 2>&1) || { cat "$WORK/stderr" >> "$LOG"; return 1; }
  read -r T_WALL u s <<< "$out"
  T_CPU=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

impls=(none rcgc)
[ $HAVE_HT = 1 ] && impls+=(heaptrack)
for ((r = 0; r < BENCH_RUNS; r++)); do
  declare -A wall=() cpu=()
  for impl in $(bench_rotate "$r" "${impls[@]}"); do
    case $impl in
      none) timed "$PROG" "$pairs" ;;
      rcgc) timed "$PROF" run -q --native-frames 16 -o "$WORK/bench.cap" -- "$PROG" "$pairs" ;;
      heaptrack) timed heaptrack -o "$WORK/bench.ht" "$PROG" "$pairs" ;;
    esac || { BENCH_FAILED=1; continue; }
    wall[$impl]=$T_WALL
    cpu[$impl]=$T_CPU
    emit alloc_bench "$impl" seconds "$T_WALL" s
    emit alloc_bench "$impl" cpu_seconds "$T_CPU" s
  done
  for impl in rcgc heaptrack; do
    if [ -n "${wall[$impl]:-}" ] && [ -n "${wall[none]:-}" ]; then
      emit alloc_bench "$impl" slowdown "$(ratio "${wall[$impl]}" "${wall[none]}")" x
      emit alloc_bench "$impl" cpu_slowdown "$(ratio "${cpu[$impl]}" "${cpu[none]}")" x
    fi
  done
  unset wall cpu
done
emit capture rcgc bytes "$(stat -c %s "$WORK/bench.cap")" B
[ $HAVE_HT = 1 ] && emit capture heaptrack bytes "$(stat -c %s "$WORK/bench.ht.zst")" B

# A 4x longer run: the capture must not grow with the run's length.
"$PROF" run -q --native-frames 16 -o "$WORK/long.cap" -- "$PROG" $((pairs * 4)) > /dev/null
emit capture_4x rcgc bytes "$(stat -c %s "$WORK/long.cap")" B

# Reports of a capture of 10M allocations (10M pairs).
"$PROF" run -q --native-frames 16 -o "$WORK/10M.cap" -- "$PROG" 10000000 > /dev/null
for ((r = 0; r < BENCH_RUNS; r++)); do
  timed "$PROF" report "$WORK/10M.cap" && emit report_10M rcgc seconds "$T_WALL" s
  timed "$PROF" report "$WORK/10M.cap" --format html -o "$WORK/10M.html" &&
    emit report_html_10M rcgc seconds "$T_WALL" s
done
if [ $HAVE_HT = 1 ] && [ "$BENCH_QUICK" != 1 ]; then
  heaptrack -o "$WORK/10M.ht" "$PROG" 10000000 > /dev/null 2>&1
  timed heaptrack_print -f "$WORK/10M.ht.zst" && emit report_10M heaptrack seconds "$T_WALL" s
fi
bench_end
