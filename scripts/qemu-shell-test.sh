#!/usr/bin/env bash
# Types commands into the Eldarin shell over the serial line and checks the replies.
#   scripts/qemu-shell-test.sh --iso build/aethelos.iso --log build/logs/shell-bios.log [--firmware bios|uefi] [--timeout 60]
# QEMU runs headless with the serial port on stdio; a small python3 driver waits for each
# `aethel> ` prompt, types one command (a few ms per byte, like a person, so the 16-byte UART
# FIFO never overflows between the shell's polls), and checks the output up to the next prompt.
# QEMU is killed after the checks. Exit 0 when every check passed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
iso=""; log=""; firmware=bios; timeout_s=60
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    *) echo "qemu-shell-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$iso" ] && [ -n "$log" ] || { echo "usage: $0 --iso <iso> --log <serial.log> [--firmware bios|uefi] [--timeout s]" >&2; exit 2; }
[ -f "$iso" ] || { echo "qemu-shell-test.sh: $iso not found" >&2; exit 1; }
mkdir -p "$(dirname "$log")"

qemu=(qemu-system-x86_64 -machine q35 -cpu qemu64 -m 256M -cdrom "$iso" -boot d -display none -no-reboot
      -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
case "$firmware" in
  bios) ;;
  uefi) qemu+=(-bios "$("$here/scripts/find-ovmf.sh")") ;;
  *) echo "qemu-shell-test.sh: firmware must be bios or uefi" >&2; exit 2 ;;
esac

exec python3 - "$log" "$timeout_s" "${qemu[@]}" <<'PY'
import os, re, select, subprocess, sys, time

log_path, timeout_s, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
deadline = time.monotonic() + timeout_s
PROMPT = b"aethel> "
proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
buf = bytearray()
log = open(log_path, "wb")
failures = []

def pump(wait):
    r, _, _ = select.select([proc.stdout], [], [], wait)
    if r:
        data = os.read(proc.stdout.fileno(), 65536)
        if not data:
            raise RuntimeError("QEMU exited (status %s)" % proc.poll())
        buf.extend(data)
        log.write(data); log.flush()

def wait_for(token, start):
    while True:
        i = buf.find(token, start)
        if i >= 0:
            return i
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for %r" % token)
        pump(0.05)

def run(command, expect=(), reject=()):
    start = len(buf)
    for ch in (command + "\r").encode():
        proc.stdin.write(bytes([ch])); proc.stdin.flush()
        time.sleep(0.005)
        pump(0)
    end = wait_for(PROMPT, start)
    reply = buf[start:end].decode("utf-8", "replace")
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

try:
    wait_for(PROMPT, 0)
    print("shell prompt reached after %.1f s" % (timeout_s - (deadline - time.monotonic())))
    run("help", [r"^  help ", r"^  threads \(ps\) ", r"^  mem ", r"^  nice ", r"^  reboot "])
    run("threads", [r"eldarin", r"heartwood", r"idle"])
    run("ps", [r"eldarin"])
    run("mem", [r"buddyinfo", r"slabinfo", r"frag", r"watermarks"])
    run("echo hi", [r"^hi\r?$"])
    run("echo \"two  words\" 'and more'", [r"^two  words and more\r?$"])
    run("thredas", [r"unknown command 'thredas'\. Did you mean 'threads'\?"])
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
    run("spawn hog 2 low 1", [r"^spawned 2 'hog' thread\(s\) at Low priority for 1 s"])
    run("threads", [r"hog-1", r"hog-2"])
    run("spawn bogus", [r"unknown workload 'bogus'", r"^usage: spawn "])
    run("spawn hog 65", [r"^usage: spawn "])
    run("spawn churn 2 normal 1", [r"^spawned 2 'churn' thread"])
    run("spawn sleeper 2 high 1", [r"^spawned 2 'sleeper' thread"])
    run("spawn contend 3 normal 1", [r"^spawned 3 'contend' thread"])
    run("quantum 1 20", [r"^thread 1 'heartwood': quantum \d+ -> \d+ ticks \(20 ms at \d+ Hz\)"])
    run("rest 2000", [], [r"usage", r"workload '"])
    run("threads", [r"eldarin"], [r"hog-", r"churn-", r"sleeper-", r"contend-"])
except Exception as e:  # timeouts, QEMU dying
    failures.append(("(driver)", str(e), buf[-2000:].decode("utf-8", "replace")))
    print("FAIL  %s" % e)
finally:
    proc.kill()
    proc.wait()
    log.close()

if failures:
    for command, expected, reply in failures:
        print("---- %s: expected %s; got:\n%s" % (command, expected, reply))
    print("shell test FAILED (%d checks); serial log: %s" % (len(failures), log_path))
    sys.exit(1)
print("shell test passed; serial log: %s" % log_path)
PY
