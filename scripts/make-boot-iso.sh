#!/usr/bin/env bash
# Makes a hybrid BIOS/UEFI ISO that boots a kernel ELF straight away with a given command line.
#   scripts/make-boot-iso.sh [--plain-entry] <kernel.elf> <out.iso> [kernel command line...]
# --plain-entry writes the smallest entry a user might write by hand: the `multiboot2` line and
# nothing else (no video modules, no gfxpayload), so a BIOS boot gets whatever display GRUB
# gives for the kernel's framebuffer request (a VBE framebuffer under SeaBIOS).
# Used by the scripts that need a one-off boot (stress, -icount cost runs); the ISOs that
# `make iso` builds come from src/CMakeLists.txt and iso/*.cfg instead.
set -euo pipefail
plain=0
[ "${1:-}" = --plain-entry ] && { plain=1; shift; }
[ $# -ge 2 ] || { echo "usage: make-boot-iso.sh [--plain-entry] <kernel.elf> <out.iso> [cmdline...]" >&2; exit 2; }
elf=$1; iso=$2; shift 2
[ -f "$elf" ] || { echo "make-boot-iso: kernel '$elf' not found" >&2; exit 1; }
root=$(mktemp -d)
log=$(mktemp) # outside the tree being imaged: xorriso fails if a file changes while it reads
trap 'rm -rf "$root" "$log"' EXIT
mkdir -p "$root/boot/grub"
cp "$elf" "$root/boot/aethelos.elf"
if [ "$plain" = 1 ]; then
  cat > "$root/boot/grub/grub.cfg" <<CFG
set timeout=0
menuentry "AethelOS" {
    multiboot2 /boot/aethelos.elf $*
}
CFG
else
  cat > "$root/boot/grub/grub.cfg" <<CFG
insmod all_video
set timeout=0
set default=0
menuentry "AethelOS" {
    multiboot2 /boot/aethelos.elf $*
    if [ "\$grub_platform" = pc ]; then set gfxpayload=text; fi
    boot
}
CFG
fi
grub-mkrescue -o "$iso" "$root" > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
