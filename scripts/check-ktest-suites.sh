#!/usr/bin/env bash
# Checks that every KTEST(suite, name) in a <subsystem>/ktests/<x>_ktest.cpp uses suite <x>, so
# that `ktest=<x>.*` runs exactly the cases of <x>_ktest.cpp and no file's cases hide under
# another name.
#   scripts/check-ktest-suites.sh [source-dir]     (default: src beside this script; every ktests/
#                                                   folder below it is read)
# Exit 0 when all match; 1 naming each mismatch as file:line; 2 on a usage error.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/src}
[ -d "$dir" ] || { echo "check-ktest-suites: '$dir' is not a directory" >&2; exit 2; }

bad=0
files=0
cases=0
while IFS= read -r file; do
    [ -e "$file" ] || continue
    files=$((files + 1))
    stem=$(basename "$file" _ktest.cpp)
    # Only a KTEST at the start of a line registers a case; one in a comment or string does not.
    # A registration whose suite cannot be read on its line is reported, never skipped.
    while IFS=: read -r line suite; do
        cases=$((cases + 1))
        if [ "$suite" = "?" ]; then
            echo "check-ktest-suites: $file:$line: cannot read this KTEST's suite; write KTEST($stem, name) on one line" >&2
            bad=$((bad + 1))
        elif [ "$suite" != "$stem" ]; then
            echo "check-ktest-suites: $file:$line: KTEST suite '$suite' should be '$stem' (the file's name without _ktest.cpp)" >&2
            bad=$((bad + 1))
        fi
    done < <(awk '/^[ \t]*KTEST[ \t]*\(/ {
                  s = $0; sub(/^[ \t]*KTEST[ \t]*\([ \t]*/, "", s)
                  if (match(s, /^[A-Za-z0-9_]+[ \t]*,/)) { s = substr(s, 1, RLENGTH - 1); sub(/[ \t]+$/, "", s) }
                  else s = "?"
                  print FNR ":" s
              }' "$file")
done < <(find "$dir" -path '*/ktests/*_ktest.cpp' | sort)

if [ "$files" -eq 0 ] || [ "$cases" -eq 0 ]; then
    # A check that looks at nothing would pass forever; a moved directory must fail it.
    echo "check-ktest-suites: no KTEST cases found under $dir" >&2
    exit 1
fi
if [ "$bad" -ne 0 ]; then
    echo "check-ktest-suites: $bad of $cases cases do not name their file's suite; rename the suite, or the file with git mv" >&2
    exit 1
fi
echo "check-ktest-suites: $cases cases in $files files, each in its file's suite"
