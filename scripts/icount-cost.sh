#!/usr/bin/env bash
# Deterministic in-kernel cost figures: boots only the ktests matching <ktest-glob> under QEMU
# TCG with `-icount shift=0`, where the guest TSC advances exactly once per executed instruction,
# several times, and checks that every run prints identical "<name>:" lines.
#
#   scripts/icount-cost.sh <name> <ktest-glob> [--release] [--elf build/kernel/aethelos-test.elf]
#                          [--runs 2] [--memory 256M]
#
# By default it measures the kernel of the main build (a Debug build: UBSan and the debug checks).
# --release first builds a Release kernel (debug checks off, as shipped) in build/<name>-release
# with the same cross toolchain and measures that. Needs grub-mkrescue and qemu-system-x86_64.
# Exits non-zero when a run fails or the runs disagree; a missed target is only reported.
set -euo pipefail
name=$1; filter=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
elf="$here/build/kernel/aethelos-test.elf"; runs=2; memory=256M; release=0
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release=1; shift ;;
    --elf) elf=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    *) echo "$name: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$release" = 1 ]; then
  prefix=$(sed -n 's/^AETHELOS_TOOLCHAIN_PREFIX[^=]*=//p' "$here/build/kernel/CMakeCache.txt" 2>/dev/null | head -n 1)
  [ -n "$prefix" ] || { echo "$name: configure the main build first (cmake --preset / make)" >&2; exit 1; }
  rel="$here/build/$name-release"
  cmake -S "$here/src" -B "$rel" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$here/cmake/toolchain-x86_64-elf.cmake" \
        -DAETHELOS_TOOLCHAIN_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release -DAETHELOS_OUTPUT_DIR="$rel" >/dev/null
  cmake --build "$rel" --target aethelos >/dev/null
  elf="$rel/aethelos-test.elf"
fi
[ -f "$elf" ] || { echo "$name: kernel '$elf' not found (run: cmake --build build)" >&2; exit 1; }

work=$(mktemp -d /tmp/aethelos-$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$here/scripts/make-boot-iso.sh" "$elf" "$work/$name.iso" "ktest=$filter" log=info

for i in $(seq 1 "$runs"); do
  "$here/scripts/qemu-test.sh" --iso "$work/$name.iso" --firmware bios --memory "$memory" \
      --log "$work/run$i.log" --timeout 600 --clock icount --shift 0 --sleep on >"$work/qemu$i.out" ||
    { cat "$work/qemu$i.out" >&2; grep -a "$name\|FAIL\|panic" "$work/run$i.log" >&2 || true; exit 1; }
  grep -a "^$name:" "$work/run$i.log" | tr -d '\r' > "$work/figures$i.txt"
  [ -s "$work/figures$i.txt" ] || { echo "$name: run $i printed no figures" >&2; exit 1; }
done

cat "$work/figures1.txt"
for i in $(seq 2 "$runs"); do
  if ! cmp -s "$work/figures1.txt" "$work/figures$i.txt"; then
    echo "$name: run $i differs from run 1 (not deterministic):" >&2
    diff "$work/figures1.txt" "$work/figures$i.txt" >&2 || true
    exit 1
  fi
done
grep -q 'counts instructions' "$work/figures1.txt" ||
  { echo "$name: the counter did not count instructions (is -icount working?)" >&2; exit 1; }
echo "$name: $runs runs identical"
