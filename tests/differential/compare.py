#!/usr/bin/env python3
"""Run scenarios on CPython (twin.py) and on rcgc (rcgc-scenario); diff.

    compare.py --runner BUILD/tests/rcgc-scenario [options] A B
    compare.py --runner ... --cases DIR
    compare.py --runner ... --minimize FILE

A B      the seeds A..B (both included) of gen.py, each at every --ops size
         in turn (seed s gets sizes[s % len(sizes)]).
--cases  every DIR/*.scn: against FILE.expected when that exists (the
         `legacy` cases, and invalid scenarios: then .expected holds the
         error message, with FILE for the path), against the twin otherwise.
--save   where a differing scenario is saved, with both outputs.
--minimize  shrink a differing scenario line by line, keeping it valid and
         differing, and print it.
--legacy generated scenarios include legacy nodes (needs _testcapi).
--jobs N parallel workers (default: the number of CPUs).
--mutate damage each generated scenario a little first (lines dropped,
         repeated, swapped, bytes and words changed): both runners must
         reject the same inputs with the same message, and run the rest alike.

The twin runs in a forked child of this process (an interpreter start per
scenario would cost more than the scenario); the child collects and freezes
everything it inherited before the scenario starts, as twin.py does when
started on its own.  Exit status 0 when everything agrees.
"""

import difflib
import multiprocessing
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen  # noqa: E402
import twin  # noqa: E402

OPTS = {"runner": None, "save": None, "ops": [30, 60, 100], "legacy": False,
        "jobs": os.cpu_count() or 1, "quiet": False}


def run_twin(path):
    """(status, stdout, stderr) of twin.main on path, in a forked child."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                status = twin.main(["twin.py", path])
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
            except BaseException:  # noqa: B902 - the child must never return
                import traceback
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(70)
        _, wstatus = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(wstatus)
        out.seek(0)
        err.seek(0)
        return status, out.read().decode("latin-1"), err.read().decode("latin-1")


def run_rcgc(path):
    import subprocess
    p = subprocess.run([OPTS["runner"], path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")


def describe(status, out, err):
    """The output, plus the exit status and stderr when the run failed (a
    successful run's stderr is rcgc's own shutdown report, not output)."""
    text = out
    if status != 0:
        text += "[exit status %d]\n" % status
    if err and status != 0:
        text += "".join("[stderr] " + l + "\n" for l in err.splitlines())
    return text


def differs(path, expected=None):
    """None when rcgc agrees with the twin (or with `expected`), otherwise
    (reference text, rcgc text, reference label)."""
    rs, ro, re_ = run_rcgc(path)
    if expected is not None:
        ref_label = "expected"
        ref = expected.replace("FILE", path)
        got = describe(rs, ro, re_ if rs != 0 else "")
        norm = lambda t: "\n".join(l.rstrip() for l in t.splitlines())  # noqa: E731
        if norm(ref) == norm(got):
            return None
        return ref, got, ref_label
    ts, to, te = run_twin(path)
    if ts == twin.EXIT_UNSUPPORTED:
        return ("[twin cannot run this scenario: %s]\n" % te.strip(),
                describe(rs, ro, re_), "twin")
    # The runners print nothing on stderr for a valid scenario, except what
    # rcgc's own debug output may add; compare stderr only on errors.
    if ts == rs and to == ro and (ts == 0 or te == re_):
        return None
    return describe(ts, to, te), describe(rs, ro, re_), "twin (CPython)"


def report(name, path, result):
    ref, got, label = result
    with open(path, "rb") as f:
        raw = f.read()
    scenario = raw.decode("latin-1")
    diff = "".join(difflib.unified_diff(
        ref.splitlines(True), got.splitlines(True), label, "rcgc"))
    text = "=== %s differs\n--- scenario\n%s--- diff\n%s" % (name, scenario, diff)
    if OPTS["save"]:
        os.makedirs(OPTS["save"], exist_ok=True)
        base = os.path.join(OPTS["save"], os.path.basename(name))
        with open(base + ".scn", "wb") as f:
            f.write(raw)
        with open(base + ".ref", "w") as f:
            f.write(ref)
        with open(base + ".rcgc", "w") as f:
            f.write(got)
        text += "--- saved as %s.scn (.ref, .rcgc)\n" % base
    return text


def check_seed(seed):
    sizes = OPTS["ops"]
    n = sizes[seed % len(sizes)]
    text = gen.generate(seed, n, OPTS["legacy"])
    fd, path = tempfile.mkstemp(prefix="seed-%d-" % seed, suffix=".scn")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        result = differs(path)
        if result is None:
            return seed, None
        return seed, report("seed-%d" % seed, path, result)
    finally:
        os.unlink(path)


def mutate(seed, text):
    """A damaged copy of a scenario: lines dropped, repeated, swapped,
    bytes changed, words replaced.  Most copies are invalid, and both
    runners must reject them with the same message; the rest must run the
    same."""
    import random
    rng = random.Random(seed)
    data = bytearray(text.encode())
    lines = data.split(b"\n")
    junk = [b"new", b"edge", b"unedge", b"weakref", b"hold", b"deref",
            b"refcount", b"drop", b"dropweak", b"unsave", b"collect", b"debug",
            b"garbage", b"stats", b"callback", b"none", b"saveall", b"legacy",
            b"n0", b"n1", b"w0", b"#", b"\t", b"\r", b"\x00", b"\xff", b"3",
            b"x" * 70]
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        i = rng.randrange(len(lines))
        k = rng.randrange(6)
        if k == 0:
            del lines[i]
        elif k == 1:
            lines.insert(i, lines[i])
        elif k == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif k == 3 and lines[i]:
            b = bytearray(lines[i])
            b[rng.randrange(len(b))] = rng.randrange(256)
            lines[i] = bytes(b)
        elif k == 4:
            words = lines[i].split(b" ")
            words[rng.randrange(len(words))] = rng.choice(junk)
            lines[i] = b" ".join(words)
        else:
            lines.insert(i, b" ".join(rng.choice(junk)
                                      for _ in range(rng.randint(1, 4))))
    return b"\n".join(lines)


def check_mutant(seed):
    text = gen.generate(seed, OPTS["ops"][seed % len(OPTS["ops"])], OPTS["legacy"])
    fd, path = tempfile.mkstemp(prefix="mutant-%d-" % seed, suffix=".scn")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(mutate(seed, text))
        result = differs(path)
        if result is None:
            return seed, None
        return seed, report("mutant-%d" % seed, path, result)
    finally:
        os.unlink(path)


def check_case(path):
    exp_path = path + ".expected"
    expected = None
    if os.path.exists(exp_path):
        with open(exp_path) as f:
            expected = f.read()
    result = differs(path, expected)
    notes = []
    if expected is not None and twin.with_tp_del is not None:
        # Hand-written expectations are checked against CPython too, when
        # this Python can give a class a legacy finalizer.
        ts, to, te = run_twin(path)
        ref = expected.replace("FILE", path)
        if "\n".join(l.rstrip() for l in describe(ts, to, te).splitlines()) != \
                "\n".join(l.rstrip() for l in ref.splitlines()):
            notes.append("=== %s: the .expected file disagrees with CPython "
                         "(_testcapi.with_tp_del):\n%s" % (path, "".join(
                             difflib.unified_diff(ref.splitlines(True),
                                                  describe(ts, to, te).splitlines(True),
                                                  "expected", "CPython"))))
    if result is not None:
        notes.append(report(os.path.basename(path)[:-4], path, result))
    return path, "\n".join(notes) or None


def minimize(path):
    with open(path) as f:
        lines = f.read().splitlines()
    if differs(path) is None:
        print("%s: no difference to minimize" % path)
        return 1
    fd, tmp = tempfile.mkstemp(suffix=".scn")
    os.close(fd)

    def still(candidate):
        with open(tmp, "w") as f:
            f.write("\n".join(candidate) + "\n")
        if run_twin(tmp)[0] != 0:
            return False
        return differs(tmp) is not None

    changed = True
    while changed:
        changed = False
        i = len(lines) - 1
        while i >= 0:
            candidate = lines[:i] + lines[i + 1:]
            if still(candidate):
                lines = candidate
                changed = True
            i -= 1
    lines = [l for l in lines if not l.lstrip().startswith("#")]
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(report("minimized", tmp, differs(tmp)))
    os.unlink(tmp)
    return 0


def main(argv):
    args = []
    cases = None
    mini = None
    it = iter(argv[1:])
    for a in it:
        if a == "--runner":
            OPTS["runner"] = next(it)
        elif a == "--save":
            OPTS["save"] = next(it)
        elif a == "--ops":
            OPTS["ops"] = [int(x) for x in next(it).split(",")]
        elif a == "--jobs":
            OPTS["jobs"] = max(1, int(next(it)))
        elif a == "--legacy":
            OPTS["legacy"] = True
        elif a == "--quiet":
            OPTS["quiet"] = True
        elif a == "--cases":
            cases = next(it)
        elif a == "--minimize":
            mini = next(it)
        elif a == "--mutate":
            OPTS["mutate"] = True
        else:
            args.append(a)
    if OPTS["runner"] is None or not (cases or mini or len(args) == 2):
        sys.stderr.write(__doc__)
        return 2
    OPTS["runner"] = os.path.abspath(OPTS["runner"])
    if OPTS["legacy"] and twin.with_tp_del is None:
        print("differential: skipped, this Python has no _testcapi.with_tp_del "
              "for legacy nodes")
        return 0
    if mini:
        return minimize(mini)
    if cases:
        work = sorted(os.path.join(cases, f) for f in os.listdir(cases)
                      if f.endswith(".scn"))
        fn = check_case
    else:
        work = list(range(int(args[0]), int(args[1]) + 1))
        fn = check_mutant if OPTS.get("mutate") else check_seed
    bad = 0
    with multiprocessing.get_context("fork").Pool(OPTS["jobs"]) as pool:
        for key, text in pool.imap(fn, work, chunksize=4):
            if text:
                bad += 1
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
    what = "cases in %s" % cases if cases else "seeds %s..%s" % tuple(args)
    print("differential: %d scenarios (%s), %d agree with %s, %d differ"
          % (len(work), what, len(work) - bad,
             "CPython or .expected" if cases else "CPython", bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
