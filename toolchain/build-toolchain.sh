#!/usr/bin/env bash
# Bootstraps the x86_64-elf cross toolchain (binutils + GCC C/C++ + libgcc +
# freestanding libstdc++ headers) into a content-keyed cache and reuses it.
#
# usage: build-toolchain.sh --cache <dir> --work <dir> [--print-prefix]
#   --cache  cache root; the toolchain lands in <cache>/<key>
#   --work   scratch dir for sources, objects and logs (inside the build tree)
#   --print-prefix  only print the prefix this recipe resolves to and exit
#
# Sources default to Debian's binutils-source and gcc-12-source packages.
# AETHELOS_BINUTILS_TARBALL / AETHELOS_GCC_TARBALL may instead name upstream
# release tarballs (path or URL); those are checked against pinned SHA-256 sums.
set -euo pipefail

TARGET=x86_64-elf
BINUTILS_VERSION=2.40
GCC_VERSION=12.2.0
# Upstream release tarballs, pinned.
BINUTILS_UPSTREAM_SHA256=0f8a4c272d7f17f369ded10a4aca28b8e304828e95526da482b0ccc4dfc9d8e1
GCC_UPSTREAM_SHA256=e549cf9cf3594a00e27b6589d4322d70e0720cdd213f39beb4181e06926230ff

HOST_FLAGS='-O2 -g0'
TARGET_FLAGS='-O2 -g0 -mno-red-zone'
BINUTILS_CONFIG=(--target=$TARGET --with-sysroot --disable-nls --disable-werror
  --disable-gdb --disable-gdbserver --disable-sim --disable-gprofng --disable-plugins
  --disable-lto --disable-multilib --disable-readline --disable-libdecnumber)
GCC_CONFIG=(--target=$TARGET --enable-languages=c,c++ --without-headers --disable-nls
  --disable-multilib --disable-bootstrap --disable-lto --disable-plugin
  --disable-shared --disable-threads --disable-libssp --disable-libquadmath
  --disable-libgomp --disable-libatomic --disable-libvtv --disable-libitm
  --disable-libsanitizer --disable-hosted-libstdcxx --disable-werror)

cache=""; work=""; print_prefix=0
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --print-prefix) print_prefix=1; shift ;;
    *) echo "build-toolchain: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$cache" ] || cache=${AETHELOS_TOOLCHAIN_CACHE:-$HOME/.cache/aethelos/toolchain}

start=$(date +%s)
step() { printf '[toolchain %4ds] %s\n' $(( $(date +%s) - start )) "$*"; }
die() { echo "build-toolchain: error: $*" >&2; exit 1; }

# --- Resolve sources -------------------------------------------------------
fetch() { # fetch <path-or-url> <dest>
  case "$1" in
    http://*|https://*|ftp://*) curl -fL --retry 2 -o "$2" "$1" || die "download failed: $1" ;;
    *) [ -f "$1" ] || die "no such tarball: $1"; cp "$1" "$2" ;;
  esac
}
GCC_PATCHES=()
if [ -n "${AETHELOS_BINUTILS_TARBALL:-}" ]; then
  binutils_src_desc="upstream:$BINUTILS_UPSTREAM_SHA256"
else
  binutils_tar=/usr/src/binutils/binutils-$BINUTILS_VERSION.tar.xz
  [ -f "$binutils_tar" ] || die "$binutils_tar missing (apt-get install binutils-source)"
  binutils_src_desc="debian:$(stat -c %s "$binutils_tar")"
fi
if [ -n "${AETHELOS_GCC_TARBALL:-}" ]; then
  gcc_src_desc="upstream:$GCC_UPSTREAM_SHA256"
else
  gcc_tar=/usr/src/gcc-12/gcc-$GCC_VERSION-dfsg.tar.xz
  [ -f "$gcc_tar" ] || die "$gcc_tar missing (apt-get install gcc-12-source)"
  gcc_src_desc="debian:$(stat -c %s "$gcc_tar")"
  GCC_PATCHES=(/usr/src/gcc-12/patches/gcc-gfdl-build.diff)
  [ -f "${GCC_PATCHES[0]}" ] || die "${GCC_PATCHES[0]} missing (gcc-12-source)"
fi

# --- Key: everything that changes the installed bits ------------------------
recipe=$(
  echo "recipe 1 target=$TARGET"
  echo "binutils $BINUTILS_VERSION $binutils_src_desc ${BINUTILS_CONFIG[*]}"
  echo "gcc $GCC_VERSION $gcc_src_desc ${GCC_CONFIG[*]}"
  echo "host-flags $HOST_FLAGS target-flags $TARGET_FLAGS"
  for p in "${GCC_PATCHES[@]}"; do sha256sum < "$p"; done
  echo "build-host $(uname -m) $(gcc -dumpfullversion 2>/dev/null)"
)
key=$(printf '%s\n' "$recipe" | sha256sum | cut -c1-16)
prefix="$cache/$TARGET-gcc$GCC_VERSION-$key"
if [ $print_prefix -eq 1 ]; then echo "$prefix"; exit 0; fi
[ -n "$work" ] || die "--work is required"

stamp="$prefix/.aethelos-toolchain-complete"

# A complete install has its stamp, every file listed in the manifest with the
# recorded size, and a compiler that can build freestanding C++.
verify() {
  [ -f "$stamp" ] || return 1
  [ "$(head -n1 "$stamp")" = "key $key" ] || return 1
  tail -n +2 "$stamp" | while read -r size path; do
    [ -f "$prefix/$path" ] && [ "$(stat -c %s "$prefix/$path")" = "$size" ] || { echo "missing/changed: $path" >&2; exit 1; }
  done || return 1
  local t; t=$(mktemp -d)
  printf '#include <atomic>\n#include <cstdint>\nstd::atomic<int> a; extern "C" long f(long x, long y){ a.fetch_add(1); return x / y + (long)(__int128(x) * y >> 64); }\n' > "$t/s.cpp"
  "$prefix/bin/$TARGET-g++" -std=c++20 -ffreestanding -mno-red-zone -O2 -c "$t/s.cpp" -o "$t/s.o" 2>/dev/null &&
    "$prefix/bin/$TARGET-ld" -r "$t/s.o" -o "$t/r.o" 2>/dev/null &&
    [ -f "$("$prefix/bin/$TARGET-gcc" -print-libgcc-file-name)" ]
  local rc=$?; rm -rf "$t"; return $rc
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if verify; then
  step "reusing cached toolchain $prefix"
  exit 0
fi
if [ -e "$prefix" ]; then
  step "cached toolchain at $prefix is partial or corrupt: rebuilding"
  rm -rf "$prefix"
fi

jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$work"
work=$(cd "$work" && pwd)
logs="$work/logs"; mkdir -p "$logs"
src="$work/src"; rm -rf "$src" "$work/build-binutils" "$work/build-gcc"; mkdir -p "$src"

run() { # run <log-name> <cmd...>
  local log="$logs/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "build-toolchain: step failed, last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

step "key $key -> $prefix (logs in $logs)"
if [ -n "${AETHELOS_BINUTILS_TARBALL:-}" ]; then
  binutils_tar="$src/binutils.tar.xz"; fetch "$AETHELOS_BINUTILS_TARBALL" "$binutils_tar"
  echo "$BINUTILS_UPSTREAM_SHA256  $binutils_tar" | sha256sum -c --quiet || die "binutils tarball SHA-256 mismatch"
fi
if [ -n "${AETHELOS_GCC_TARBALL:-}" ]; then
  gcc_tar="$src/gcc.tar.xz"; fetch "$AETHELOS_GCC_TARBALL" "$gcc_tar"
  echo "$GCC_UPSTREAM_SHA256  $gcc_tar" | sha256sum -c --quiet || die "gcc tarball SHA-256 mismatch"
fi

step "unpacking binutils $BINUTILS_VERSION"
run unpack-binutils tar -C "$src" -xf "$binutils_tar"
step "unpacking gcc $GCC_VERSION"
run unpack-gcc tar -C "$src" -xf "$gcc_tar"
bsrc=$(find "$src" -maxdepth 1 -type d -name "binutils-*" | head -n1)
gsrc=$(find "$src" -maxdepth 1 -type d -name "gcc-*" | head -n1)
for p in "${GCC_PATCHES[@]}"; do
  step "patching gcc with $(basename "$p")"
  run patch-gcc patch -d "$gsrc" -p2 -i "$p"
done

export PATH="$prefix/bin:$PATH"
mkdir -p "$work/build-binutils" "$work/build-gcc"

step "configuring binutils"
(cd "$work/build-binutils" && run configure-binutils env CFLAGS="$HOST_FLAGS" CXXFLAGS="$HOST_FLAGS" \
  "$bsrc/configure" --prefix="$prefix" "${BINUTILS_CONFIG[@]}")
step "building binutils (-j$jobs)"
(cd "$work/build-binutils" && run build-binutils make -j"$jobs")
step "installing binutils"
(cd "$work/build-binutils" && run install-binutils make install)

step "configuring gcc"
(cd "$work/build-gcc" && run configure-gcc env CFLAGS="$HOST_FLAGS" CXXFLAGS="$HOST_FLAGS" \
  CFLAGS_FOR_TARGET="$TARGET_FLAGS" CXXFLAGS_FOR_TARGET="$TARGET_FLAGS" \
  "$gsrc/configure" --prefix="$prefix" "${GCC_CONFIG[@]}")
step "building gcc all-gcc (-j$jobs; about 14 min on 2 cores)"
(cd "$work/build-gcc" && run build-gcc make -j"$jobs" all-gcc)
step "building libgcc (-mno-red-zone)"
(cd "$work/build-gcc" && run build-libgcc make -j"$jobs" all-target-libgcc)
step "building freestanding libstdc++"
(cd "$work/build-gcc" && run build-libstdcxx make -j"$jobs" all-target-libstdc++-v3)
step "installing gcc, libgcc, libstdc++ headers"
(cd "$work/build-gcc" && run install-gcc make install-gcc install-target-libgcc install-target-libstdc++-v3)

# Manifest first, stamp last: a crash anywhere before leaves no stamp.
manifest=$(cd "$prefix" && find . -type f ! -name .aethelos-toolchain-complete -printf '%s %P\n' | sort -k2)
printf 'key %s\n%s\n' "$key" "$manifest" > "$stamp.tmp"
mv "$stamp.tmp" "$stamp"
verify || die "fresh toolchain failed its own verification"
rm -rf "$src" "$work/build-binutils" "$work/build-gcc"
step "toolchain ready: $prefix"
