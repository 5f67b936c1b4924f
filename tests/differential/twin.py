#!/usr/bin/env python3
"""Run a differential scenario on CPython, with its own gc and weakref modules.

    twin.py FILE

The scenario language and the output format are those of issue 3, item 6; the
README.md beside this file restates them with the decisions the issue leaves
open.  build/tests/rcgc-scenario runs the same scenario on rcgc and must print
the same bytes.

How the twin keeps CPython from disagreeing for reasons that have nothing to
do with the collector:

* One Python object per node: a node *is* a list (a list subclass with
  __slots__), so its strong references are its items and no second, separately
  collectable list object exists.  Items are compared by identity only (list
  equality would compare contents).
* Weak references are plain weakref.ref objects, so CPython's sharing holds:
  weakref.ref(x) without a callback returns x's existing callback-less
  reference when there is one (rcgc_weakref_new does the same).  A shared
  object is known by the name of the op that created it.  The callback is a
  module-level function, reachable from the frozen module, that holds nothing
  else.
* Everything the twin creates before the scenario starts (the parsed ops, its
  dictionaries, the saved list, the log) is collected and then frozen
  (gc.freeze()), so no collection of the scenario ever examines it; the twin
  creates no reference cycles while the scenario runs.
* Automatic collection is off from the first line; statistics are deltas
  from the moment the scenario starts.
* `refcount` subtracts the one temporary reference the call itself holds.
* The output is written after the scenario with os._exit(), so that the
  interpreter's own teardown (which finalizes what is left) adds nothing.

`legacy` nodes need an old-style finalizer (tp_del), which Python classes
cannot have; CPython's test helper _testcapi.with_tp_del gives a class one.
When that module is missing the twin refuses such scenarios (exit status 3)
and they are checked against hand-written FILE.expected instead.
"""

import gc

gc.disable()

import os  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import weakref  # noqa: E402

try:
    from _testcapi import with_tp_del
except ImportError:  # pragma: no cover - depends on the Python build
    with_tp_del = None

EXIT_PARSE = 2
EXIT_UNSUPPORTED = 3

KINDS = ("plain", "finalizer", "resurrect", "legacy")
NAME_RE = re.compile(r"[A-Za-z0-9_]{1,64}\Z")
RESERVED = ("none",)

# The scenario's state.  All of it exists before the freeze.
log = []        # log lines of the op being run
saved = []      # the global list resurrecting finalizers append to
nodes = {}      # name -> node the scenario holds
wrefs = {}      # name -> weak reference the scenario holds
logging_on = [True]


class Node(list):
    """A node: its items are the strong references it holds."""
    __slots__ = ("name", "__weakref__")


class FinalizerNode(Node):
    __slots__ = ()

    def __del__(self):
        if logging_on[0]:
            log.append("finalize " + self.name)


class ResurrectNode(Node):
    __slots__ = ()

    def __del__(self):
        if logging_on[0]:
            log.append("finalize " + self.name)
        saved.append(self)


class LegacyNode(Node):
    __slots__ = ()

    def __tp_del__(self):
        if logging_on[0]:
            log.append("del " + self.name)


if with_tp_del is not None:
    LegacyNode = with_tp_del(LegacyNode)

NODE_CLASSES = {
    "plain": Node,
    "finalizer": FinalizerNode,
    "resurrect": ResurrectNode,
    "legacy": LegacyNode,
}


# id(weak reference object) -> the name of the op that created it.  A dead
# object's id may be reused by a later one, which then overwrites the entry,
# so for a live object the entry is always right.  (The dict holds only ints
# and strs, so it is not even tracked.)
wnames = {}


def weakref_callback(w):
    if logging_on[0]:
        log.append("callback " + wnames[id(w)])


class ScenarioError(Exception):
    pass


# ---------------------------------------------------------------------------
# Parsing and static checking.  Every rule here can be checked before the
# scenario runs: what the scenario holds and which edges a held node has
# depend only on the ops, never on the collector.
# ---------------------------------------------------------------------------

USAGE = {
    "new": "new NAME [plain|finalizer|resurrect|legacy]",
    "edge": "edge FROM TO",
    "unedge": "unedge FROM TO",
    "weakref": "weakref W TARGET [callback]",
    "hold": "hold NAME W",
    "deref": "deref W",
    "refcount": "refcount NAME",
    "drop": "drop NAME",
    "dropweak": "dropweak W",
    "unsave": "unsave",
    "collect": "collect [0|1|2]",
    "debug": "debug saveall|none",
    "garbage": "garbage",
    "stats": "stats",
}
ARITY = {
    "new": (1, 2), "edge": (2, 2), "unedge": (2, 2), "weakref": (2, 3),
    "hold": (2, 2), "deref": (1, 1), "refcount": (1, 1), "drop": (1, 1),
    "dropweak": (1, 1), "unsave": (0, 0), "collect": (0, 1),
    "debug": (1, 1), "garbage": (0, 0), "stats": (0, 0),
}


def parse(data):
    """Return [(text, op, args)] for the scenario bytes, or raise
    ScenarioError((lineno, message))."""
    ops = []
    used = set()            # every name ever given, nodes and weakrefs
    node_names = set()      # every node name ever given
    held_nodes = set()
    held_wrefs = set()
    edges = {}              # (from, to) -> count, for held `from` nodes
    lines = data.split(b"\n")
    for lineno, raw in enumerate(lines, 1):
        cut = raw.find(b"#")
        if cut >= 0:
            raw = raw[:cut]
        raw = raw.strip(b" \t\r")
        if not raw:
            continue
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ScenarioError((lineno, "non-ASCII byte outside a comment"))
        if not re.fullmatch(r"[\x20-\x7e\t]*", text):
            raise ScenarioError((lineno, "control character outside a comment"))
        words = [w for w in re.split(r"[ \t]+", text) if w]
        op, args = words[0], words[1:]
        if op not in ARITY:
            raise ScenarioError((lineno, "unknown op '%s'" % op))
        lo, hi = ARITY[op]
        if not lo <= len(args) <= hi:
            raise ScenarioError((lineno, "usage: " + USAGE[op]))

        def err(message):
            return ScenarioError((lineno, message))

        def fresh(name):
            if not NAME_RE.match(name) or name in RESERVED:
                raise err("bad name '%s' (1 to 64 of A-Z a-z 0-9 _, not 'none')" % name)
            if name in used:
                raise err("name '%s' is already used" % name)
            used.add(name)

        def node(name):
            if name not in held_nodes:
                raise err("'%s' is not a node the scenario holds" % name)

        def wref(name):
            if name not in held_wrefs:
                raise err("'%s' is not a weak reference the scenario holds" % name)

        if op == "new":
            kind = args[1] if len(args) > 1 else "plain"
            if kind not in KINDS:
                raise err("usage: " + USAGE[op])
            fresh(args[0])
            node_names.add(args[0])
            held_nodes.add(args[0])
            args = [args[0], kind]
        elif op == "edge":
            node(args[0])
            node(args[1])
            key = (args[0], args[1])
            edges[key] = edges.get(key, 0) + 1
        elif op == "unedge":
            node(args[0])
            key = (args[0], args[1])
            if edges.get(key, 0) == 0:
                raise err("'%s' has no edge to '%s'" % key)
            edges[key] -= 1
        elif op == "weakref":
            if len(args) == 3 and args[2] != "callback":
                raise err("usage: " + USAGE[op])
            node(args[1])
            fresh(args[0])
            held_wrefs.add(args[0])
            args = [args[0], args[1], len(args) == 3]
        elif op == "hold":
            node(args[0])
            wref(args[1])
        elif op in ("deref", "dropweak"):
            wref(args[0])
            if op == "dropweak":
                held_wrefs.discard(args[0])
        elif op in ("refcount", "drop"):
            node(args[0])
            if op == "drop":
                held_nodes.discard(args[0])
        elif op == "collect":
            if args and args[0] not in ("0", "1", "2"):
                raise err("usage: " + USAGE[op])
            args = [int(args[0]) if args else 2]
        elif op == "debug":
            if args[0] not in ("saveall", "none"):
                raise err("usage: " + USAGE[op])
        ops.append((text, op, tuple(args)))
    return ops


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------

def label(obj):
    if isinstance(obj, Node):
        return obj.name
    if type(obj) is weakref.ref:
        return "weakref:" + wnames.get(id(obj), "?")
    return "?" + type(obj).__name__   # twin's own garbage: a twin bug


def stats_now():
    return [(s["collections"], s["collected"], s["uncollectable"])
            for s in gc.get_stats()]


def find_edge(frm, to_name):
    for i in range(len(frm)):
        item = frm[i]
        if isinstance(item, Node) and item.name == to_name:
            return i
    return -1


def run_op(op, args, results, base_stats, created):
    if op == "new":
        obj = NODE_CLASSES[args[1]]()
        obj.name = args[0]
        nodes[args[0]] = obj
        created.append(args[0])
        del obj
    elif op == "edge":
        nodes[args[0]].append(nodes[args[1]])
    elif op == "unedge":
        frm = nodes[args[0]]
        del frm[find_edge(frm, args[1])]
        del frm
    elif op == "weakref":
        target = nodes[args[1]]
        if args[2]:
            w = weakref.ref(target, weakref_callback)
        else:
            w = weakref.ref(target)
        del target
        # Without a callback CPython returns the target's existing
        # callback-less reference when it has one; only a new object (held
        # by `w` and getrefcount's argument alone) takes this op's name.
        if sys.getrefcount(w) == 2:
            wnames[id(w)] = args[0]
        wrefs[args[0]] = w
        created.append(args[0])
        del w
    elif op == "hold":
        nodes[args[0]].append(wrefs[args[1]])
    elif op == "deref":
        obj = wrefs[args[0]]()
        results.append("deref %s %s" % (args[0], "none" if obj is None else label(obj)))
        del obj
    elif op == "refcount":
        # getrefcount counts its own argument once.
        results.append("refcount %s %d" % (args[0], sys.getrefcount(nodes[args[0]]) - 1))
    elif op == "drop":
        del nodes[args[0]]
    elif op == "dropweak":
        del wrefs[args[0]]
    elif op == "unsave":
        saved.clear()
    elif op == "collect":
        results.append("collect %d" % gc.collect(args[0]))
    elif op == "debug":
        gc.set_debug(gc.DEBUG_SAVEALL if args[0] == "saveall" else 0)
    elif op == "garbage":
        names = [label(obj) for obj in gc.garbage]
        names.sort()
        results.append(" ".join(["garbage %d" % len(names)] + names))
        gc.garbage.clear()
    elif op == "stats":
        now = stats_now()
        for g in range(3):
            results.append("stats %d %d %d %d" % (
                g, now[g][0] - base_stats[g][0], now[g][1] - base_stats[g][1],
                now[g][2] - base_stats[g][2]))


def run_end(results, created):
    for name in created:
        if name in nodes:
            del nodes[name]
    for name in created:
        if name in wrefs:
            del wrefs[name]
    saved.clear()
    gc.set_debug(0)
    results.append("collect %d" % gc.collect())


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: twin.py FILE\n")
        return EXIT_PARSE
    path = argv[1]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.stderr.write("%s: %s\n" % (path, e.strerror))
        return EXIT_PARSE
    try:
        ops = parse(data)
    except ScenarioError as e:
        lineno, message = e.args[0]
        sys.stderr.write("%s:%d: %s\n" % (path, lineno, message))
        return EXIT_PARSE
    if with_tp_del is None and any(op == "new" and args[1] == "legacy"
                                   for _, op, args in ops):
        sys.stderr.write("%s: legacy nodes need _testcapi.with_tp_del, "
                         "which this Python lacks\n" % path)
        return EXIT_UNSUPPORTED

    out = sys.stdout
    results = []
    created = []
    # Everything so far is reachable or garbage of the imports; collect the
    # garbage, then freeze the rest so no collection of the scenario sees it.
    gc.collect()
    gc.collect()
    base_stats = stats_now()
    gc.freeze()

    for text, op, args in ops:
        run_op(op, args, results, base_stats, created)
        results.extend(log)
        log.clear()
        results.sort()
        out.write(text + " | " + "; ".join(results) + "\n")
        results.clear()
    run_end(results, created)
    results.extend(log)
    log.clear()
    results.sort()
    out.write("end | " + "; ".join(results) + "\n")
    logging_on[0] = False
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
