#!/usr/bin/env bash
# Line and branch coverage of the Mana Pool's allocator cores by the host tests.
#
#   scripts/coverage.sh [--html]
#
# Builds the allocator host tests (test_{buddy_allocator,slab_cache,size_classes,
# frame_allocator,heap}.cpp) with the generic sources they need at -O0 --coverage into
# build/coverage/ with a plain g++ command line (independent of the CMake build),
# runs them, and prints a gcovr summary for src/mm/{buddy_allocator,slab_cache,
# size_classes,frame_allocator,heap,heap_*}.{h,cpp} and fragmentation.h. Catch2 needs
# exceptions, so branches that only exist for exception unwinding are excluded
# (--exclude-throw-branches), as are branches gcov itself marks unreachable.
# -fprofile-update=atomic: the multi-threaded stress test would otherwise race on the
# counters and leave negative call counts that gcovr cannot parse.
# --html also writes build/coverage/html/index.html.
# Needs g++ and gcovr (scripts/install-deps.sh installs it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/build/coverage"
html=0
[ "${1:-}" = "--html" ] && html=1
command -v gcovr >/dev/null || { echo "coverage: gcovr missing (run scripts/install-deps.sh)" >&2; exit 1; }

cd "$here"
core="buddy_allocator slab_cache size_classes frame_allocator heap"
sources=(test/unit/main.cpp test/support/*.cpp src/lib/*.cpp src/arch/host/*.cpp src/sync/*.cpp
         src/time/time.cpp) # time: the lock statistics in src/sync read the uptime
for c in $core; do sources+=("test/unit/test_$c.cpp" "src/mm/$c.cpp"); done
sources+=(src/mm/heap_*.cpp) # the heap's layers, beside heap.cpp

rm -rf "$out"
mkdir -p "$out/obj"
flags=(-std=c++20 -O0 -g --coverage -fprofile-update=atomic -Isrc -Itest -DAETHELOS_HOST_TEST=1 -DAETHELOS_DEBUG_CHECKS=1 -Wall -Wextra)
jobs=$(nproc 2>/dev/null || echo 2)
echo "coverage: compiling ${#sources[@]} files into $out ($jobs jobs)"
# One object per source, named after its path, so the .gcno/.gcda files do not collide.
pids=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "${src%.cpp}" | tr / _).o"
  g++ "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || { echo "coverage: compilation failed" >&2; exit 1; }
g++ --coverage -fprofile-update=atomic -o "$out/allocator_tests" "$out"/obj/*.o -lpthread

echo "coverage: running the allocator tests"
(cd "$out" && ./allocator_tests) | tail -n 3

filter='src/mm/(buddy_allocator|slab_cache|size_classes|frame_allocator|heap(_[a-z]+)?|fragmentation)\.(h|cpp)$'
gcovr_args=(--root "$here" --object-directory "$out/obj" --filter "$filter"
            --exclude-throw-branches --exclude-unreachable-branches)
echo
echo "coverage: lines"
gcovr "${gcovr_args[@]}"
echo "coverage: branches"
gcovr "${gcovr_args[@]}" --branches
if [ "$html" = 1 ]; then
  mkdir -p "$out/html"
  gcovr "${gcovr_args[@]}" --html-details "$out/html/index.html"
  echo "coverage: $out/html/index.html"
fi
