// The C library's memory functions, which the kernel has no library for: GCC emits calls to
// them even where the code never names them (struct copies, zero-initialisation, large arrays).
// memcpy and memset are the string instructions, eight bytes per step and the odd tail bytes
// after: fast block moves on real CPUs, and under QEMU -icount one counted instruction per
// eight bytes (`rep stosb` would count one per byte, more than the plain word loop's three
// per eight). The rest are the generic ones.
#include <stddef.h>
#include <stdint.h>

#include "lib/string.h"

extern "C" {

void* memcpy(void* dst, const void* src, size_t n) noexcept
{
    void* d = dst;
    size_t words = n / 8;
    size_t tail = n % 8;
    asm volatile("rep movsq" : "+D"(d), "+S"(src), "+c"(words) : : "memory");
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(tail) : : "memory");
    return dst;
}

void* memset(void* dst, int value, size_t n) noexcept
{
    void* d = dst;
    size_t words = n / 8;
    size_t tail = n % 8;
    const uint64_t pattern = 0x0101010101010101ull * static_cast<uint8_t>(value);
    asm volatile("rep stosq" : "+D"(d), "+c"(words) : "a"(pattern) : "memory");
    asm volatile("rep stosb" : "+D"(d), "+c"(tail) : "a"(pattern) : "memory");
    return dst;
}

void* memmove(void* dst, const void* src, size_t n) noexcept { return lib::mem_move(dst, src, n); }

int memcmp(const void* a, const void* b, size_t n) noexcept { return lib::mem_compare(a, b, n); }

// No loop-to-libcall rewriting here: GCC would compile this loop into a call to strlen.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) size_t strlen(const char* s) noexcept
{
    size_t n = 0;
    while (s[n] != '\0')
        ++n;
    return n;
}

} // extern "C"
