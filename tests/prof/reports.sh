#!/usr/bin/env bash
# Every rcgc-prof report, read by the tool it is made for.
# usage: reports.sh RCGC_PROF WORKDIR PROGDIR
set -u
PROF=$1 WORK=$2 PROGS=$3
mkdir -p "$WORK" && cd "$WORK" || exit 1
rm -f ./*.cap ./*.cap.* 2>/dev/null
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else ko "$what"; fi; }

"$PROF" run -q -o threads.cap -- "$PROGS/prof_threads" > /dev/null || ko "run threads"
"$PROF" run -q -o ending.cap -- "$PROGS/prof_ending" uexit > /dev/null

# text: the summary and tracemalloc's statistic lines
"$PROF" report threads.cap --top 5 > text.txt
check "text has the peak" grep -q '^peak heap: ' text.txt
check "text has tracemalloc statistic lines" \
  grep -Eq '^/.*threads\.c:[0-9]+: size=[0-9.]+ (B|KiB|MiB), count=[0-9]+, average=[0-9.]+ (B|KiB)$' text.txt
check "text has a traceback" grep -q '^  File ".*threads.c", line [0-9]*$' text.txt

# memory_profiler's per-line view
"$PROF" report threads.cap --function worker > lines.txt
check "per-line header" grep -qx 'Line #    Mem usage    Increment  Occurrences   Line Contents' lines.txt
check "per-line malloc row counts 40000 calls" \
  grep -Eq '^ +[0-9]+ +[0-9.]+ (KiB|MiB) +[0-9.]+ (KiB|MiB) +40000   .*malloc' lines.txt

# folded stacks: "a;b;c VALUE" lines whose values add up to the total
"$PROF" report threads.cap --format folded > folded.txt
"$PROF" report threads.cap --format json > report.json
check "json parses" python3 -m json.tool report.json /dev/null
check "folded lines are well formed" awk 'NF < 2 || $NF !~ /^[0-9]+$/ || $0 ~ /^ / { bad = 1 } END { exit bad }' folded.txt
total=$(python3 -c 'import json; print(json.load(open("report.json"))["alloc_bytes"])')
check "folded values add up to the bytes allocated" \
  awk -v t="$total" '{ s += $NF } END { exit s != t }' folded.txt
check "folded has worker under start_thread" grep -q 'start_thread.*;worker' folded.txt

# massif, through valgrind's ms_print
"$PROF" report threads.cap --format massif > massif.out
if command -v ms_print > /dev/null; then
  check "ms_print reads the massif file" bash -c "ms_print massif.out > ms_print.txt"
  check "ms_print shows the peak snapshot" grep -q '(peak)' ms_print.txt
  check "ms_print shows worker in the heap tree" grep -q 'worker (.*threads.c:' ms_print.txt
else
  echo "skip ms_print (valgrind not installed)"
fi

# plot: SVG parsed as XML, PNG decoded
"$PROF" plot threads.cap -o chart.svg
check "plot SVG is XML with heap and RSS lines" python3 -c '
import sys, xml.dom.minidom as m
d = m.parse("chart.svg")
ids = {p.getAttribute("id"): p.getAttribute("points") for p in d.getElementsByTagName("polyline")}
sys.exit(not (len(ids.get("heap", "").split()) >= 2 and "rss" in ids))'
if "$PROF" plot threads.cap -o chart.png 2> plot.err; then
  check "plot PNG decodes to the asked size" python3 -c '
import struct, sys, zlib
b = open("chart.png", "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", b[16:24])
sys.exit(not (w == 960 and h == 480))'
else
  echo "skip PNG ($(cat plot.err))"
fi

# diff in compare_to's format
"$PROF" diff ending.cap threads.cap > diff.txt
check "diff lines in compare_to's format" \
  grep -Eq ': size=[0-9.]+ (B|KiB|MiB) \(\+[0-9.]+ (B|KiB|MiB)\), count=[0-9]+ \(\+[0-9]+\), average=' diff.txt

# the HTML report, opened by headless Chromium
"$PROF" report threads.cap --format html -o report.html
check "html is self-contained" bash -c '! grep -Eq "(src|href)=\"(https?:)?//" report.html'
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$CHROME" ]; then
  FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
         --disable-background-networking --disable-component-update --disable-sync
         --user-data-dir="$WORK/chrome-profile" --window-size=1280,1000)
  url="file://$WORK/report.html"
  timeout 60 "$CHROME" "${FLAGS[@]}" --dump-dom "$url#search=worker" > dom1.html 2> /dev/null
  check "browser ran the page" grep -q 'data-ready="1"' dom1.html
  check "flame graph drawn (rects for frames)" python3 -c '
import re, sys
d = open("dom1.html").read()
m = re.search(r"data-drawn=\"(\d+)\"", d)
sys.exit(not (m and int(m.group(1)) >= 5 and d.count("<rect") >= 5))'
  check "search highlights worker" grep -Eq 'data-matched="[1-9]' dom1.html
  check "chart drawn with samples" grep -Eq '<polyline id="heap" [^>]*points="[0-9]' dom1.html
  timeout 60 "$CHROME" "${FLAGS[@]}" --dump-dom "$url#metric=leaked&zoom=worker" > dom2.html 2> /dev/null
  check "leaked view and zoom" grep -Eq 'data-metric="leaked".*data-zoom="worker' dom2.html
  timeout 60 "$CHROME" "${FLAGS[@]}" --screenshot="$WORK/report.png" "$url#search=worker" > /dev/null 2>&1
  check "screenshot taken" test -s report.png
else
  echo "skip browser checks (no chromium)"
fi

# damaged captures: a clear error, never a crash
expect_error() { # what file pattern
  "$PROF" report "$2" > /dev/null 2> err.txt; local rc=$?
  if [ $rc -eq 1 ] && grep -q "$3" err.txt; then ok "$1"; else ko "$1 (rc $rc: $(cat err.txt))"; fi
}
expect_error "missing file" nothere.cap "cannot open"
head -c 300 threads.cap > cut.cap
expect_error "truncated file" cut.cap "truncated"
cp threads.cap flip.cap && printf '\x55' | dd of=flip.cap bs=1 seek=60 conv=notrunc 2> /dev/null
expect_error "corrupted file" flip.cap "checksum"
expect_error "a directory" . "not a regular file"
echo "reports: $pass passed, $fail failed"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
