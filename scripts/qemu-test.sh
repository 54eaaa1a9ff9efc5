#!/usr/bin/env bash
# Runs a ktest ISO headless under QEMU and judges the result; used by ctest.
#   scripts/qemu-test.sh --iso <iso> --log <serial.log> [--firmware bios|uefi] [--timeout 240]
#                        [--memory 256M] [--cpu qemu64] [--clock icount|real] [--shift N]
#                        [--sleep on|off] [--singlestep] [-- extra qemu args]
# The guest's clock is virtual, from the instruction count, unless --clock real is given
# (scripts/qemu-clock-args.sh): ticks then measure guest work, not the host's load.
# Passes only when the guest reports "N passed, 0 failed" (N > 0) and leaves through
# isa-debug-exit with the pass code. A failed test, a panic, a triple fault (-no-reboot
# turns it into an exit), or a timeout fail, and the serial log's tail is printed.
# A firmware crash (OVMF's "!!!! X64 Exception" dump) or GRUB failing to load the kernel is
# caught as soon as it appears.
# The usable RAM the kernel reports ("Mana Pool: N MiB usable", log level info) must lie between 7/8 of
# --memory and --memory: the firmware's map has to reflect the machine QEMU was given.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
iso=""; log=""; firmware=bios; timeout_s=240; memory=256M; cpu=qemu64; extra=(); clock_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "qemu-test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -f "$iso" ] || { echo "qemu-test: ISO '$iso' not found" >&2; exit 1; }
[ -n "$log" ] || { echo "qemu-test: --log is required" >&2; exit 2; }
mkdir -p "$(dirname "$log")"
: > "$log"

args=(-machine q35 -cpu "$cpu" -m "$memory" -cdrom "$iso" -boot d -display none -no-reboot
      -serial "file:$log" -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
clock_args=($clock_text)
clock_desc=${clock_text:-real time}
clock_desc=${clock_desc//$'\n'/ }
args+=("${clock_args[@]}")
if [ "$firmware" = uefi ]; then
  ovmf=$("$here/scripts/find-ovmf.sh") || exit 1
  args+=(-bios "$ovmf")
fi

# --memory as MiB (QEMU's suffixes; a bare number is MiB too).
case "$memory" in
  *[Gg]) memory_mib=$(( ${memory%[Gg]} * 1024 )) ;;
  *[Mm]) memory_mib=${memory%[Mm]} ;;
  *[Tt]) memory_mib=$(( ${memory%[Tt]} * 1024 * 1024 )) ;;
  *) memory_mib=$memory ;;
esac
[[ "$memory_mib" =~ ^[0-9]+$ ]] || { echo "qemu-test: cannot read --memory '$memory' (use e.g. 512M or 8G)" >&2; exit 2; }

start=$(date +%s)
timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 "${args[@]}" "${extra[@]}" </dev/null &
qemu_pid=$!
# Failures before the kernel runs would otherwise sit until the timeout (GRUB waits at its menu).
early_failure=""
while kill -0 "$qemu_pid" 2>/dev/null; do
  if grep -aq '^!!!! X64 Exception Type' "$log"; then
    early_failure="the firmware crashed before the kernel ran"
  elif grep -aq 'you need to load the kernel first\|Failed to boot both default and fallback' "$log"; then
    early_failure="GRUB could not load the kernel: $(grep -aoE 'error: [^[:cntrl:]]*' "$log" | head -n 1 | cut -c1-120)"
  fi
  if [ -n "$early_failure" ]; then
    kill "$qemu_pid" 2>/dev/null
    break
  fi
  sleep 1
done
wait "$qemu_pid"
rc=$?
elapsed=$(( $(date +%s) - start ))

fail() {
  echo "qemu-test: FAIL ($firmware, -m $memory, -cpu $cpu, $clock_desc, ${elapsed}s): $*"
  echo "---- last serial lines ($log) ----"
  tail -n 40 "$log"
  exit 1
}
summary=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
[ -n "$early_failure" ] && fail "$early_failure"
grep -aq 'PANIC' "$log" && fail "the kernel panicked"
case $rc in
  33) ;;                                    # (0x10 << 1) | 1: pass
  35) fail "in-kernel tests failed: ${summary:-no summary line}" ;;
  37) fail "the kernel panicked (exit code 0x12)" ;;
  124|137) fail "timed out after ${timeout_s}s" ;;
  0) fail "QEMU stopped without an exit code: triple fault or reset (-no-reboot)" ;;
  *) fail "QEMU exited with status $rc" ;;
esac
[ -n "$summary" ] || fail "no 'N passed, N failed' line"
passed=${summary%% passed*}
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) failed.*/\1/')
[ "$failed" = 0 ] && [ "$passed" -gt 0 ] || fail "summary '$summary'"
# Printed at log level info; a quieter boot (log=warn) leaves the figure out and is not judged on it.
usable_mib=$(grep -aoE 'Mana Pool: [0-9]+ MiB usable' "$log" | head -n 1 | grep -oE '[0-9]+')
if [ -n "$usable_mib" ]; then
  [ "$usable_mib" -le "$memory_mib" ] && [ $(( usable_mib * 8 )) -ge $(( memory_mib * 7 )) ] ||
    fail "the kernel saw $usable_mib MiB usable with -m $memory"
  usable="$usable_mib MiB usable"
else
  usable="usable RAM not logged, not checked"
fi
echo "qemu-test: PASS ($firmware, -m $memory, -cpu $cpu, $clock_desc, ${elapsed}s): $summary; $usable"
