#!/usr/bin/env python3
"""binary-trees for CPython: the workload of binarytrees.c, node for node.

Usage: python3 binarytrees.py [DEPTH]   (default 18)

A node is an instance of a class with __slots__ ("left", "right"), so
CPython's collector tracks it exactly as rcgc tracks its tree objects.
Automatic collection is on (CPython's default).  The time is taken with
time.perf_counter() around the workload only; the report goes to stderr and
one JSON sample to stdout.
"""
import json
import sys
import time

MIN_DEPTH = 4


class Tree:
    __slots__ = ("left", "right")


def make_tree(depth):
    t = Tree()
    if depth > 0:
        t.left = make_tree(depth - 1)
        t.right = make_tree(depth - 1)
    else:
        t.left = None
        t.right = None
    return t


def count_nodes(t):
    if t.left is None:
        return 1
    return 1 + count_nodes(t.left) + count_nodes(t.right)


def expect(got, want, what):
    if got != want:
        sys.exit("binarytrees: %s: counted %d nodes, expected %d" % (what, got, want))


def main(argv):
    depth = int(argv[1]) if len(argv) > 1 else 18
    max_depth = max(depth, MIN_DEPTH + 2)
    t0 = time.perf_counter()

    stretch = make_tree(max_depth + 1)
    n = count_nodes(stretch)
    expect(n, (2 << (max_depth + 1)) - 1, "stretch tree")
    print("stretch tree of depth %d\t check: %d" % (max_depth + 1, n), file=sys.stderr)
    del stretch

    long_lived = make_tree(max_depth)

    for d in range(MIN_DEPTH, max_depth + 1, 2):
        iterations = 1 << (max_depth - d + MIN_DEPTH)
        check = 0
        for _ in range(iterations):
            t = make_tree(d)
            check += count_nodes(t)
            del t
        expect(check, iterations * ((2 << d) - 1), "short-lived trees")
        print("%d\t trees of depth %d\t check: %d" % (iterations, d, check), file=sys.stderr)

    n = count_nodes(long_lived)
    expect(n, (2 << max_depth) - 1, "long-lived tree")
    print("long lived tree of depth %d\t check: %d" % (max_depth, n), file=sys.stderr)
    del long_lived

    t1 = time.perf_counter()
    print(json.dumps({"suite": "gc", "case": "binarytrees_%d" % depth, "impl": "cpython",
                      "metric": "seconds", "value": round(t1 - t0, 6), "unit": "s"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
