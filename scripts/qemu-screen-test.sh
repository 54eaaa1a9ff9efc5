#!/usr/bin/env bash
# Boots an ISO and reads the framebuffer console off a QEMU screendump.
#   scripts/qemu-screen-test.sh --iso build/aethelos.iso --font /usr/share/grub/ascii.pf2
#       --png build/logs/screen-uefi.png --log build/logs/screen-uefi.log [--timeout 55]
#       [--firmware uefi|bios] [--elf build/kernel/aethelos.elf]
# Under OVMF our ISO gets the framebuffer the kernel asks for. Under SeaBIOS our grub.cfg keeps
# VGA text, so a BIOS run boots --elf from a hand-written entry holding only the `multiboot2`
# line (scripts/make-boot-iso.sh --plain-entry), where GRUB hands over a VBE framebuffer.
# QEMU runs headless with the serial port on a pipe and its monitor on a unix socket. Once
# the shell's `aethel> ` prompt has reached the serial line, the monitor's `screendump`
# takes the screen (a PPM; QEMU 7.2's monitor has no PNG option), kept as --png with the
# text read from it next to it (<png>.txt). scripts/check-screen.py must then find the
# banner, the level words in their colour and the prompt on the last line, drawn with the
# kernel's own font. Two negative controls follow: the checker must refuse a black screen
# of the same size and the same screenshot mirrored. Exit 0 when all of that holds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The guest's clock (scripts/qemu-clock-args.sh): virtual, from the instruction count; idle time
# passes as real time (sleep=on), since the test talks to the guest at a person's pace.
clock_opts=(--sleep on)
iso=""; elf=""; log=""; png=""; font=/usr/share/grub/ascii.pf2; timeout_s=55; firmware=uefi
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --png) png=$2; shift 2 ;;
    --font) font=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --elf) elf=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    *) echo "qemu-screen-test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
{ [ -n "$iso" ] || [ -n "$elf" ]; } && [ -n "$log" ] && [ -n "$png" ] ||
  { echo "usage: $0 --iso <iso>|--elf <kernel.elf> --log <serial.log> --png <screen.png> [--firmware uefi|bios] [--font <pf2>] [--timeout s]" >&2; exit 2; }
[ -f "$font" ] || { echo "qemu-screen-test.sh: font $font not found (grub-common)" >&2; exit 1; }
mkdir -p "$(dirname "$log")" "$(dirname "$png")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "$elf" ]; then
  iso="$work/plain.iso"
  "$here/scripts/make-boot-iso.sh" --plain-entry "$elf" "$iso" > "$work/iso.log" 2>&1 ||
    { cat "$work/iso.log" >&2; echo "qemu-screen-test.sh: cannot build the ISO" >&2; exit 1; }
fi
[ -f "$iso" ] || { echo "qemu-screen-test.sh: $iso not found" >&2; exit 1; }
case "$firmware" in
  uefi) firmware_args=(-bios "$("$here/scripts/find-ovmf.sh")") ;;
  bios) # our grub.cfg keeps VGA text on BIOS, drawn by QEMU in the VGA's own font: not this test's
    [ -n "$elf" ] || { echo "qemu-screen-test.sh: a BIOS run needs --elf (booted from a plain entry)" >&2; exit 2; }
    firmware_args=() ;;
  *) echo "qemu-screen-test.sh: firmware must be uefi or bios" >&2; exit 2 ;;
esac

qemu=(qemu-system-x86_64 -machine q35 -cpu qemu64 -m 256M -cdrom "$iso" -boot d -no-reboot "${firmware_args[@]}"
      -display none -serial stdio -monitor "unix:$work/monitor.sock,server,nowait"
      -device isa-debug-exit,iobase=0xf4,iosize=0x04)
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
qemu+=($clock_text)

exec python3 - "$here/scripts" "$log" "$timeout_s" "$work" "$png" "$font" "$here/scripts/check-screen.py" "${qemu[@]}" <<'PY'
import os, subprocess, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv.pop(1))
from aethelos_qemu import PROMPT, Qemu

log_path, timeout_s, work, png, font, checker = sys.argv[1:7]
cmd = sys.argv[7:]
timeout_s = float(timeout_s)
BANNER = "AethelOS - the Heartwood stirs;"
ppm = os.path.join(work, "screen.ppm")
q = Qemu(cmd, log_path, timeout_s, stdin=False, monitor_path=os.path.join(work, "monitor.sock"))

def check(image, extra):
    args = [sys.executable, checker, image, "--font", font] + extra
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

ok = False
try:
    while PROMPT not in q.buf:
        if time.monotonic() > q.deadline:
            raise TimeoutError("no %r on the serial line within %.0f s" % (PROMPT, timeout_s))
        q.pump(0.1)
    t_prompt = q.elapsed()
    print("shell prompt on serial after %.1f s" % t_prompt)
    # The screen is drawn right after the serial line (sinks run in order); give the guest a moment.
    time.sleep(0.5)
    expectations = ["--expect", BANNER, "--expect", "Eldarin listens.", "--prompt", "aethel> ",
                    "--expect-colour", "info=00aa00", "--text-out", png + ".txt"]
    for attempt in range(3):
        t_dump = time.monotonic()
        if os.path.exists(ppm):
            os.unlink(ppm)
        q.monitor("screendump " + ppm)
        if not os.path.exists(ppm):
            raise RuntimeError("screendump wrote no file")
        t_check = time.monotonic()
        result = check(ppm, expectations + ["--save-png", png])
        print(result.stdout, end="")
        print("screendump %.1f s, check %.1f s" % (t_check - t_dump, time.monotonic() - t_check))
        if result.returncode == 0:
            ok = True
            break
        if time.monotonic() + 5 > q.deadline:
            break
        time.sleep(1.0)  # maybe caught the screen mid-update: look again
    q.monitor("quit")
finally:
    q.close()

if not ok:
    print("screen test FAILED; screenshot %s, serial log %s" % (png, log_path))
    sys.exit(1)

# Negative controls: the checker has to be able to say no.
with open(ppm, "rb") as f:
    data = f.read()
# P6 header is three fields then one whitespace byte; the PPMs QEMU writes have no comments.
parts = data.split(b"\n", 3)
width, height = map(int, parts[1].split())
pixels = parts[3]
black = os.path.join(work, "black.ppm")
with open(black, "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (width, height) + bytes(len(pixels)))
mirrored = os.path.join(work, "mirrored.ppm")
rows = [pixels[y * width * 3:(y + 1) * width * 3] for y in range(height)]
with open(mirrored, "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (width, height))
    for row in rows:
        f.write(b"".join(row[x * 3:x * 3 + 3] for x in range(width - 1, -1, -1)))
for name, image in (("black screen", black), ("mirrored screenshot", mirrored)):
    result = check(image, ["--expect", BANNER, "--prompt", "aethel> "])
    if result.returncode == 0:
        print("FAIL  the checker accepted the %s:\n%s" % (name, result.stdout))
        sys.exit(1)
    print("ok    the checker refuses the %s" % name)
print("screen test passed in %.1f s; screenshot %s, serial log %s" % (q.elapsed(), png, log_path))
PY
