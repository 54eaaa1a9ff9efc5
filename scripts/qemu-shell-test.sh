#!/usr/bin/env bash
# Types commands into the Eldarin shell over the serial line and checks the replies.
#   scripts/qemu-shell-test.sh --iso build/aethelos.iso --log build/logs/shell-bios.log
#                              [--firmware bios|uefi] [--timeout 60] [--scenario full|shutdown|paste|run-image]
#                              [--machine q35]
#                              [--clock icount|real] [--shift N] [--sleep on|off] [-- extra qemu args]
# QEMU runs headless with the serial port on stdio; a small python3 driver waits for each
# `aethel> ` prompt, types one command (a few ms per byte, like a person, so the 16-byte UART
# FIFO never overflows between the shell's polls), and checks the output up to the next prompt.
# Scenario `full` (the default) goes through the commands (spawn/kill/top included) and ends with
# `shutdown`; `shutdown` only boots and types `shutdown`. Both require QEMU to exit by itself with
# status 0 within 15 s of `shutdown` (ACPI S5 works). Scenario `paste` writes a 1000-byte
# `echo` line and Enter in one go (far more than the 256-byte input ring and the 256-character
# line): the line must run with exactly its first 256 characters, one bell (BEL) per character
# past them, and the next command typed must run normally. Scenario `run-image` is for the image
# `make run` boots, which carries no diagnostics: `ktest`, `spawn` and `kill` of a thread must say
# so plainly, and the shell must carry on. `full` needs the test image (aethelos-test-shell.iso),
# since it spawns workloads and runs ktests. Exit 0 when every check passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The guest's clock (scripts/qemu-clock-args.sh): virtual, from the instruction count; idle time
# passes as real time (sleep=on), since the test types at a person's pace.
clock_opts=(--sleep on)
iso=""; log=""; firmware=bios; timeout_s=60; scenario=full; machine=q35; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "qemu-shell-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$iso" ] && [ -n "$log" ] || { echo "usage: $0 --iso <iso> --log <serial.log> [--firmware bios|uefi] [--timeout s] [--scenario full|shutdown|paste] [--machine q35|pc|...] [-- qemu args]" >&2; exit 2; }
case "$scenario" in full|shutdown|paste|run-image) ;; *) echo "qemu-shell-test.sh: scenario must be full, shutdown, paste or run-image" >&2; exit 2 ;; esac
[ -f "$iso" ] || { echo "qemu-shell-test.sh: $iso not found" >&2; exit 1; }
mkdir -p "$(dirname "$log")"

qemu=(qemu-system-x86_64 -machine "$machine" -cpu qemu64 -m 256M -cdrom "$iso" -boot d -display none -no-reboot
      -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
case "$firmware" in
  bios) ;;
  uefi) qemu+=(-bios "$("$here/scripts/find-ovmf.sh")") ;;
  *) echo "qemu-shell-test.sh: firmware must be bios or uefi" >&2; exit 2 ;;
esac
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
qemu+=($clock_text "${extra[@]}")

exec python3 - "$here/scripts" "$log" "$timeout_s" "$scenario" "${qemu[@]}" <<'PY'
import re, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv.pop(1))
from aethelos_qemu import PROMPT, Qemu, report

log_path, timeout_s, scenario, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
q = Qemu(cmd, log_path, timeout_s)
failures = []

def run(command, expect=(), reject=()):
    reply = q.exchange(command)
    for e in expect:
        ok = re.search(e, reply, re.M) is not None
        print("%s  %-22s expects %r" % ("ok  " if ok else "FAIL", command, e))
        if not ok:
            failures.append((command, e, reply))
    for e in reject:
        if re.search(e, reply, re.M):
            print("FAIL  %-22s must not print %r" % (command, e))
            failures.append((command, "not " + e, reply))
    return reply

def check(ok, command, what, reply):
    print("%s  %-22s %s" % ("ok  " if ok else "FAIL", command, what))
    if not ok:
        failures.append((command, what, reply))

# {name: id} of the rows of a `threads` table.
def thread_ids(reply):
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s*(\d+) (\S+)\s", reply, re.M)}

def stacks_in_use():
    m = re.search(r"kernel stacks: (\d+) in use", run("stats", [r"kernel stacks: \d+ in use"]))
    return int(m.group(1)) if m else -1

def shutdown():
    start = len(q.buf)
    q.type_text("shutdown\r")
    status = q.wait_exit(15)
    reply = q.text(start)
    check(re.search(r"Powering off through ACPI S5: PM1a_CNT port 0x[0-9a-f]+", reply) is not None,
          "shutdown", "reports the ACPI S5 plan", reply)
    check(re.search(r"The Heartwood goes to rest", reply) is not None, "shutdown", "says farewell", reply)
    check(status == 0, "shutdown", "QEMU exits by itself with status 0 (got %s)" % status, reply)

# A 1000-byte line and Enter written at once, as a terminal pastes: nothing may be lost but the
# characters past the line's 256, each answered by a bell, and the next command must run alone.
def paste():
    line_capacity, size = 256, 1000
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = "echo " + (pattern * (size // len(pattern) + 1))[:size - 5]
    start = len(q.buf)
    q.proc.stdin.write(text.encode() + b"\r")
    q.proc.stdin.flush()
    reply = q.reply(start)
    kept = text[:line_capacity]
    check(re.search(r"^%s\r?$" % re.escape(kept[5:]), reply, re.M) is not None, "paste",
          "runs the line with its first %d characters" % line_capacity, reply)
    bells = reply.count("\a")
    check(bells == size - line_capacity, "paste",
          "rings %d bells, one per character past the line (got %d)" % (size - line_capacity, bells), reply)
    run("echo after-paste", [r"^after-paste\r?$"], [r"unknown command"])

try:
    q.wait_for(PROMPT)
    print("shell prompt reached after %.1f s" % q.elapsed())
    if scenario == "shutdown":
        shutdown()
        raise SystemExit
    if scenario == "paste":
        paste()
        raise SystemExit
    if scenario == "run-image":
        absent = r"this image carries no diagnostics \(ktests, stress, workloads, faults\); they are in aethelos-test\.elf"
        run("help", [r"^  ktest ", r"^  spawn ", r"^  kill "])
        run("ktest", [r"^ktest: " + absent], [r"passed"])
        run("ktest boot.*", [r"^ktest: " + absent], [r"passed"])
        run("spawn hog 2 low 1", [r"^spawn: " + absent], [r"spawned"])
        ids = thread_ids(run("threads", [r"eldarin"]))
        run("kill %d" % ids.get("eldarin", 0), [r"is this shell; Eldarin will not silence itself"])
        others = [n for n in ids if n not in ("heartwood", "idle", "eldarin")]
        if others:
            run("kill %d" % ids[others[0]], [r"is not a workload; only threads started by spawn can be stopped, "
                                             r"and " + absent])
        run("echo still-here", [r"^still-here\r?$"])
        shutdown()
        raise SystemExit
    run("help", [r"^  help ", r"^  threads \(ps\) ", r"^  mem ", r"^  nice ", r"^  reboot ", r"^  kill ", r"^  top ",
                 r"^  shutdown "])
    run("threads", [r"eldarin", r"heartwood", r"idle"])
    run("ps", [r"eldarin"])
    run("mem", [r"buddyinfo", r"slabinfo", r"frag", r"watermarks", r"^  free  "])
    run("echo hi", [r"^hi\r?$"])
    run("echo \"two  words\" 'and more'", [r"^two  words and more\r?$"])
    run("thredas", [r"unknown command 'thredas'\. Did you mean 'threads'\?"])
    run("kil 3", [r"unknown command 'kil'\. Did you mean 'kill'\?"])
    run("shutdwon", [r"unknown command 'shutdwon'\. Did you mean 'shutdown'\?"])
    run("nice", [r"^usage: nice <id> "])
    run("nice 1 urgent", [r"^usage: nice <id> "])
    run("nice 99999 low", [r"no live thread with id 99999"])
    run("nice 1 low", [r"^thread 1 'heartwood': Normal -> Low"])
    run("help nice", [r"^usage: nice <id> "])
    run("uptime", [r"^up \d+:\d\d:\d\d\.\d\d\d \(\d+ ticks at \d+ Hz\)"])
    run("harmony", [r"^Harmony: ", r"Jain's fairness index"])
    run("rest", [r"^usage: rest <ms>"])
    run("rest 20", [], [r"usage"])
    run("echo \"open", [r"eldarin: unterminated quote"])
    run("ktest boot.*", [r"^ktest: [1-9]\d* passed, 0 failed"])
    run("quantum all 5", [r"^quantum: \d+ threads now get 5 ms \(\d+ ticks at \d+ Hz\)"])
    run("quantum", [r"^usage: quantum <id\|all> <ms>"])
    run("quantum all 0", [r"^usage: quantum "])
    run("spawn hog 2 low 1", [r"^spawned 2 'hog' thread\(s\) at Low priority for 1 s: ids \d+ \d+\r?$"])
    run("threads", [r"hog-1", r"hog-2"])
    run("spawn bogus", [r"unknown workload 'bogus'", r"^usage: spawn "])
    run("spawn hog 65", [r"^usage: spawn "])
    run("spawn churn 2 normal 1", [r"^spawned 2 'churn' thread"])
    run("spawn sleeper 2 high 1", [r"^spawned 2 'sleeper' thread"])
    run("spawn contend 3 normal 1", [r"^spawned 3 'contend' thread"])
    run("quantum 1 20", [r"^thread 1 'heartwood': quantum \d+ -> \d+ ticks \(20 ms at \d+ Hz\)"])
    run("rest 2000", [], [r"usage", r"workload '"])
    run("threads", [r"eldarin"], [r"hog-", r"churn-", r"sleeper-", r"contend-"])

    # kill: refusals first, by kind of thread.
    ids = thread_ids(run("threads", [r"eldarin"]))
    run("kill", [r"^usage: kill <id>"])
    run("kill seven", [r"^usage: kill <id>"])
    run("kill 99999", [r"^kill: no live thread with id 99999"])
    run("kill %d" % ids.get("heartwood", 1), [r"is the Heartwood itself; it cannot be stopped"])
    run("kill %d" % ids.get("idle", 0), [r"is the Loom's idle thread; it cannot be stopped"])
    run("kill %d" % ids.get("eldarin", 0), [r"is this shell; Eldarin will not silence itself"])
    others = [n for n in ids if n not in ("heartwood", "idle", "eldarin")]
    if others:
        run("kill %d" % ids[others[0]], [r"is not a workload; only threads started by spawn can be stopped"])

    # kill: every kind of workload, long-lived, stopped well before its time; its stack returns.
    stacks_before = stacks_in_use()
    spawned = []
    for kind, count, prio in (("hog", 2, "low"), ("churn", 1, "normal"), ("sleeper", 2, "high"),
                              ("contend", 3, "normal")):
        reply = run("spawn %s %d %s 120" % (kind, count, prio),
                    [r"^spawned %d '%s' thread\(s\) at \w+ priority for 120 s: ids" % (count, kind)])
        m = re.search(r": ids ([\d ]+)", reply)
        spawned += [int(x) for x in m.group(1).split()] if m else []
    check(len(spawned) == 8, "spawn", "listed 8 ids (got %s)" % spawned, "")
    names = {v: k for k, v in thread_ids(run("threads", [r"hog-", r"churn-", r"sleeper-", r"contend-"])).items()}
    check(all(i in names for i in spawned), "threads", "shows every spawned id", str(names))
    for tid in spawned:
        t0 = time.monotonic()
        run("kill %d" % tid, [r"^kill: thread %d '%s' has stopped \(within \d+ ms\); its stack is back in the Mana Pool"
                              % (tid, re.escape(names.get(tid, "?")))])
        print("      kill %d (%s) took %.2f s over serial" % (tid, names.get(tid, "?"), time.monotonic() - t0))
    after = thread_ids(run("threads", [r"eldarin"]))
    check(all(names.get(tid) not in after for tid in spawned), "threads", "no killed workload is left", str(after))
    check(stacks_in_use() == stacks_before, "stats", "kernel stacks in use back to %d" % stacks_before, "")
    run("kill %d" % spawned[0], [r"^kill: no live thread with id %d" % spawned[0]])

    # top: at least two refreshes, then one key ends it and is consumed.
    start = len(q.buf)
    q.type_text("top\r")
    first = q.wait_for(b"Eldarin top:", start)
    q.wait_for(b"Eldarin top:", first + 1)
    q.type_text("q")
    reply = q.reply(start)
    check("\x1b[H\x1b[J" in reply, "top", "redraws with cursor home + erase", reply)
    check(re.search(r"^\s+ID NAME", reply, re.M) is not None and "eldarin" in reply, "top", "shows the thread table",
          reply)
    run("echo after-top", [r"^after-top\r?$"])
    run("top now", [r"^usage: top"])
    run("shutdown now", [r"^usage: shutdown"])
    run("mem", [r"^  free  "])
    shutdown()
except SystemExit:
    pass
except Exception as e:  # timeouts, QEMU dying
    failures.append(("(driver)", str(e), q.tail()))
    print("FAIL  %s" % e)
finally:
    q.close()

report("shell", failures, log_path)
PY
