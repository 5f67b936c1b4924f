#!/usr/bin/env python3
"""The gc suite's collector cases for CPython (twin of gc_bench.c).

Usage: python3 gc_bench.py ring|garbage|churn N | overhead

Same cases, same shapes, same order of operations as gc_bench.c; see its
header.  A node is an instance of a class with __slots__ ("a", "b"): two
reference slots, tracked by CPython's collector.  Times come from
time.perf_counter() around the measured part only, so interpreter start-up
and building the heap are not counted.  One JSON line per sample on stdout.
"""
import gc
import json
import os
import sys
import time


class Node:
    __slots__ = ("a", "b")


CASE = ""


def emit(metric, value, unit):
    print(json.dumps({"suite": "gc", "case": CASE, "impl": "cpython",
                      "metric": metric, "value": round(value, 6), "unit": unit}))
    sys.stdout.flush()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_ring(n):
    head = Node()
    prev = head
    for _ in range(n - 1):
        x = Node()
        prev.a = x
        x.b = prev
        prev = x
    prev.a = head
    head.b = prev
    return head


def case_ring(n):
    gc.disable()
    rss0 = rss_bytes()
    head = build_ring(n)
    rss1 = rss_bytes()
    gc.collect()
    for _ in range(3):
        t0 = time.perf_counter()
        found = gc.collect()
        t1 = time.perf_counter()
        if found != 0:
            sys.exit("a live ring had unreachable nodes")
        emit("ns_per_object", (t1 - t0) * 1e9 / n, "ns")
    emit("rss_bytes_per_node", (rss1 - rss0) / n, "B")
    del head


def case_garbage(n):
    gc.disable()
    head = build_ring(n)
    del head
    t0 = time.perf_counter()
    found = gc.collect()
    t1 = time.perf_counter()
    if found < n:
        sys.exit("collected %d of %d" % (found, n))
    emit("ns_per_object", (t1 - t0) * 1e9 / n, "ns")


def case_churn(n):
    gc.enable()
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            x = Node()
            y = Node()
            x.a = y
            y.a = x
        del x, y
        gc.collect()
        t1 = time.perf_counter()
        emit("ns_per_cycle", (t1 - t0) * 1e9 / n, "ns")


def parse_count(s):
    mult = {"k": 1000, "K": 1000, "M": 1000000, "m": 1000000}
    if s and s[-1] in mult:
        return int(s[:-1]) * mult[s[-1]]
    return int(s)


def main(argv):
    global CASE
    if len(argv) < 2:
        sys.exit("usage: gc_bench.py ring|garbage|churn N | overhead")
    c = argv[1]
    if c == "overhead":
        CASE = "overhead_tracked"
        n = Node()
        assert gc.is_tracked(n)
        emit("bytes", sys.getsizeof(n) - 2 * 8, "B")
        return 0
    n = parse_count(argv[2]) if len(argv) > 2 else 1000000
    CASE = "%s_%dM" % (c, n // 1000000) if n % 1000000 == 0 else "%s_%d" % (c, n)
    {"ring": case_ring, "garbage": case_garbage, "churn": case_churn}[c](n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
