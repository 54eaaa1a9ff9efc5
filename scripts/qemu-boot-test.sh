#!/usr/bin/env bash
# Boots a kernel ELF with a given command line from a temporary ISO and judges the run like the
# ktest ISO (scripts/qemu-test.sh); used by ctest for boots the prebuilt ISOs do not cover.
#   scripts/qemu-boot-test.sh --elf build/kernel/aethelos-test.elf --cmdline "ktest=sched.*" [--plain-entry]
#                             [any scripts/qemu-test.sh option but --iso]
# --plain-entry boots from a hand-written GRUB entry holding only the `multiboot2` line
# (scripts/make-boot-iso.sh): the kernel must not depend on our grub.cfg.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
elf=""; cmdline=""; iso_opts=(); pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --elf) elf=$2; shift 2 ;;
    --cmdline) cmdline=$2; shift 2 ;;
    --plain-entry) iso_opts+=(--plain-entry); shift ;;
    --iso) echo "qemu-boot-test: --iso is made here from --elf" >&2; exit 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
[ -f "$elf" ] || { echo "qemu-boot-test: kernel '$elf' not found (run: cmake --build build)" >&2; exit 1; }
[ -n "$cmdline" ] || { echo "qemu-boot-test: --cmdline is required" >&2; exit 2; }
work=$(mktemp -d /tmp/aethelos-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT
# $cmdline is split into words on purpose (each becomes one word of the kernel command line),
# without globbing: `ktest=sched.*` must reach the kernel as written.
set -f
# shellcheck disable=SC2086
"$here/scripts/make-boot-iso.sh" "${iso_opts[@]}" "$elf" "$work/boot.iso" $cmdline > "$work/iso.log" 2>&1 ||
  { cat "$work/iso.log" >&2; echo "qemu-boot-test: cannot build the ISO" >&2; exit 1; }
set +f
set +e
"$here/scripts/qemu-test.sh" --iso "$work/boot.iso" "${pass[@]}"
rc=$?
set -e
exit $rc
