#!/usr/bin/env python3
"""Print what CPython's real tracemalloc module prints for each request.

The C tests (test_tmformat.c) write one request per line on stdin and
compare our C formatting, line by line, with what this prints.  Requests
(fields separated by tabs):

  size  VALUE SIGN                     _format_size(VALUE, SIGN)
  frame FILE LINE                      str(Frame) and repr(Frame)
  stat  FILE LINE SIZE COUNT           str(Statistic) of a 1-frame traceback
  diff  FILE LINE SIZE SDIFF COUNT CDIFF   str(StatisticDiff)
  trace FILE LINE SIZE                 str(Trace)
  tbfmt LIMIT MRF FILE LINE [FILE LINE...]  Traceback.format() lines joined by
                                       '|' (LIMIT "None" or an int, MRF 0/1;
                                       frames given most recent first)
"""
import sys
import tracemalloc

out = sys.stdout
for raw in sys.stdin:
    f = raw.rstrip("\n").split("\t")
    kind = f[0]
    if kind == "size":
        out.write(tracemalloc._format_size(int(f[1]), f[2] == "1") + "\n")
    elif kind == "frame":
        fr = tracemalloc.Frame((f[1], int(f[2])))
        out.write("%s\t%r\n" % (fr, fr))
    elif kind == "stat":
        tb = tracemalloc.Traceback(((f[1], int(f[2])),))
        out.write(str(tracemalloc.Statistic(tb, int(f[3]), int(f[4]))) + "\n")
    elif kind == "diff":
        tb = tracemalloc.Traceback(((f[1], int(f[2])),))
        out.write(str(tracemalloc.StatisticDiff(tb, int(f[3]), int(f[4]),
                                                int(f[5]), int(f[6]))) + "\n")
    elif kind == "trace":
        tr = tracemalloc.Trace((0, int(f[3]), ((f[1], int(f[2])),), 1))
        out.write(str(tr) + "\n")
    elif kind == "tbfmt":
        limit = None if f[1] == "None" else int(f[1])
        frames = tuple((f[i], int(f[i + 1])) for i in range(3, len(f), 2))
        tb = tracemalloc.Traceback(frames)
        out.write("|".join(tb.format(limit, f[2] == "1")) + "\n")
    else:
        out.write("?\n")
    out.flush()
