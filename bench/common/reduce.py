#!/usr/bin/env python3
"""Reduce benchmark samples to one median per measurement.

Usage: reduce.py [--paired] RAW.jsonl... > OUT.jsonl

Each input line is one sample: a JSON object with the keys suite, case,
impl, metric, value and unit (what the benchmark programs print).  Lines that
are not JSON objects are ignored, so a program's stray output cannot break
the pipeline.  For every (suite, case, impl, metric, unit) the output has one
line with the median of its samples as `value`, the number of samples as
`runs` and their spread as `min` and `max`, in the order the measurements
first appeared.

With --paired, each run's rcgc sample is also divided by the other
implementations' samples of the same run: for every (suite, case, metric)
that rcgc measured in a unit of time, and every other implementation with as many samples,
one more line with metric `<metric>_paired_ratio`, unit `x`, the other
implementation as `impl` and as `value` the median over the runs of
rcgc's k-th sample over that implementation's k-th sample.  The drivers
take one sample per implementation per run, in runs that follow each
other, so the k-th samples are neighbours in time: the ratio of each pair
leaves out whatever slowed or sped up the machine during that run (the
brief's "compare in the same run, repeat, take the median").  A group
whose counts differ (a failed sample) gets no paired line.
"""
import json
import statistics
import sys

KEYS = ("suite", "case", "impl", "metric", "unit")
# Paired ratios are taken of times only: sizes and counts do not drift with
# the machine's load.
TIME_UNITS = ("ns", "us", "ms", "s")


def read_samples(paths):
    groups = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                    key = tuple(str(rec[k]) for k in KEYS)
                    value = float(rec["value"])
                except (ValueError, KeyError, TypeError):
                    continue
                groups.setdefault(key, []).append(value)
    return groups


def paired_ratios(groups):
    """The --paired lines (see the module's docstring)."""
    out = []
    for key, values in groups.items():
        suite, case, impl, metric, unit = key
        if impl != "rcgc" or unit not in TIME_UNITS:
            continue
        for other, ovalues in groups.items():
            osuite, ocase, oimpl, ometric, ounit = other
            if (osuite, ocase, ometric, ounit) != (suite, case, metric, unit) or oimpl == impl:
                continue
            if len(ovalues) != len(values) or any(v <= 0 for v in ovalues):
                continue
            ratios = [a / b for a, b in zip(values, ovalues)]
            out.append({
                "suite": suite,
                "case": case,
                "impl": oimpl,
                "metric": metric + "_paired_ratio",
                "value": round(statistics.median(ratios), 6),
                "unit": "x",
                "runs": len(ratios),
                "min": round(min(ratios), 6),
                "max": round(max(ratios), 6),
            })
    return out


def main(argv):
    paired = "--paired" in argv[1:]
    groups = read_samples([a for a in argv[1:] if a != "--paired"])
    for key, values in groups.items():
        rec = dict(zip(KEYS, key))
        rec = {
            "suite": rec["suite"],
            "case": rec["case"],
            "impl": rec["impl"],
            "metric": rec["metric"],
            "value": round(statistics.median(values), 6),
            "unit": rec["unit"],
            "runs": len(values),
            "min": round(min(values), 6),
            "max": round(max(values), 6),
        }
        print(json.dumps(rec))
    if paired:
        for rec in paired_ratios(groups):
            print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
