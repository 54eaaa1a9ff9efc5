#!/usr/bin/env bash
# Captures the Multiboot2 information GRUB really hands the kernel, for the multiboot2 fuzzer's
# seed corpus: boots an ISO under QEMU stopped at the kernel's entry point (gdb stub, hardware
# breakpoint), reads the info address from EBX and dumps total_size bytes from there.
#
#   capture-multiboot2.sh --iso build/aethelos.iso --elf build/kernel/aethelos.elf \
#                         --out test/fuzz/corpus/multiboot2/grub-bios-512M.bin [--firmware bios|uefi]
#                         [--memory 512M] [--timeout 120]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
iso= elf= out= firmware=bios memory=512M timeout=120
while [ $# -gt 0 ]; do
  case "$1" in
    --iso) iso=$2; shift 2 ;;
    --elf) elf=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) echo "capture-multiboot2: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$iso" ] && [ -n "$elf" ] && [ -n "$out" ] || { echo "usage: see the header of $0" >&2; exit 2; }

entry=$(readelf -h "$elf" | awk '/Entry point address/ {print $4}')
work=$(mktemp -d)
trap 'kill "$qpid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$iso" "$work/boot.iso" # QEMU locks its image; never hold someone else's
port=$(( 20000 + RANDOM % 20000 ))
args=(-machine q35 -m "$memory" -cdrom "$work/boot.iso" -boot d -no-reboot -display none -serial null
      -monitor none -S -gdb "tcp:127.0.0.1:$port")
[ "$firmware" = uefi ] && args+=(-bios "$("$here/scripts/find-ovmf.sh")")
qemu-system-x86_64 "${args[@]}" &
qpid=$!
sleep 1
timeout "$timeout" gdb -q -batch -nx \
  -ex "set architecture i386:x86-64" \
  -ex "target remote 127.0.0.1:$port" \
  -ex "hbreak *$entry" \
  -ex "continue" \
  -ex 'set $info = $rbx & 0xffffffff' \
  -ex 'printf "info at %#x, %u bytes\n", $info, *(unsigned int*)$info' \
  -ex "dump binary memory $work/info.bin \$info \$info + *(unsigned int*)\$info" \
  -ex "kill" >"$work/gdb.log" 2>&1 || { cat "$work/gdb.log" >&2; exit 1; }
grep "info at" "$work/gdb.log"
mkdir -p "$(dirname "$out")"
cp "$work/info.bin" "$out"
