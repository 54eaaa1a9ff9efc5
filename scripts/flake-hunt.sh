#!/usr/bin/env bash
# Runs a test command again and again on one build while CPU hogs keep every core busy, and
# stops at the first failure: the evidence that the suite does not flake on a loaded host.
#   scripts/flake-hunt.sh [--runs 30] [--hogs <n, default: the number of cores>] [--log-dir /tmp/flake]
#                         [-- command...]          (default command: make test)
# Each run's output is kept as <log-dir>/run-<i>.log; the last line says how many passed.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=30; hogs=$(nproc); log_dir=/tmp/aethelos-flake; cmd=(make -C "$here" --no-print-directory test)
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --hogs) hogs=$2; shift 2 ;;
    --log-dir) log_dir=$2; shift 2 ;;
    --) shift; cmd=("$@"); break ;;
    *) echo "flake-hunt: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ && "$hogs" =~ ^[0-9]+$ ]] || { echo "flake-hunt: --runs and --hogs take numbers" >&2; exit 2; }
mkdir -p "$log_dir"
hog_pids=()
stop_hogs() { [ ${#hog_pids[@]} -eq 0 ] || kill "${hog_pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_hogs EXIT
# Busy loops at normal priority: they compete with QEMU for every core, as another build would.
for _ in $(seq 1 "$hogs"); do
  ( while :; do :; done ) &
  hog_pids+=($!)
done
passed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if "${cmd[@]}" > "$log_dir/run-$i.log" 2>&1; then
    passed=$((passed + 1))
    echo "flake-hunt: run $i passed ($(( $(date +%s) - start )) s, $hogs hogs)"
  else
    echo "flake-hunt: run $i FAILED ($(( $(date +%s) - start )) s): $log_dir/run-$i.log"
    grep -a -E '\*\*\*Failed|FAIL|Timeout' "$log_dir/run-$i.log" | head -n 20
    echo "flake-hunt: $passed of $i runs passed"
    exit 1
  fi
done
echo "flake-hunt: $passed of $runs runs passed with $hogs CPU hogs: ${cmd[*]}"
