# lib.sh - helpers for the suite drivers (bench/<suite>/run.sh); source it.
#
#   bench_begin SUITE BUILD_DIR OUT.jsonl
#       BIN (the benchmark binaries), RAW (the samples of this run) and LOG
#       (everything the programs print on stderr) are set.
#   bench_have NAME...       true when every binary $BIN/NAME exists;
#                            otherwise says which are missing
#   bench_sample CMD...      run one sample: stdout (JSON lines) to RAW,
#                            stderr to LOG; a failure is remembered
#   bench_rotate R ITEMS...  print ITEMS rotated left by R: run r starts
#                            with a different implementation, so no peer
#                            always runs first (or right after another)
#   bench_end [--paired]     reduce RAW to medians, append them to OUT;
#                            with --paired also each peer's paired_ratio
#                            (reduce.py); returns 1 if any sample failed
#
# Environment from bench/run.sh: BENCH_RUNS (runs per measurement) and
# BENCH_QUICK (1: small sizes for a plumbing check).

bench_begin() {
  BENCH_SUITE=$1
  BENCH_BUILD=$2
  BENCH_OUTFILE=$3
  BIN="$BENCH_BUILD/bench"
  RAW="$BIN/$BENCH_SUITE.raw.jsonl"
  LOG="$BIN/$BENCH_SUITE.log"
  BENCH_COMMON=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  BENCH_RUNS=${BENCH_RUNS:-5}
  BENCH_QUICK=${BENCH_QUICK:-0}
  BENCH_FAILED=0
  : > "$RAW"
  : > "$LOG"
}

bench_have() {
  local ok=0 n
  for n in "$@"; do
    if [ ! -x "$BIN/$n" ]; then
      echo "  $BENCH_SUITE: $BIN/$n is missing (not built); skipped" >&2
      ok=1
    fi
  done
  return $ok
}

bench_sample() {
  echo "+ $*" >> "$LOG"
  if ! "$@" >> "$RAW" 2>> "$LOG"; then
    echo "  $BENCH_SUITE: FAILED: $* (see $LOG)" >&2
    BENCH_FAILED=1
    return 1
  fi
}

bench_rotate() {
  local r=$1
  shift
  local n=$# i
  local items=("$@")
  for ((i = 0; i < n; i++)); do
    printf '%s\n' "${items[$(((i + r) % n))]}"
  done
}

bench_end() {
  python3 "$BENCH_COMMON/reduce.py" "$@" "$RAW" >> "$BENCH_OUTFILE"
  return $BENCH_FAILED
}
