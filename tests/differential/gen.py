#!/usr/bin/env python3
"""Write a random differential scenario to standard output.

    gen.py SEED N [--legacy]

N ops, chosen by a random.Random(SEED), so a seed always gives the same
scenario.  Every op is valid: the generator keeps the same static state that
the runners check (what the scenario holds, which edges a held node has).
The mix aims at the collector's hard cases: cycles (self-loops included)
built across several collections so that they span generations, finalizers,
resurrection, weak references with and without callbacks, weak references
held by nodes (so that they can be trash themselves), edges removed again,
collections of every generation, DEBUG_SAVEALL, gc.garbage and the stats.
With --legacy some nodes have a legacy finalizer (checked only where the
twin can give a class tp_del; see README.md).
"""

import random
import sys

# How many nodes the scenario holds at most: 10, more in long scenarios
# (bigger trash sets, longer cycles).
def max_held(n_ops):
    return max(10, n_ops // 10)

WEIGHTS = (
    ("new", 14), ("edge", 20), ("unedge", 4), ("weakref", 8), ("hold", 6),
    ("deref", 6), ("refcount", 5), ("drop", 12), ("dropweak", 5),
    ("unsave", 3), ("collect", 9), ("debug", 3), ("garbage", 4), ("stats", 2),
)


def generate(seed, n_ops, legacy=False):
    """Return the scenario text for (seed, n_ops)."""
    rng = random.Random(seed)
    kinds = [("plain", 50), ("finalizer", 25), ("resurrect", 15)]
    if legacy:
        kinds.append(("legacy", 8))
    held = []               # node names the scenario holds, creation order
    weak = []               # weak reference names the scenario holds
    edges = []              # (from, to) of held `from` nodes, with repeats
    counter = [0, 0]
    saveall = False
    lines = ["# gen.py %d %d%s" % (seed, n_ops, " --legacy" if legacy else "")]

    def pick(pairs):
        total = sum(w for _, w in pairs)
        r = rng.uniform(0, total)
        for item, w in pairs:
            r -= w
            if r <= 0:
                return item
        return pairs[-1][0]

    def possible(op):
        if op in ("edge", "refcount", "drop", "weakref"):
            return bool(held)
        if op == "unedge":
            return bool(edges)
        if op == "hold":
            return bool(held) and bool(weak)
        if op in ("deref", "dropweak"):
            return bool(weak)
        return True

    while len(lines) <= n_ops:
        weights = [(op, w) for op, w in WEIGHTS if possible(op)]
        if saveall:
            weights = [(op, w * 2 if op in ("garbage", "collect") else w)
                       for op, w in weights]
        if len(held) >= max_held(n_ops):
            weights = [(op, w * 3 if op == "drop" else w)
                       for op, w in weights if op != "new"]
        op = pick(weights)
        if op == "new":
            name = "n%d" % counter[0]
            counter[0] += 1
            kind = pick(kinds)
            held.append(name)
            lines.append("new %s" % name if kind == "plain" and rng.random() < 0.5
                         else "new %s %s" % (name, kind))
        elif op == "edge":
            a = rng.choice(held)
            b = a if rng.random() < 0.12 else rng.choice(held)
            edges.append((a, b))
            lines.append("edge %s %s" % (a, b))
        elif op == "unedge":
            a, b = edges.pop(rng.randrange(len(edges)))
            lines.append("unedge %s %s" % (a, b))
        elif op == "weakref":
            name = "w%d" % counter[1]
            counter[1] += 1
            weak.append(name)
            cb = " callback" if rng.random() < 0.6 else ""
            lines.append("weakref %s %s%s" % (name, rng.choice(held), cb))
        elif op == "hold":
            lines.append("hold %s %s" % (rng.choice(held), rng.choice(weak)))
        elif op == "deref":
            lines.append("deref %s" % rng.choice(weak))
        elif op == "refcount":
            lines.append("refcount %s" % rng.choice(held))
        elif op == "drop":
            name = held.pop(rng.randrange(len(held)))
            edges = [e for e in edges if e[0] != name]
            lines.append("drop %s" % name)
        elif op == "dropweak":
            lines.append("dropweak %s" % weak.pop(rng.randrange(len(weak))))
        elif op == "collect":
            gen = rng.choice(("", " 0", " 0", " 1", " 1", " 2"))
            lines.append("collect" + gen)
        elif op == "debug":
            # Sticky: saveall stays on for a while, so that collections and
            # `garbage` ops happen under it.
            saveall = rng.random() < (0.7 if saveall else 0.6)
            lines.append("debug saveall" if saveall else "debug none")
        else:
            lines.append(op)
    return "\n".join(lines) + "\n"


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    flags = [a for a in argv[1:] if a.startswith("--")]
    if len(args) != 2 or any(f != "--legacy" for f in flags):
        sys.stderr.write("usage: gen.py SEED N [--legacy]\n")
        return 2
    sys.stdout.write(generate(int(args[0]), int(args[1]), "--legacy" in flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
