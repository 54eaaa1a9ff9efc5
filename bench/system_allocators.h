#pragma once
// The three reference mallocs, reachable side by side in one process.
//
// glibc's malloc is the process allocator and is called directly. Debian's
// libjemalloc.so.2 is built without a symbol prefix and Debian's
// libmimalloc.so.2 is built in override mode (its `malloc` is an alias of
// mi_malloc), so linking either would silently replace glibc's malloc for the
// whole process. Both are therefore dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND
// and called through function pointers; load_system_allocators() then proves
// that glibc's malloc is still glibc's (see verify_* in the .cpp).
#include <stddef.h>

#include <string>

namespace bench {

struct SystemAllocator {
    void* (*malloc_fn)(size_t) = nullptr;
    void (*free_fn)(void*) = nullptr;
    size_t (*usable_size_fn)(void*) = nullptr;
    std::string library; // the shared object the functions live in (from dladdr)

    bool available() const { return malloc_fn != nullptr && free_fn != nullptr; }
};

// Filled by load_system_allocators(); unavailable ones keep null pointers.
extern SystemAllocator g_mimalloc;
extern SystemAllocator g_jemalloc;
extern std::string g_glibc_library;

enum class LoadResult { Ok, NeedsStaticTlsReexec, Failed };

// Loads mimalloc and jemalloc and verifies that none of them took over the
// process malloc. Prints one line per allocator to stderr. Returns
// NeedsStaticTlsReexec when jemalloc (initial-exec TLS, ~2.6 KiB) does not fit
// glibc's static TLS surplus; main() then re-executes itself with
// GLIBC_TUNABLES=glibc.rtld.optional_static_tls raised.
LoadResult load_system_allocators(bool allow_reexec);

} // namespace bench
