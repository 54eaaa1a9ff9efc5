#!/usr/bin/env bash
# Clang's thread-safety analysis over the kernel: every src/**/*.cpp that the kernel builds is
# parsed by clang++-14 -fsyntax-only -Wthread-safety -Werror with the kernel's defines, include
# dir and the cross toolchain's freestanding libstdc++ headers (GCC-only code-generation flags are
# dropped: nothing is compiled). Then the host-test build of the generic sources, the same way.
# The annotations are the AETHELOS_* macros of src/lib/thread_safety.h.
#   scripts/check-thread-safety.sh [--toolchain-prefix DIR] [--clang CLANGXX] [--jobs N] [file.cpp...]
# With files, only those are checked (kernel flags). Exit 0 when clean; 1 with clang's messages;
# 2 when clang or the toolchain's headers are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
clang=clang++-14
prefix=
jobs=2
files=()
while [ $# -gt 0 ]; do
    case $1 in
    --toolchain-prefix) prefix=$2; shift 2 ;;
    --clang) clang=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -*) echo "check-thread-safety: unknown option $1" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
    esac
done

command -v "$clang" >/dev/null || { echo "check-thread-safety: $clang not found (install clang-14)" >&2; exit 2; }
if [ -z "$prefix" ]; then
    cache=${AETHELOS_TOOLCHAIN_CACHE:-$HOME/.cache/aethelos/toolchain}
    prefix=$(ls -d "$cache"/x86_64-elf-gcc12.2.0-*/ 2>/dev/null | head -n 1 || true)
fi
cxx_include=$(ls -d "${prefix%/}"/x86_64-elf/include/c++/*/ 2>/dev/null | head -n 1 || true)
if [ -z "$cxx_include" ] || [ ! -d "$cxx_include/x86_64-elf" ]; then
    echo "check-thread-safety: no freestanding libstdc++ headers under '${prefix:-<toolchain cache>}' (build the toolchain first)" >&2
    exit 2
fi

# test/thread_safety/source_location stands in for libstdc++'s, which needs a builtin clang 14
# lacks; -mgeneral-regs-only is dropped because clang then rejects <limits>' long double.
common=(-std=c++20 -fsyntax-only -fsized-deallocation -Wthread-safety -Werror -Wno-unknown-attributes
        -isystem "$here/test/thread_safety" -I "$here/src")
kernel=("${common[@]}" -target x86_64-unknown-elf -ffreestanding -fno-exceptions -fno-rtti -mno-red-zone
        -mcmodel=kernel -nostdinc++ -isystem "$cxx_include" -isystem "$cxx_include/x86_64-elf"
        -D__AETHELOS_KERNEL__ -DAETHELOS_DEBUG_CHECKS=1)
host=("${common[@]}" -I "$here/test" -DAETHELOS_HOST_TEST=1 -DAETHELOS_DEBUG_CHECKS=1)

cd "$here"
if [ ${#files[@]} -eq 0 ]; then
    mapfile -t files < <(find src -name '*.cpp' -not -path 'src/arch/host/*' | sort)
    # The host tests' generic sources (test/CMakeLists.txt): everything but the kernel glue.
    mapfile -t host_files < <(find src/lib src/arch/host src/mm src/sync src/sched src/kernel/shell -maxdepth 1 -name '*.cpp' |
        grep -Ev '/(mm/(frames|kmalloc|operator_new)|sched/scheduler[a-z_]*|kernel/shell/shell_kernel[a-z_]*)\.cpp$' | sort
        printf '%s\n' src/kernel/multiboot2.cpp src/kernel/cmdline.cpp src/time/time.cpp src/diag/ktest_filter.cpp src/drivers/text_grid.cpp)
else
    host_files=()
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} sh -c '"$0" "$@" {} 2>&1 || echo "check-thread-safety: {} (kernel flags) failed"' "$clang" "${kernel[@]}" >>"$log" || status=1
if [ ${#host_files[@]} -gt 0 ]; then
    printf '%s\n' "${host_files[@]}" | xargs -P "$jobs" -I{} sh -c '"$0" "$@" {} 2>&1 || echo "check-thread-safety: {} (host flags) failed"' "$clang" "${host[@]}" >>"$log" || status=1
fi
if [ -s "$log" ] || [ $status -ne 0 ]; then
    cat "$log" >&2
    echo "check-thread-safety: FAILED (see clang's messages above; lib/thread_safety.h explains the annotations)" >&2
    exit 1
fi
echo "check-thread-safety: ${#files[@]} kernel and ${#host_files[@]} host sources pass clang -Wthread-safety"
