#!/usr/bin/env python3
"""Merge the suites' results, print them as tables, check the targets.

Usage: report.py --out RESULTS.json --bench-dir BENCH_SRC SUITE.jsonl...

Each SUITE.jsonl holds one measurement per line (suite, case, impl, metric,
value, unit; usually a median with its number of `runs`).  All of them are
written to RESULTS.json as one JSON array.  Then, per suite, a table: one
row per (case, metric), one column per implementation, and under it the
ratio rcgc / implementation (below 1 means rcgc is lower: faster, or
smaller).  Last, the targets of every suite that has a
BENCH_SRC/<suite>/targets.txt are checked and printed as "met" / "NOT met".

targets.txt, one target per line (# starts a comment):

    LEFT OP FACTOR RIGHT | description

  LEFT   case/metric/impl: one measurement of this suite
  OP     <= or >=
  FACTOR a number
  RIGHT  a number; or an impl name (same case and metric as LEFT); or
         case/metric/impl; or min(term, term, ...) / max(...) of those.
         Without RIGHT, FACTOR is an absolute bound ("LEFT <= 16").

  "pairs_hot/ns_per_pair/rcgc <= 0.5 pymalloc | 2x faster than pymalloc"
  reads: rcgc's value must be at most 0.5 times pymalloc's.  A target whose
  measurements are missing is reported as "n/a" (never as met).
"""
import argparse
import json
import os
import re
import sys


def load(paths):
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        pass
    return records


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3g" % v


def ratio_ok(a, b, unit):
    """A ratio is printed only between two positive values of a quantity
    (a share in % near zero gives meaningless ratios)."""
    return (a is not None and b is not None and unit != "%"
            and a > 0 and b > 0)


def print_suite(suite, recs, out):
    impls = []
    for r in recs:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    if "rcgc" in impls:
        impls.remove("rcgc")
        impls.insert(0, "rcgc")
    rows = []
    index = {}
    for r in recs:
        key = (r["case"], r["metric"], r["unit"])
        if key not in index:
            index[key] = {}
            rows.append(key)
        index[key][r["impl"]] = r["value"]

    label_w = max([len("%s %s" % (c, m)) for c, m, _ in rows] + [12])
    col_w = max([len(i) for i in impls] + [8]) + 2
    out.write("\n== %s ==  (ratio row: rcgc / column; below 1 = rcgc lower)\n" % suite)
    out.write("%-*s %-6s" % (label_w, "case metric", "unit"))
    for i in impls:
        out.write("%*s" % (col_w, i))
    out.write("\n")
    for key in rows:
        case, metric, unit = key
        vals = index[key]
        out.write("%-*s %-6s" % (label_w, "%s %s" % (case, metric), unit))
        for i in impls:
            out.write("%*s" % (col_w, fmt(vals.get(i))))
        out.write("\n")
        base = vals.get("rcgc")
        others = [i for i in impls if i != "rcgc" and ratio_ok(base, vals.get(i), unit)]
        if others:
            out.write("%-*s %-6s" % (label_w, "", "rcgc/x"))
            for i in impls:
                v = vals.get(i)
                cell = "" if i == "rcgc" or not ratio_ok(base, v, unit) else "%.2f" % (base / v)
                out.write("%*s" % (col_w, cell))
            out.write("\n")


TARGET_RE = re.compile(r"^(\S+)\s*(<=|>=)\s*([0-9.eE+-]+)(?:\s+(.+?))?\s*$")


def resolve(term, left, table):
    """Value of one RIGHT term, or None when it was not measured."""
    term = term.strip()
    m = re.match(r"^(min|max)\((.*)\)$", term)
    if m:
        vals = [resolve(t, left, table) for t in m.group(2).split(",")]
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return min(vals) if m.group(1) == "min" else max(vals)
    try:
        return float(term)
    except ValueError:
        pass
    parts = term.split("/")
    if len(parts) == 1:
        parts = [left[0], left[1], parts[0]]
    if len(parts) != 3:
        raise ValueError("bad term %r" % term)
    return table.get(tuple(parts))


def check_targets(suite, recs, path, out):
    table = {(r["case"], r["metric"], r["impl"]): r["value"] for r in recs}
    lines = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            raw = raw.split("#", 1)[0].strip()
            if raw:
                lines.append(raw)
    results = []
    for line in lines:
        expr, _, desc = line.partition("|")
        m = TARGET_RE.match(expr.strip())
        if not m:
            out.write("  [bad target line] %s\n" % line)
            continue
        left_s, op, factor_s, right_s = m.groups()
        left = left_s.split("/")
        if len(left) != 3:
            out.write("  [bad target line] %s\n" % line)
            continue
        lv = table.get(tuple(left))
        if right_s is None:          # "LEFT <= 16": an absolute bound
            right_s, factor_s = factor_s, "1"
        rv = resolve(right_s, left, table)
        desc = desc.strip() or expr.strip()
        if lv is None or rv is None:
            verdict, detail = "n/a", "not measured"
        else:
            bound = float(factor_s) * rv
            ok = lv <= bound if op == "<=" else lv >= bound
            verdict = "met" if ok else "NOT met"
            if not re.match(r"^[0-9.eE+-]+$", right_s):
                ratio = "ratio %.2f" % (lv / rv) if rv else "ratio undefined"
                detail = "%s = %s, %s = %s; %s (need %s %s)" % (
                    "/".join(left), fmt(lv), right_s, fmt(rv), ratio, op, factor_s)
            else:
                detail = "%s = %s (need %s %s)" % ("/".join(left), fmt(lv), op, fmt(bound))
        results.append((verdict, desc, detail))
        out.write("  %-8s %s\n           %s\n" % (verdict, desc, detail))
    return results


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("files", nargs="*")
    args = ap.parse_args(argv[1:])

    records = load(args.files)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=1)
        f.write("\n")

    suites = []
    for r in records:
        if r["suite"] not in suites:
            suites.append(r["suite"])
    out = sys.stdout
    for s in suites:
        print_suite(s, [r for r in records if r["suite"] == s], out)

    summary = []
    for s in suites:
        path = os.path.join(args.bench_dir, s, "targets.txt")
        if os.path.exists(path):
            out.write("\n-- targets: %s --\n" % s)
            summary += check_targets(s, [r for r in records if r["suite"] == s], path, out)
    if summary:
        counts = {}
        for v, _, _ in summary:
            counts[v] = counts.get(v, 0) + 1
        out.write("\ntargets: %s\n" % ", ".join(
            "%d %s" % (counts[k], k) for k in ("met", "NOT met", "n/a") if k in counts))
    out.write("results: %s (%d measurements)\n" % (args.out, len(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
