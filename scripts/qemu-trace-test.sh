#!/usr/bin/env bash
# The Loom of Fate's trace, end to end: boots the ISO, drives Eldarin over the serial line
# (`trace start`, `spawn hog 3 normal 2`, `rest 1500`, `trace stop`, `trace dump`), pulls the JSON
# out of the serial log with scripts/trace-extract and checks it: valid JSON, running slices for
# all three hogs, hogs preempting each other at interrupt exit. A second round with
# `preempt disable` checks the switch: no hog is then preempted by another hog.
#   scripts/qemu-trace-test.sh --iso build/aethelos.iso --log build/logs/trace-bios.log [--timeout 55]
# The extracted traces are kept next to the log (<log>.1.json, <log>.2.json).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The guest's clock (scripts/qemu-clock-args.sh): virtual, from the instruction count; idle time
# passes as real time (sleep=on), since the test talks to the guest at a person's pace.
clock_opts=(--sleep on)
iso=""; log=""; timeout_s=55
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    *) echo "qemu-trace-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$iso" ] && [ -n "$log" ] || { echo "usage: $0 --iso <iso> --log <serial.log> [--timeout s]" >&2; exit 2; }
[ -f "$iso" ] || { echo "qemu-trace-test.sh: $iso not found" >&2; exit 1; }
mkdir -p "$(dirname "$log")"

qemu=(qemu-system-x86_64 -machine q35 -cpu qemu64 -m 256M -cdrom "$iso" -boot d -display none -no-reboot
      -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
qemu+=($clock_text)

exec python3 - "$here/scripts" "$log" "$timeout_s" "$here/scripts/trace-extract" "${qemu[@]}" <<'PY'
import json, re, subprocess, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv.pop(1))
from aethelos_qemu import PROMPT, Qemu

log_path, timeout_s, extract, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
q = Qemu(cmd, log_path, timeout_s)
failures = []

def check(ok, what, detail=""):
    print("%s  %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append((what, detail))
    return ok

def run(command, expect=(), reject=()):
    reply = q.exchange(command)
    for e in expect:
        check(re.search(e, reply, re.M) is not None, "%-22s prints %r" % (command, e), reply[-1500:])
    for e in reject:
        check(re.search(e, reply, re.M) is None, "%-22s does not print %r" % (command, e), reply[-1500:])
    return reply

def extract_dump(index, out):
    # Through the real tool, on the log as written so far.
    r = subprocess.run([sys.executable, extract, log_path, "--index", str(index), "-o", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, "trace-extract --index %d" % index, r.stderr)
    if r.returncode != 0:
        return None
    with open(out) as f:
        return json.load(f)

def analyse(doc):
    events = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
    slices = [e for e in events if e.get("ph") == "X" and e.get("cat") == "running"]
    hogs = {tid for tid, name in names.items() if name.startswith("hog-")}
    ran = {e["tid"] for e in slices}
    # A hog taken off the CPU at interrupt exit in favour of another hog: time slicing among equals.
    hog_to_hog = [e for e in slices if e["tid"] in hogs and e["args"].get("next") in hogs
                  and e["args"].get("left") == "preempted at irq exit"]
    return names, slices, hogs, ran, hog_to_hog

try:
    q.wait_for(PROMPT)
    print("shell prompt reached after %.1f s" % q.elapsed())
    run("trace", [r"^usage: trace "])
    run("trace bogus", [r"^usage: trace "])
    run("preempt", [r"Timer preemption is on", r"switches +\d+"])

    # Round 1: preemption on.
    run("trace start", [r"^trace: recording the Loom of Fate's events \(\d+ held at most"])
    run("spawn hog 3 normal 2", [r"^spawned 3 'hog' thread\(s\) at Normal priority for 2 s"])
    run("rest 1500")
    run("trace stop", [r"^trace: stopped; \d+ events recorded"])
    t0 = time.monotonic()
    run("trace dump", [r"^trace: \d+ events \(\d+ running slices, \d+ irq slices\) as Chrome trace JSON"],
        [r"did not drain", r"dropped"])
    print("     dump 1 written in %.1f s" % (time.monotonic() - t0))
    doc = extract_dump(-1, log_path + ".1.json")
    if doc is not None:
        names, slices, hogs, ran, hog_to_hog = analyse(doc)
        check(len(hogs) == 3, "dump 1 names 3 hog threads (%s)" % sorted(names[t] for t in hogs))
        check(hogs <= ran, "dump 1 has running slices for every hog",
              "hogs %s, threads that ran %s" % (sorted(hogs), sorted(ran)))
        check(len(hog_to_hog) >= 10, "dump 1: hogs take turns at interrupt exit (%d times)" % len(hog_to_hog))
        ticks = [e for e in doc["traceEvents"] if e.get("name") == "tick"]
        check(len(ticks) >= 1000, "dump 1 holds the ticks (%d)" % len(ticks))
        ts = [e["ts"] for e in slices]
        check(ts == sorted(ts), "dump 1 running slices are in time order")
    run("rest 800")  # let round 1's hogs end

    # Round 2: preemption off. The shell (High) still runs between the keys it is typed.
    run("preempt disable", [r"Timer preemption is off"])
    run("trace start", [r"^trace: recording"])
    run("spawn hog 2 normal 1", [r"^spawned 2 'hog' thread"])
    run("rest 500")
    run("trace stop", [r"^trace: stopped"])
    run("preempt status", [r"Timer preemption is off", r"held back +[1-9]\d* switch requests"])
    run("preempt enable", [r"Timer preemption is on"])
    run("trace dump", [r"as Chrome trace JSON"], [r"did not drain", r"dropped"])
    doc = extract_dump(-1, log_path + ".2.json")
    if doc is not None:
        names, slices, hogs, ran, hog_to_hog = analyse(doc)
        new_hogs = {t for t in hogs if t in ran}
        check(len(new_hogs) >= 1, "dump 2 shows hogs running (%d)" % len(new_hogs))
        # Off, quantum expiries switch no more: a hog is preempted only for a more urgent thread
        # (the shell, woken by a key or its timer). The policy may then still hand the CPU to
        # another hog first if that one was boosted after starving 500 ms; such a handoff must
        # coincide with a wake-up of a non-hog thread (within a tick).
        wakes = [e["ts"] for e in doc["traceEvents"] if e.get("ph") == "i" and e.get("name") == "wake"
                 and e["tid"] not in hogs]
        unprovoked = [e for e in hog_to_hog
                      if not any(e["ts"] + e["dur"] - 1000.0 <= w <= e["ts"] + e["dur"] for w in wakes)]
        check(not unprovoked, "dump 2: with preemption off no hog is time-sliced out for another hog "
              "(%d of %d hog-to-hog handoffs without a wake-up)" % (len(unprovoked), len(hog_to_hog)),
              "\n".join(str(e) for e in unprovoked[:5]))
        hog_runs = [e["dur"] for e in slices if e["tid"] in hogs]
        check(max(hog_runs or [0]) >= 100000.0, "dump 2: a hog ran >= 100 ms without a switch while the shell "
              "rested (longest %.1f ms)" % (max(hog_runs or [0]) / 1000.0))
    run("trace dump", [r"as Chrome trace JSON"])  # again: the ring is kept
    r = subprocess.run([sys.executable, extract, log_path, "--list"], capture_output=True, text=True)
    check(r.returncode == 0 and len(r.stdout.strip().splitlines()) == 3, "trace-extract --list finds 3 dumps",
          r.stdout + r.stderr)
except Exception as e:  # timeouts, QEMU dying
    failures.append(("(driver)", "%s\n%s" % (e, q.tail())))
    print("FAIL  %s" % e)
finally:
    q.close()

elapsed = q.elapsed()
if failures:
    for what, detail in failures:
        print("---- %s:\n%s" % (what, detail))
    print("trace test FAILED (%d checks, %.1f s); serial log: %s" % (len(failures), elapsed, log_path))
    sys.exit(1)
print("trace test passed in %.1f s; serial log: %s" % (elapsed, log_path))
PY
