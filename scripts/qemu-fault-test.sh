#!/usr/bin/env bash
# Boots the kernel once with `fault=<name>` (kernel/fault_inject.h) and checks that the fault was
# caught with its specific report and that the Heartwood halted cleanly: the panic report is
# complete, there is no nested panic, and QEMU left through isa-debug-exit with the panic code
# (37) -- not a triple fault/reset (-no-reboot makes that exit 0), a hang, or "NOT detected" (35).
#   scripts/qemu-fault-test.sh --elf <aethelos-test.elf> --fault <name> [--log <serial.log>]
#                              [--firmware bios|uefi] [--cpu qemu64] [--timeout 60]
#   scripts/qemu-fault-test.sh --list        the faults and the report each must produce
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# The guest's clock (scripts/qemu-clock-args.sh): virtual, from the instruction count.
clock_opts=()

# The report each fault must produce (extended regular expressions, all must match the serial log).
declare -A expect
expect[stack_overflow]='PANIC: Double Fault \(#DF, vector 8\) at rip 0x[0-9a-f]+; handled on the IST1 double-fault stack
KERNEL STACK OVERFLOW into the guard page of stack slot [0-9]+; thread .stack-overflow.'
expect[stack_smash]='PANIC: stack smashing detected
Called from 0x[0-9a-f]+  .*smash_own_frame'
expect[heap_overflow_1]='PANIC: Mana Pool: slab cache "kmalloc-64": red zone after the object overwritten \(detected at free\)
first bad byte at offset \+64: expected 0xcc, found 41'
expect[heap_overflow_32]='PANIC: Mana Pool: red zone after the object overwritten \(overflow\) in medium block
object 0x[0-9a-f]+ of 3000 bytes, detected at free: offset 3000, expected 0xcc, found 41 41'
expect[use_after_free]='PANIC: Mana Pool: slab cache "kmalloc-64": poison overwritten \(write after free\) \(detected at allocation\)
first bad byte at offset \+32: expected 0x6b, found 41'
expect[null_deref]='PANIC: Page Fault \(#PF, vector 14\) at rip 0x[0-9a-f]+: not-present page, read, kernel mode at address 0x0 \(error code 0x0\); a null pointer dereference
Backtrace of the interrupted code:'

elf=""; fault=""; log=""; firmware=bios; cpu=qemu64; timeout_s=60
while [ $# -gt 0 ]; do
  case "$1" in
    --elf) elf=$2; shift 2 ;;
    --fault) fault=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --list) for f in "${!expect[@]}"; do printf '%s\n%s\n\n' "$f" "${expect[$f]}"; done; exit 0 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    *) echo "qemu-fault-test: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -f "$elf" ] || { echo "qemu-fault-test: kernel '$elf' not found (--elf)" >&2; exit 2; }
[ -n "${expect[$fault]+set}" ] || { echo "qemu-fault-test: unknown fault '$fault' (--list shows them)" >&2; exit 2; }
[ -n "$log" ] || log="$here/build/logs/fault-$fault.log"
mkdir -p "$(dirname "$log")"
: > "$log"

work=$(mktemp -d /tmp/aethelos-fault.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/scripts/make-boot-iso.sh" "$elf" "$work/fault.iso" "fault=$fault" ||
  { echo "qemu-fault-test: could not make the ISO" >&2; exit 1; }

args=(-machine q35 -cpu "$cpu" -m 256M -cdrom "$work/fault.iso" -boot d -display none -no-reboot
      -serial "file:$log" -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04)
clock_text=$("$here/scripts/qemu-clock-args.sh" "${clock_opts[@]}") || exit 2
args+=($clock_text)
if [ "$firmware" = uefi ]; then
  ovmf=$("$here/scripts/find-ovmf.sh") || exit 1
  args+=(-bios "$ovmf")
fi
start=$(date +%s)
timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 "${args[@]}" </dev/null
rc=$?
elapsed=$(( $(date +%s) - start ))

fail() {
  echo "qemu-fault-test: FAIL $fault ($firmware, ${elapsed}s): $*"
  echo "---- last serial lines ($log) ----"
  tail -n 40 "$log"
  exit 1
}
# The serial log has CRLF line ends; the report is matched line by line.
text=$(tr -d '\r' < "$log")
grep -q "fault: provoking '$fault' on purpose" <<<"$text" || fail "the fault was never provoked"
case $rc in
  37) ;;                                    # (0x12 << 1) | 1: the panic path ran to its end
  35) fail "the fault went undetected (the kernel carried on)" ;;
  33) fail "the kernel reported success" ;;
  124|137) fail "timed out after ${timeout_s}s (hung instead of halting)" ;;
  0) fail "QEMU stopped without an exit code: triple fault or reset" ;;
  *) fail "QEMU exited with status $rc" ;;
esac
grep -q 'PANIC (while already panicking)' <<<"$text" && fail "the panic itself faulted"
grep -q '^The Heartwood has faltered and AethelOS cannot go on.$' <<<"$text" || fail "no complete panic report"
while IFS= read -r pattern; do
  [ -n "$pattern" ] || continue
  grep -Eq -- "$pattern" <<<"$text" || fail "the report lacks /$pattern/"
done <<<"${expect[$fault]}"
echo "qemu-fault-test: PASS $fault ($firmware, ${elapsed}s): $(grep -m1 '^PANIC: ' <<<"$text" | cut -c1-150)"
