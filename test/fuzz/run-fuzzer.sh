#!/usr/bin/env bash
# Runs one libFuzzer harness for a fixed time on a working copy of its seed corpus and fails on
# any crash, sanitizer report, leak, timeout or out-of-memory. The committed seeds are copied into
# the work directory (never mutated in place); inputs found there accumulate across runs.
#
#   run-fuzzer.sh --fuzzer <build>/fuzz/fuzz_heap --seeds test/fuzz/corpus/heap \
#                 --work <build>/fuzz/run/heap [--seconds 30] [-- extra libFuzzer flags]
set -euo pipefail

fuzzer= seeds= work= seconds=30
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fuzzer) fuzzer=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "run-fuzzer: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$fuzzer" ] || [ -z "$seeds" ] || [ -z "$work" ]; then
  echo "usage: run-fuzzer.sh --fuzzer <binary> --seeds <dir> --work <dir> [--seconds N] [-- flags]" >&2
  exit 2
fi
case "$seconds" in ''|*[!0-9]*) echo "run-fuzzer: --seconds needs a whole number, got '$seconds'" >&2; exit 2 ;; esac
name=$(basename "$fuzzer")
if [ ! -x "$fuzzer" ]; then
  echo "run-fuzzer: $fuzzer is not built (cmake --build <build> --target fuzzers)" >&2
  exit 1
fi

mkdir -p "$work/corpus" "$work/artifacts"
if [ -d "$seeds" ]; then
  cp -n "$seeds"/* "$work/corpus/" 2>/dev/null || true
fi
# Room to grow past the largest seed (the UEFI Multiboot2 captures are ~8 KiB), unless given.
case " ${extra[*]-} " in
  *" -max_len="*) ;;
  *) largest=$(find "$work/corpus" -type f -printf '%s\n' | sort -n | tail -1)
     extra+=("-max_len=$(( ${largest:-0} * 2 > 4096 ? ${largest:-0} * 2 : 4096 ))") ;;
esac
log="$work/$name.log"
start=$(date +%s)
# -timeout: one input taking a minute is a hang; under heavy load a 0.2 s input was seen taking 11 s.
set +e
"$fuzzer" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "${extra[@]}" "$work/corpus" >"$log" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
corpus=$(find "$work/corpus" -type f | wc -l)
echo "$name: ${execs:-?} executions in ${elapsed} s (${rate:-?}/s), corpus ${corpus} inputs, exit code $rc"
if [ $rc -ne 0 ]; then
  echo "--- last lines of $log ---"
  tail -n 60 "$log"
  for crash in "$work"/artifacts/*; do
    [ -e "$crash" ] && echo "reproduce: $fuzzer $crash"
  done
  exit 1
fi
