#!/usr/bin/env bash
# Checks that the image `make run` boots carries no diagnostics while the test image carries them
# all: no ktest case, runner, stress, workload or fault-injection symbol in the first, and each of
# them present in the second (so a check that saw nothing could not pass).
#   scripts/check-run-image.sh <aethelos.elf> <aethelos-test.elf>
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: check-run-image.sh <aethelos.elf> <aethelos-test.elf>" >&2; exit 2; }
run=$1; test_image=$2
for f in "$run" "$test_image"; do
  [ -r "$f" ] || { echo "check-run-image: cannot read '$f'" >&2; exit 2; }
done
# What marks the diagnostics: the .ktests bounds, every case function, and each room's namespace.
patterns=('__ktests_start' 'ktest_fn_' 'kernel::ktest::' 'kernel::stress::' 'kernel::workloads::'
          'kernel::fault::provoke' 'kernel::diag::g_hooks')
symbols() {
  local out
  if ! out=$(nm -C "$1" 2>&1); then
    echo "check-run-image: nm cannot read $1: $out" >&2
    exit 2
  fi
  printf '%s\n' "$out"
}
run_syms=$(symbols "$run"); test_syms=$(symbols "$test_image")
status=0
for p in "${patterns[@]}"; do
  found=$(grep -cF -- "$p" <<<"$run_syms" || true)
  if [ "$found" -ne 0 ]; then
    echo "check-run-image: $run has $found symbol(s) matching '$p', e.g.:" >&2
    grep -F -- "$p" <<<"$run_syms" | head -n 3 >&2
    status=1
  fi
  if ! grep -qF -- "$p" <<<"$test_syms"; then
    echo "check-run-image: $test_image has no symbol matching '$p': the test image lost its diagnostics" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "check-run-image: $(basename "$run") has no diagnostics; $(basename "$test_image") has them ($(grep -c 'ktest_fn_' <<<"$test_syms") ktest_fn_ symbols)"
exit "$status"
