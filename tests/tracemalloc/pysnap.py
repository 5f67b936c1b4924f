#!/usr/bin/env python3
"""Run the real tracemalloc.Snapshot over snapshots that a C test wrote as
JSON, and print what it gives, one result per line, for the C side to
compare byte for byte (test_snapshot.c).

Input: {"limit": N, "old": TRACES, "new": TRACES, "filters": [[F...], ...],
        "source": FILE}
TRACES: [[domain, size, [[filename, lineno], ...] (most recent first),
          total_nframe], ...]
F: [inclusive, pattern or null (a DomainFilter), lineno or null,
    all_frames, domain or null]
"""
import json
import sys
import tracemalloc


def snap(traces, limit):
    return tracemalloc.Snapshot(
        [(d, s, tuple((f, l) for f, l in fr), t) for d, s, fr, t in traces], limit)


def make_filter(f):
    inclusive, pattern, lineno, all_frames, domain = f
    if pattern is None:
        return tracemalloc.DomainFilter(bool(inclusive), domain)
    return tracemalloc.Filter(bool(inclusive), pattern, lineno, bool(all_frames), domain)


data = json.load(open(sys.argv[1]))
old = snap(data["old"], data["limit"])
new = snap(data["new"], data["limit"])
out = sys.stdout
for key in ("filename", "lineno", "traceback"):
    for cum in (False, True):
        if cum and key == "traceback":
            continue
        out.write("S %s %d\n" % (key, cum))
        for st in new.statistics(key, cum):
            out.write(str(st) + "\n")
        out.write("D %s %d\n" % (key, cum))
        for st in new.compare_to(old, key, cum):
            out.write(str(st) + "\n")
for i, fs in enumerate(data["filters"]):
    filtered = new.filter_traces([make_filter(f) for f in fs])
    out.write("F %d %d\n" % (i, len(filtered.traces)))
    for st in filtered.statistics("traceback"):
        out.write(str(st) + "\n")
top = new.statistics("traceback")[:4]
for st in top:
    for limit in (None, 1, 2, -1, 0):
        for mrf in (False, True):
            out.write("T %s %d\n" % (limit, mrf))
            for line in st.traceback.format(limit, mrf):
                out.write(line + "\n")
out.write("R\n")
for line in sorted(str(t) for t in new.traces):
    out.write(line + "\n")
