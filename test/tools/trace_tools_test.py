#!/usr/bin/env python3
"""Checks scripts/trace-extract and scripts/plot-trace on synthetic input (ctest tools:trace-scripts).

usage: trace_tools_test.py <scripts dir>
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

scripts = sys.argv[1]
extract = os.path.join(scripts, "trace-extract")
plot = os.path.join(scripts, "plot-trace")
failures = []


def check(ok, what, detail=""):
    print("%s  %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append("%s\n%s" % (what, detail))


def trace(names, slices):
    events = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": n}} for tid, n in names.items()]
    for tid, ts, dur in slices:
        events.append({"name": names[tid], "ph": "X", "pid": 1, "tid": tid, "ts": ts, "dur": dur,
                       "cat": "running", "args": {"left": "yield"}})
    return {"displayTimeUnit": "ns", "traceEvents": events}


def dump(doc):
    body = json.dumps(doc, indent=0)
    return "--- aethelos trace begin ---\n" + body + "\n--- aethelos trace end ---\n"


def run(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True)


with tempfile.TemporaryDirectory() as work:
    first = trace({1: "heartwood", 2: "a \"quoted\" name"}, [(1, 1000.0, 500.5), (2, 2000.0, 250.0)])
    second = trace({5: "hog-1", 6: "hog-2"}, [(5, 5000.0, 10.0), (6, 5010.0, 10.0), (5, 5020.0, 10.0)])
    log = os.path.join(work, "serial.log")
    with open(log, "wb") as f:  # CRLF line ends and shell chatter around the dumps, like COM1
        text = "aethel> trace dump\n" + dump(first) + "trace: 2 events\naethel> trace dump\n" + dump(second) \
            + "aethel> trace dump\n--- aethelos trace begin ---\n{\"traceEvents\":[\n"
        f.write(text.replace("\n", "\r\n").encode())

    out = os.path.join(work, "t.json")
    r = run(extract, log, "-o", out)
    check(r.returncode != 0 and "no '--- aethelos trace end ---' line" in r.stderr,
          "the last dump is cut off: clear error", r.stderr)
    r = run(extract, log, "--index", "1", "-o", out)
    check(r.returncode == 0 and json.load(open(out)) == second, "--index 1 gives the second dump", r.stderr)
    r = run(extract, log, "--index", "0", "-o", out)
    check(r.returncode == 0 and json.load(open(out)) == first, "--index 0 gives the first (CRLF removed)", r.stderr)
    r = run(extract, log, "--index", "7", "-o", out)
    check(r.returncode == 1 and "there is no dump 7" in r.stderr, "--index out of range: clear error", r.stderr)
    r = run(extract, log, "--list")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 3 and "incomplete" in r.stdout, "--list", r.stdout)
    r = run(extract, "--help")
    check(r.returncode == 0 and "--index" in r.stdout, "--help")

    empty = os.path.join(work, "empty.log")
    with open(empty, "w") as f:
        f.write("Heartwood awakens\r\naethel> help\r\n")
    r = run(extract, empty, "-o", out)
    check(r.returncode == 1 and "no trace in" in r.stderr and "trace dump" in r.stderr,
          "no markers: clear error", r.stderr)

    broken = os.path.join(work, "broken.log")
    with open(broken, "w") as f:
        f.write(dump(first).replace('"traceEvents"', '"traceEvents" [oops'))
    r = run(extract, broken, "-o", out)
    check(r.returncode == 1 and "not valid JSON" in r.stderr, "invalid JSON between the markers: clear error", r.stderr)

    if shutil.which("gnuplot"):
        png = os.path.join(work, "t.png")
        r = run(extract, log, "--index", "0", "-o", out)
        r = run(plot, out, "-o", png)
        ok = r.returncode == 0 and os.path.exists(png) and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        check(ok, "plot-trace draws a PNG", r.stderr)
        r = run(plot, log, "-o", png)  # straight from a serial log: its last complete dump
        check(r.returncode == 0 and "2 threads" in r.stderr, "plot-trace reads a serial log (its last complete dump)", r.stderr)
        r = run(plot, empty, "-o", png)
        check(r.returncode == 1 and "neither trace JSON" in r.stderr, "plot-trace: no trace: clear error", r.stderr)
    else:
        print("skip  plot-trace (no gnuplot)")

if failures:
    print("\n%d trace tool checks FAILED:\n%s" % (len(failures), "\n".join(failures)))
    sys.exit(1)
print("trace tools: all checks passed")
