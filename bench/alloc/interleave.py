#!/usr/bin/env python3
"""interleave.py ROUNDS CASE OPS LABEL=BINARY ... - same-run timing of alloc_bench binaries.

Each round runs every binary once (its own process, `BINARY CASE OPS`), the
order rotated by one each round, so a slow moment of the shared machine costs
one sample of each binary rather than several of one.  A case that reports
several records (new_decref: new_decref_untracked32, new_decref_tracked32...)
is shown per record.  Prints, for each record and
metric the binaries report (ns_per_pair; also cpu_ns_per_pair, the thread's
CPU time, when BENCH_CPU_TIME=1 is in the environment), each label's median,
min and max and the ratio of the first label's median to each other's, and
the load average at the end.  Ratios only mean something within one run
(docs/benchmarks.md, "Method").

With BENCH_FRESH_COPY=1 in the environment every run executes a fresh copy
of its binary (a new file, so new page-cache pages for its code): on this
machine the same bytes ran a 32-byte pair at 7.1 or 8.4 ns depending on the
file they were loaded from, steadily for that file until its pages were
evicted (docs/design-gc.md, round 17a), so that a comparison of two fixed
files can carry a placement bias of either sign.  Fresh copies (kept until
the end of the run, so that a copy does not get the pages the previous one
gave back) turn it into noise shared by both labels.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def run_binary(binary, case, ops, fresh):
    """One run of binary; with fresh (a directory), of a new copy of it
    there.  The copies are kept until the end of the whole run, so that the
    next copy cannot take the pages the last one just gave back."""
    if fresh is None:
        return subprocess.run([binary, case, ops], capture_output=True, text=True,
                              check=True).stdout
    fd, copy = tempfile.mkstemp(prefix="run-", dir=fresh)
    with os.fdopen(fd, "wb") as out, open(binary, "rb") as src:
        shutil.copyfileobj(src, out)
    os.chmod(copy, 0o755)
    return subprocess.run([copy, case, ops], capture_output=True, text=True,
                          check=True).stdout


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    rounds, case, ops = int(argv[1]), argv[2], argv[3]
    bins = [a.split("=", 1) for a in argv[4:]]
    samples = {}   # ((case, metric), label) -> values
    copies = (tempfile.TemporaryDirectory(prefix="interleave-")
              if os.environ.get("BENCH_FRESH_COPY") == "1" else None)
    fresh = copies.name if copies else None
    for r in range(rounds):
        k = r % len(bins)
        for label, binary in bins[k:] + bins[:k]:
            out = run_binary(binary, case, ops, fresh)
            for line in out.splitlines():
                rec = json.loads(line)
                if rec["case"] == case or rec["case"].startswith(case + "_"):
                    key = (rec["case"], rec["metric"])
                    samples.setdefault((key, label), []).append(rec["value"])
    if copies:
        copies.cleanup()
    print(f"{case} ops={ops} rounds={rounds} fresh copies={int(copies is not None)} "
          f"load average at the end={os.getloadavg()[0]:.2f}")
    first = bins[0][0]
    for metric in sorted({m for m, _ in samples}):
        print(f" {metric[0]} {metric[1]}:")
        for label, _ in bins:
            v = samples[(metric, label)]
            print(f"  {label:12s} median {statistics.median(v):8.2f}  "
                  f"min {min(v):8.2f}  max {max(v):8.2f}")
        for label, _ in bins[1:]:
            ratio = (statistics.median(samples[(metric, first)]) /
                     statistics.median(samples[(metric, label)]))
            print(f"  {first} / {label} = {ratio:.3f}")


if __name__ == "__main__":
    main(sys.argv)
