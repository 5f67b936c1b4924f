#!/usr/bin/env python3
"""CPython's side of the tracemalloc suite: the same measurements with the
real tracemalloc module, printed as JSON lines (impl cpython*).

  py_tm.py pairs_hot|pairs_cold OPS   free+allocate pairs (bytes objects of
                                      8..512 bytes) over 1,000 / 100,000 live
                                      objects, tracing off, start(1), start(16)
  py_tm.py snapshot N DUMPFILE        N live str objects (the seed's
                                      [str(i) for i in range(N)]):
                                      take_snapshot()+statistics('lineno'),
                                      Snapshot.dump (pickle) time and size,
                                      tracemalloc memory per traced block
"""
import json
import os
import random
import sys
import time
import tracemalloc


def emit(case, impl, metric, value, unit):
    print(json.dumps({"suite": "tracemalloc", "case": case, "impl": impl,
                      "metric": metric, "value": value, "unit": unit}))


def pairs(live, ops, nframe):
    rnd = random.Random(1)
    slots_ix = [rnd.randrange(live) for _ in range(ops)]
    sizes = [rnd.randint(8, 512) for _ in range(ops)]
    if nframe:
        tracemalloc.start(nframe)
    slots = [bytes(rnd.randint(8, 512)) for _ in range(live)]
    t0 = time.perf_counter()
    for i in range(ops):
        slots[slots_ix[i]] = b"x" * sizes[i]
    t1 = time.perf_counter()
    if nframe:
        tracemalloc.stop()
    del slots
    return (t1 - t0) * 1e9 / ops


def case_pairs(name, live, ops):
    off = pairs(live, ops, 0)
    tm1 = pairs(live, ops, 1)
    tm16 = pairs(live, ops, 16)
    emit(name, "cpython", "ns_per_pair", off, "ns")
    emit(name, "cpython_tm1", "ns_per_pair", tm1, "ns")
    emit(name, "cpython_tm16", "ns_per_pair", tm16, "ns")
    emit(name, "cpython_tm1", "slowdown", tm1 / off, "x")
    emit(name, "cpython_tm16", "slowdown", tm16 / off, "x")


def case_snapshot(n, path):
    tracemalloc.start(1)
    m0 = tracemalloc.get_tracemalloc_memory()
    data = [str(i) for i in range(n)]
    m1 = tracemalloc.get_tracemalloc_memory()
    t0 = time.perf_counter()
    snap = tracemalloc.take_snapshot()
    top = snap.statistics("lineno")
    t1 = time.perf_counter()
    snap.dump(path)
    t2 = time.perf_counter()
    tracemalloc.Snapshot.load(path)
    t3 = time.perf_counter()
    emit("memory", "cpython_tm1", "bytes_per_block", (m1 - m0) / n, "B")
    emit("snapshot_stats_1M", "cpython", "seconds", t1 - t0, "s")
    emit("dump_1M", "cpython", "seconds", t2 - t1, "s")
    emit("dump_1M", "cpython", "bytes", os.path.getsize(path), "B")
    emit("load_1M", "cpython", "seconds", t3 - t2, "s")
    print("cpython snapshot: %d traces; top: %s" % (len(snap.traces), top[0]),
          file=sys.stderr)
    tracemalloc.stop()
    del data


if __name__ == "__main__":
    if sys.argv[1] in ("pairs_hot", "pairs_cold"):
        case_pairs(sys.argv[1], 1000 if sys.argv[1] == "pairs_hot" else 100000,
                   int(sys.argv[2]))
    elif sys.argv[1] == "snapshot":
        case_snapshot(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(2)
