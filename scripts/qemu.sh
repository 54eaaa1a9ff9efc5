#!/usr/bin/env bash
# Boots an AethelOS ISO in QEMU for a person (run) or for gdb (debug).
#   scripts/qemu.sh [--iso build/aethelos.iso] [--firmware bios|uefi] [--memory 512M] [--debug]
#                   [--serial-log FILE] [-- extra qemu args]
# --serial-log also writes everything the serial console prints to FILE (for trace-extract, plot-memory).
# With a display (DISPLAY/WAYLAND_DISPLAY set) QEMU opens a window and the serial console
# stays in this terminal; headless (e.g. over SSH) only the serial console is used.
# Quit from the terminal with Ctrl-A then X (QEMU's monitor multiplexer).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
iso=$here/build/aethelos.iso; firmware=bios; memory=512M; debug=0; serial_log=; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --debug) debug=1; shift ;;
    --serial-log) serial_log=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "qemu.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -f "$iso" ] || { echo "qemu.sh: $iso not found (run 'make iso')" >&2; exit 1; }

args=(-machine q35 -m "$memory" -cdrom "$iso" -boot d -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04)
if [ -n "$serial_log" ]; then
  # The same stdio/monitor multiplexer as mon:stdio, with a copy of the output in the log.
  args+=(-chardev "stdio,id=console,mux=on,signal=off,logfile=$serial_log" -serial chardev:console -mon chardev=console)
  echo "AethelOS: serial output is also written to $serial_log"
else
  args+=(-serial mon:stdio)
fi
case "$firmware" in
  bios) ;;
  uefi) args+=(-bios "$("$here/scripts/find-ovmf.sh")") ;;
  *) echo "qemu.sh: firmware must be bios or uefi" >&2; exit 2 ;;
esac
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "AethelOS: QEMU window opened; serial console below. Quit: close the window or Ctrl-A X."
else
  args+=(-display none)
  echo "AethelOS: headless, serial console below. Quit: Ctrl-A then X."
fi
if [ $debug -eq 1 ]; then
  args+=(-s -S)
  echo "AethelOS: paused with gdbstub on localhost:1234; in another terminal: gdb -x build/aethelos.gdb"
fi
exec qemu-system-x86_64 "${args[@]}" "${extra[@]}"
