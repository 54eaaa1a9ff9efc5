#!/usr/bin/env bash
# Checks that every C++ source and header under src/, test/ and bench/ is formatted as .clang-format
# says (clang-format-14), and names each file that is not.
#   scripts/check-format.sh [file...]          check (exit 1 naming the files that differ)
#   scripts/check-format.sh --fix [file...]    rewrite them in place
# Without files: every tracked .cpp and .h under src/, test/ and bench/ (files: paths from the
# project root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fix=0
args=()
for a in "$@"; do
  case "$a" in
    --fix) fix=1 ;;
    -*) echo "usage: check-format.sh [--fix] [file...]" >&2; exit 2 ;;
    *) args+=("$a") ;;
  esac
done
command -v clang-format-14 >/dev/null || { echo "check-format: clang-format-14 is missing (scripts/install-deps.sh)" >&2; exit 2; }
cd "$here"
if [ ${#args[@]} -gt 0 ]; then
  files=("${args[@]}")
else
  mapfile -t files < <(git ls-files -- 'src/*.cpp' 'src/*.h' 'test/*.cpp' 'test/*.h' 'bench/*.cpp' 'bench/*.h' 2>/dev/null ||
                       find src test bench -name '*.cpp' -o -name '*.h')
fi
[ ${#files[@]} -gt 0 ] || { echo "check-format: no sources found under $here" >&2; exit 2; }
if [ "$fix" = 1 ]; then
  clang-format-14 -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
# One clang-format process for the whole tree (one per file took half a minute): --dry-run
# --Werror reports every difference as "<file>:<line>:<col>: error: code should be clang-formatted".
if report=$(clang-format-14 --style=file --dry-run --Werror "${files[@]}" 2>&1); then
  :
else
  mapfile -t bad < <(grep -oE '^[^:]+:[0-9]+:[0-9]+: error' <<<"$report" | cut -d: -f1 | sort -u)
  if [ ${#bad[@]} -eq 0 ]; then
    echo "check-format: clang-format-14 failed: $report" >&2
    exit 2
  fi
  printf 'check-format: not formatted as .clang-format says: %s\n' "${bad[@]}" >&2
  echo "check-format: ${#bad[@]} of ${#files[@]} files; scripts/check-format.sh --fix rewrites them" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files, all formatted"
