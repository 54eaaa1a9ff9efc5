// Loading and verifying the reference mallocs. See system_allocators.h for why
// mimalloc and jemalloc are dlopen()ed instead of linked.
#include "system_allocators.h"

#include <dlfcn.h>
#include <malloc.h>
#include <mimalloc.h> // prototypes only: mi_malloc/mi_free are resolved with dlsym
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace bench {

SystemAllocator g_mimalloc;
SystemAllocator g_jemalloc;
std::string g_glibc_library;

namespace {

// Below glibc's initial mmap threshold (128 KiB), so glibc serves it from its
// main arena and mallinfo2().uordblks must grow by at least this much.
constexpr size_t kProbeBytes = 100000;

std::string library_of(const void* function)
{
    Dl_info info{};
    if (dladdr(function, &info) == 0 || info.dli_fname == nullptr)
        return "?";
    return info.dli_fname;
}

bool contains(const std::string& haystack, const char* needle) { return haystack.find(needle) != std::string::npos; }

void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

size_t glibc_in_use() { return mallinfo2().uordblks; }

// glibc's malloc: defined in libc.so.6, accounted in glibc's own arena
// statistics, and with glibc's chunk geometry (malloc(1) has 24 usable bytes;
// jemalloc and mimalloc give 8).
bool verify_glibc()
{
    g_glibc_library = library_of(reinterpret_cast<const void*>(&::malloc));
    const size_t before = glibc_in_use();
    void* probe = ::malloc(kProbeBytes);
    escape(probe); // GCC would otherwise delete an unused malloc/free pair
    const size_t grown = glibc_in_use() - before;
    void* tiny = ::malloc(1);
    const size_t tiny_usable = malloc_usable_size(tiny);
    ::free(tiny);
    ::free(probe);
    const bool ok = contains(g_glibc_library, "libc.so") && grown >= kProbeBytes && tiny_usable == 24;
    fprintf(stderr,
            "bench: glibc    malloc from %s: mallinfo2 uordblks +%zu for %zu B, "
            "malloc_usable_size(malloc(1)) = %zu: %s\n",
            g_glibc_library.c_str(), grown, kProbeBytes, tiny_usable, ok ? "verified" : "NOT glibc");
    return ok;
}

// A private allocator: its functions live in its own library, its blocks do
// not show up in glibc's arena statistics, and its usable size is its own.
bool verify_private(const char* name, SystemAllocator& allocator, const char* expected_library)
{
    allocator.library = library_of(reinterpret_cast<const void*>(allocator.malloc_fn));
    const size_t before = glibc_in_use();
    void* probe = allocator.malloc_fn(kProbeBytes);
    const size_t after = glibc_in_use();
    const size_t usable = allocator.usable_size_fn(probe);
    allocator.free_fn(probe);
    const bool ok =
        probe != nullptr && contains(allocator.library, expected_library) && after == before && usable >= kProbeBytes;
    fprintf(stderr, "bench: %-8s malloc from %s: glibc uordblks %+lld for %zu B, own usable size %zu: %s\n", name,
            allocator.library.c_str(), static_cast<long long>(after) - static_cast<long long>(before), kProbeBytes,
            usable, ok ? "verified" : "FAILED");
    return ok;
}

template <typename Fn>
Fn symbol(void* handle, const char* name)
{
    return reinterpret_cast<Fn>(dlsym(handle, name));
}

void* open_private(const char* soname, std::string& error)
{
    // RTLD_LOCAL keeps its malloc out of the global symbol scope (glibc stays
    // the process allocator); RTLD_DEEPBIND makes its own internal references
    // bind to itself first.
    void* handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
        const char* message = dlerror();
        error = message != nullptr ? message : "dlopen failed";
    }
    return handle;
}

} // namespace

LoadResult load_system_allocators(bool allow_reexec)
{
    bool ok = verify_glibc();

    std::string error;
    if (void* handle = open_private("libmimalloc.so.2", error)) {
        g_mimalloc.malloc_fn = symbol<decltype(&mi_malloc)>(handle, "mi_malloc");
        g_mimalloc.free_fn = symbol<decltype(&mi_free)>(handle, "mi_free");
        g_mimalloc.usable_size_fn = symbol<size_t (*)(void*)>(handle, "mi_usable_size");
        if (!g_mimalloc.available() || g_mimalloc.usable_size_fn == nullptr ||
            !verify_private("mimalloc", g_mimalloc, "libmimalloc"))
            g_mimalloc = {};
    } else {
        fprintf(stderr, "bench: mimalloc unavailable: %s\n", error.c_str());
    }

    error.clear();
    if (void* handle = open_private("libjemalloc.so.2", error)) {
        g_jemalloc.malloc_fn = symbol<void* (*)(size_t)>(handle, "malloc");
        g_jemalloc.free_fn = symbol<void (*)(void*)>(handle, "free");
        g_jemalloc.usable_size_fn = symbol<size_t (*)(void*)>(handle, "malloc_usable_size");
        if (!g_jemalloc.available() || g_jemalloc.usable_size_fn == nullptr ||
            !verify_private("jemalloc", g_jemalloc, "libjemalloc"))
            g_jemalloc = {};
    } else if (allow_reexec && contains(error, "static TLS")) {
        return LoadResult::NeedsStaticTlsReexec;
    } else {
        fprintf(stderr, "bench: jemalloc unavailable: %s\n", error.c_str());
    }

    // Loading the private allocators must not have changed who glibc's malloc is.
    ok = ok && verify_glibc();
    return ok ? LoadResult::Ok : LoadResult::Failed;
}

} // namespace bench
