#!/usr/bin/env python3
"""Reduce benchmark samples to one median per measurement.

Usage: reduce.py RAW.jsonl... > OUT.jsonl

Each input line is one sample: a JSON object with the keys suite, case,
impl, metric, value and unit (what the benchmark programs print).  Lines that
are not JSON objects are ignored, so a program's stray output cannot break
the pipeline.  For every (suite, case, impl, metric, unit) the output has one
line with the median of its samples as `value`, the number of samples as
`runs` and their spread as `min` and `max`, in the order the measurements
first appeared.
"""
import json
import statistics
import sys

KEYS = ("suite", "case", "impl", "metric", "unit")


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


def main(argv):
    groups = read_samples(argv[1:])
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
