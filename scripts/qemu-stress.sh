#!/usr/bin/env bash
# Boots the kernel with `stress=<seconds>` under QEMU and judges it like the ktests; used by ctest.
#   scripts/qemu-stress.sh [--elf build/kernel/aethelos-test.elf] [--seconds 20] [--firmware bios|uefi]
#                          [--log <serial.log>] [--timeout <s>] [--hz 1000]
#                          [--clock icount|real] [--shift N] [--sleep on|off] [--singlestep]
# The clock options go to scripts/qemu-clock-args.sh: by default the guest's clock is virtual,
# so `stress=<seconds>` counts seconds of guest work, not of the host's clock.
# Builds a temporary ISO (scripts/make-boot-iso.sh) and hands it to
# scripts/qemu-test.sh, which passes only on "1 passed, 0 failed" and the isa-debug-exit pass
# code; the stress run prints "stress: PASS ..." or "stress: FAIL <reason>" before that summary.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
elf="$here/build/kernel/aethelos-test.elf"; seconds=20; firmware=bios; log=""; timeout_s=""; hz=1000; clock_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --elf) elf=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --hz) hz=$2; shift 2 ;;
    --clock|--shift|--sleep) clock_opts+=("$1" "$2"); shift 2 ;;
    --singlestep) clock_opts+=("$1"); shift ;;
    *) echo "qemu-stress: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -f "$elf" ] || { echo "qemu-stress: kernel '$elf' not found (run: cmake --build build)" >&2; exit 1; }
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "qemu-stress: --seconds must be > 0" >&2; exit 2; }
[ -n "$log" ] || log="$here/build/logs/stress-$firmware.log"
# Boot and wind-down take a few seconds; TCG on a busy machine is slower than real time.
[ -n "$timeout_s" ] || timeout_s=$(( seconds * 3 + 60 ))

work=$(mktemp -d /tmp/aethelos-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT
# make-boot-iso.sh keeps grub-mkrescue's log inside the ISO root, and on a busy host xorriso may
# refuse that file as it grows ("MISHAP"); retried until make-boot-iso.sh writes the log elsewhere.
for attempt in 1 2 3; do
  "$here/scripts/make-boot-iso.sh" "$elf" "$work/stress.iso" stress=$seconds hz=$hz log=info > "$work/iso.log" 2>&1 && break
  [ "$attempt" = 3 ] && { cat "$work/iso.log" >&2; echo "qemu-stress: cannot build the ISO" >&2; exit 1; }
done

set +e
"$here/scripts/qemu-test.sh" --iso "$work/stress.iso" --firmware "$firmware" --log "$log" --timeout "$timeout_s" \
    "${clock_opts[@]}"
rc=$?
set -e
grep -a '^stress: \(PASS\|FAIL\)' "$log" | tail -n 1 || true
exit $rc
