#!/usr/bin/env bash
# Checks that every C++ source and header under src/, test/ and bench/ is formatted as .clang-format
# says (clang-format-14), and names each file that is not.
#   scripts/check-format.sh          check (exit 1 naming the files that differ)
#   scripts/check-format.sh --fix    rewrite them in place
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: check-format.sh [--fix]" >&2; exit 2 ;;
esac
command -v clang-format-14 >/dev/null || { echo "check-format: clang-format-14 is missing (scripts/install-deps.sh)" >&2; exit 2; }
cd "$here"
mapfile -t files < <(git ls-files -- 'src/*.cpp' 'src/*.h' 'test/*.cpp' 'test/*.h' 'bench/*.cpp' 'bench/*.h' 2>/dev/null ||
                     find src test bench -name '*.cpp' -o -name '*.h')
[ ${#files[@]} -gt 0 ] || { echo "check-format: no sources found under $here" >&2; exit 2; }
if [ "$fix" = 1 ]; then
  clang-format-14 -i --style=file "${files[@]}"
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  if ! clang-format-14 --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  printf 'check-format: not formatted as .clang-format says: %s\n' "${bad[@]}" >&2
  echo "check-format: ${#bad[@]} of ${#files[@]} files; scripts/check-format.sh --fix rewrites them" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files, all formatted"
