#!/usr/bin/env bash
# Installs the Debian 12 packages AethelOS needs to build, boot and test.
# Called by make when a tool is missing; safe to run by hand at any time.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build git
  binutils-source gcc-12-source
  libgmp-dev libmpfr-dev libmpc-dev texinfo bison flex patch xz-utils
  grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools
  qemu-system-x86 ovmf
  catch2 gdb gcovr
  libbenchmark-dev libmimalloc-dev libjemalloc-dev libboost-context-dev
  clang-14 clang-format-14 libclang-rt-14-dev llvm-14 python3 gnuplot-nox
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || [ -t 0 ]; then
  SUDO=(sudo)
else
  echo "install-deps: need root to install: ${missing[*]}" >&2
  echo "install-deps: run 'sudo scripts/install-deps.sh' once, then retry." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
