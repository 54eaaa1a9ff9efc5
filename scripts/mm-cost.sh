#!/usr/bin/env bash
# The Mana Pool's in-kernel cost in instructions per allocate/free pair.
#
# Boots the kernel with only the mm_cost ktests (ktest=mm_cost.*) under QEMU TCG with
# `-icount shift=0`, where the guest TSC advances exactly once per executed instruction,
# twice, and checks that both runs report identical figures (they are deterministic).
#
#   scripts/mm-cost.sh [--release] [--elf build/kernel/aethelos.elf] [--runs 2] [--memory 256M]
#
# By default it measures the kernel of the main build (`cmake --build build`: a Debug build,
# with UBSan, poisoning and red zones). --release first builds a Release kernel (debug checks
# off, as shipped) in build/mm-cost-release with the same cross toolchain and measures that.
# Needs grub-mkrescue and qemu-system-x86_64.
# Prints the "mm-cost:" lines; exits non-zero when a run fails or the runs disagree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
elf="$here/build/kernel/aethelos.elf"; runs=2; memory=256M; release=0
while [ $# -gt 0 ]; do
  case "$1" in
    --release) release=1; shift ;;
    --elf) elf=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    *) echo "mm-cost: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ "$release" = 1 ]; then
  prefix=$(sed -n 's/^AETHELOS_TOOLCHAIN_PREFIX[^=]*=//p' "$here/build/kernel/CMakeCache.txt" 2>/dev/null | head -n 1)
  [ -n "$prefix" ] || { echo "mm-cost: configure the main build first (cmake --preset / make)" >&2; exit 1; }
  rel="$here/build/mm-cost-release"
  cmake -S "$here/src" -B "$rel" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$here/cmake/toolchain-x86_64-elf.cmake" \
        -DAETHELOS_TOOLCHAIN_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release -DAETHELOS_OUTPUT_DIR="$rel" >/dev/null
  cmake --build "$rel" --target aethelos >/dev/null
  elf="$rel/aethelos.elf"
fi
[ -f "$elf" ] || { echo "mm-cost: kernel '$elf' not found (run: cmake --build build)" >&2; exit 1; }

work=$(mktemp -d /tmp/aethelos-mm-cost.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/boot/grub"
cp "$elf" "$work/root/boot/aethelos.elf"
cat > "$work/root/boot/grub/grub.cfg" <<'EOF'
insmod all_video
set timeout=0
set default=0
menuentry "AethelOS mm-cost" {
    multiboot2 /boot/aethelos.elf ktest=mm_cost.* log=info
    boot
}
EOF
grub-mkrescue -o "$work/mm-cost.iso" "$work/root" > "$work/mkrescue.log" 2>&1 ||
  { cat "$work/mkrescue.log" >&2; exit 1; }

for i in $(seq 1 "$runs"); do
  "$here/scripts/qemu-test.sh" --iso "$work/mm-cost.iso" --firmware bios --memory "$memory" \
      --log "$work/run$i.log" --timeout 600 -- -icount shift=0 >"$work/qemu$i.out" ||
    { cat "$work/qemu$i.out" >&2; exit 1; }
  grep -a '^mm-cost:' "$work/run$i.log" | tr -d '\r' > "$work/figures$i.txt"
  [ -s "$work/figures$i.txt" ] || { echo "mm-cost: run $i printed no figures" >&2; exit 1; }
done

cat "$work/figures1.txt"
for i in $(seq 2 "$runs"); do
  if ! cmp -s "$work/figures1.txt" "$work/figures$i.txt"; then
    echo "mm-cost: run $i differs from run 1 (not deterministic):" >&2
    diff "$work/figures1.txt" "$work/figures$i.txt" >&2 || true
    exit 1
  fi
done
grep -q 'counts instructions' "$work/figures1.txt" ||
  { echo "mm-cost: the counter did not count instructions (is -icount working?)" >&2; exit 1; }
echo "mm-cost: $runs runs identical"
