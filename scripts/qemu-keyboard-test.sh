#!/usr/bin/env bash
# Types into the Eldarin shell on the PS/2 keyboard (QEMU monitor `sendkey`) and checks on the
# serial that the keys arrived decoded: Shift, Backspace, Enter, Up (history), Ctrl-C, Caps Lock,
# Left and Delete.
#   scripts/qemu-keyboard-test.sh --iso build/aethelos.iso --log build/logs/keyboard-bios.log [--firmware bios|uefi]
#                                 [--timeout 40] [--no-8042]
# QEMU runs headless: serial on stdio, the human monitor on a private unix socket. With --no-8042
# the machine has no keyboard controller: the boot must say so and the shell must still answer on
# serial. Exit 0 when every check passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The guest's clock (scripts/qemu-clock-args.sh): virtual, from the instruction count; idle time
# passes as real time (sleep=on), since the test talks to the guest at a person's pace.
clock_opts=(--sleep on)
iso=""; log=""; firmware=bios; timeout_s=40; machine=q35
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --no-8042) machine=q35,i8042=off; shift ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    *) echo "qemu-keyboard-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$iso" ] && [ -n "$log" ] || { echo "usage: $0 --iso <iso> --log <serial.log> [--firmware bios|uefi] [--timeout s]" >&2; exit 2; }
[ -f "$iso" ] || { echo "qemu-keyboard-test.sh: $iso not found" >&2; exit 1; }
mkdir -p "$(dirname "$log")"
sockdir=$(mktemp -d)
trap 'rm -rf "$sockdir"' EXIT
monitor="$sockdir/monitor.sock"

qemu=(qemu-system-x86_64 -machine "$machine" -cpu qemu64 -m 256M -cdrom "$iso" -boot d -display none -no-reboot
      -serial stdio -monitor "unix:$monitor,server=on,wait=off" -device isa-debug-exit,iobase=0xf4,iosize=0x04)
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
qemu+=($clock_text)
case "$firmware" in
  bios) ;;
  uefi) qemu+=(-bios "$("$here/scripts/find-ovmf.sh")") ;;
  *) echo "qemu-keyboard-test.sh: firmware must be bios or uefi" >&2; exit 2 ;;
esac

python3 - "$here/scripts" "$log" "$timeout_s" "$monitor" "$machine" "${qemu[@]}" <<'PY'
import re, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv.pop(1))
from aethelos_qemu import PROMPT, Qemu, report

log_path, timeout_s, monitor_path, machine, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
q = Qemu(cmd, log_path, timeout_s, monitor_path=monitor_path)
failures = []

def keys(names):
    # One key at a time, held 20 ms, with a pause so press and release reach the guest in order.
    for name in names:
        q.mon.send("sendkey %s 20" % name)
        time.sleep(0.06)
        q.mon.drain()
        q.pump(0)

def typed(text):
    names = []
    for c in text:
        if c == " ": names.append("spc")
        elif c == "-": names.append("minus")
        elif c.isupper(): names.append("shift-" + c.lower())
        else: names.append(c)
    return names

def check(what, reply, pattern, present=True):
    ok = (re.search(pattern, reply, re.M) is not None) == present
    print("%s  %-34s %s %r" % ("ok  " if ok else "FAIL", what, "expects" if present else "must not show", pattern))
    if not ok:
        failures.append((what, pattern, reply))

def line(what, names, expect=(), reject=()):
    start = len(q.buf)
    keys(names)
    reply = q.reply(start)
    for e in expect: check(what, reply, e)
    for e in reject: check(what, reply, e, present=False)

try:
    q.wait_for(PROMPT)
    print("shell prompt reached after %.1f s" % q.elapsed())
    q.open_monitor()
    time.sleep(0.2)
    q.mon.drain()
    boot = q.text(0)
    if "i8042=off" in machine:
        check("boot log", boot, r"ps/2 keyboard: no 8042 controller answered .*input continues on serial alone")
        check("serial: echo still heard", q.exchange("echo still heard"), r"^still heard\r?$")
        raise SystemExit
    check("boot log", boot, r"ps/2 keyboard ready")
    # Shift for capitals, a typo taken back with Backspace, Enter.
    line("echo Elms Listenx<BS>", typed("echo Elms Listenx") + ["backspace", "ret"], [r"^Elms Listen\r?$"])
    # Up recalls the line from history; Enter runs it again.
    line("<Up><Enter>", ["up", "ret"], [r"^Elms Listen\r?$"])
    # Ctrl-C drops a half-typed line; nothing runs.
    line("echo nope<Ctrl-C>", typed("echo nope") + ["ctrl-c"], [r"\^C"], [r"^nope\r?$"])
    # Caps Lock (the driver then sets the keyboard's LEDs; their ACKs must not turn into keys).
    line("echo <Caps>ab<Caps>c", typed("echo ") + ["caps_lock", "a", "b", "caps_lock", "c", "ret"], [r"^ABc\r?$"])
    # Punctuation with and without Shift, and Left/Delete editing: "a-b" then cursor
    # left twice, Delete the '-', giving "ab".
    line("echo a-b <Left><Left><Del>", typed("echo a-b") + ["left", "left", "delete", "ret"], [r"^ab\r?$"])
except SystemExit:
    pass
except Exception as e:  # timeouts, QEMU dying
    failures.append(("(driver)", str(e), q.tail()))
    print("FAIL  %s" % e)
finally:
    q.close()

report("keyboard", failures, log_path)
PY
