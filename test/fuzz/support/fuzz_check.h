#pragma once
// Checks for the fuzz harnesses: a failed check prints what broke and aborts, which libFuzzer
// records as a crash and saves the input that caused it (crash-<sha1> in the working directory).
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (!(cond)) [[unlikely]] {                                                                                    \
            std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);                     \
            std::fprintf(stderr, __VA_ARGS__);                                                                         \
            std::fputc('\n', stderr);                                                                                  \
            std::abort();                                                                                              \
        }                                                                                                              \
    } while (0)

#include <cstddef>
#include <cstdint>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#endif
#endif

namespace fuzz {

// Offset of the first byte in [p, p + n) that is not `fill`, or n. Left out of the coverage
// instrumentation: harnesses verify megabytes per input, and libFuzzer's per-compare tracing
// would otherwise dominate the run time (noinline: inlined, it would be instrumented as its
// caller). ASan still checks every byte: first the whole range at once (one shadow scan); only
// when some byte of it is poisoned does the per-load instrumented loop run, so ASan reports the
// access exactly as before (the first poisoned byte, unless a mismatch comes earlier).
namespace detail {
__attribute__((no_sanitize("coverage"), noinline)) inline size_t first_mismatch_checked(const uint8_t* p, size_t n,
                                                                                        uint8_t fill)
{
    const uint64_t pattern = 0x0101010101010101ull * fill;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        __builtin_memcpy(&word, p + i, sizeof(word));
        if (word != pattern)
            break;
    }
    for (; i < n; ++i) {
        if (p[i] != fill)
            return i;
    }
    return n;
}

// The same scan without ASan's per-load checks, over a range already known unpoisoned.
__attribute__((no_sanitize("coverage", "address"), noinline)) inline size_t
first_mismatch_unchecked(const uint8_t* p, size_t n, uint8_t fill)
{
    const uint64_t pattern = 0x0101010101010101ull * fill;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        __builtin_memcpy(w, p + i, sizeof(w));
        if (((w[0] ^ pattern) | (w[1] ^ pattern) | (w[2] ^ pattern) | (w[3] ^ pattern)) != 0)
            break;
    }
    for (; i < n; ++i) {
        if (p[i] != fill)
            return i;
    }
    return n;
}
} // namespace detail

__attribute__((no_sanitize("coverage"), noinline)) inline size_t first_mismatch(const uint8_t* p, size_t n,
                                                                                uint8_t fill)
{
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
    if (n != 0 && __asan_region_is_poisoned(const_cast<uint8_t*>(p), n) != nullptr)
        return detail::first_mismatch_checked(p, n, fill);
    return detail::first_mismatch_unchecked(p, n, fill);
#endif
#endif
    return detail::first_mismatch_checked(p, n, fill);
}

} // namespace fuzz
