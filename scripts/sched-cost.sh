#!/usr/bin/env bash
# The Loom of Fate's in-kernel cost: instructions per yield round trip and the timer tick's share
# of all instructions (issue 4, "Benchmark"; targets <= 300 insns and <= 0.5%).
#
# Boots the kernel with only the sched_cost ktests (ktest=sched_cost.*) under QEMU TCG with
# `-icount shift=0`, where the guest TSC advances exactly once per executed instruction, twice,
# and checks that both runs report identical figures (they are deterministic).
#
#   scripts/sched-cost.sh [--release] [--elf build/kernel/aethelos.elf] [--runs 2] [--memory 256M]
#
# By default it measures the kernel of the main build (`cmake --build build`: a Debug build, with
# UBSan and the lock debug checks). --release first builds a Release kernel (debug checks off, as
# shipped) in build/sched-cost-release with the same cross toolchain and measures that.
# Needs grub-mkrescue and qemu-system-x86_64.
# Prints the "sched-cost:" lines; exits non-zero when a run fails or the runs disagree.
# (A missed target is reported in the figures, not as a failure.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
elf="$here/build/kernel/aethelos.elf"; runs=2; memory=256M; release=0
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release=1; shift ;;
    --elf) elf=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    *) echo "sched-cost: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$release" = 1 ]; then
  prefix=$(sed -n 's/^AETHELOS_TOOLCHAIN_PREFIX[^=]*=//p' "$here/build/kernel/CMakeCache.txt" 2>/dev/null | head -n 1)
  [ -n "$prefix" ] || { echo "sched-cost: configure the main build first (cmake --preset / make)" >&2; exit 1; }
  rel="$here/build/sched-cost-release"
  cmake -S "$here/src" -B "$rel" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$here/cmake/toolchain-x86_64-elf.cmake" \
        -DAETHELOS_TOOLCHAIN_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release -DAETHELOS_OUTPUT_DIR="$rel" >/dev/null
  cmake --build "$rel" --target aethelos >/dev/null
  elf="$rel/aethelos.elf"
fi
[ -f "$elf" ] || { echo "sched-cost: kernel '$elf' not found (run: cmake --build build)" >&2; exit 1; }

work=$(mktemp -d /tmp/aethelos-sched-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/boot/grub"
cp "$elf" "$work/root/boot/aethelos.elf"
cat > "$work/root/boot/grub/grub.cfg" <<'GRUB'
insmod all_video
set timeout=0
set default=0
menuentry "AethelOS sched-cost" {
    multiboot2 /boot/aethelos.elf ktest=sched_cost.* log=info
    boot
}
GRUB
grub-mkrescue -o "$work/sched-cost.iso" "$work/root" > "$work/mkrescue.log" 2>&1 ||
  { cat "$work/mkrescue.log" >&2; exit 1; }

for i in $(seq 1 "$runs"); do
  "$here/scripts/qemu-test.sh" --iso "$work/sched-cost.iso" --firmware bios --memory "$memory" \
      --log "$work/run$i.log" --timeout 600 -- -icount shift=0 >"$work/qemu$i.out" ||
    { cat "$work/qemu$i.out" >&2; grep -a 'sched-cost\|FAIL\|panic' "$work/run$i.log" >&2 || true; exit 1; }
  grep -a '^sched-cost:' "$work/run$i.log" | tr -d '\r' > "$work/figures$i.txt"
  [ -s "$work/figures$i.txt" ] || { echo "sched-cost: run $i printed no figures" >&2; exit 1; }
done

cat "$work/figures1.txt"
for i in $(seq 2 "$runs"); do
  if ! cmp -s "$work/figures1.txt" "$work/figures$i.txt"; then
    echo "sched-cost: run $i differs from run 1 (not deterministic):" >&2
    diff "$work/figures1.txt" "$work/figures$i.txt" >&2 || true
    exit 1
  fi
done
grep -q 'counts instructions' "$work/figures1.txt" ||
  { echo "sched-cost: the counter did not count instructions (is -icount working?)" >&2; exit 1; }
echo "sched-cost: $runs runs identical"
