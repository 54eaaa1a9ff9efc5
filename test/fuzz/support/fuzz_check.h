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

namespace fuzz {

// Offset of the first byte in [p, p + n) that is not `fill`, or n. Left out of the coverage
// instrumentation: harnesses verify megabytes per input, and libFuzzer's per-compare tracing
// would otherwise dominate the run time (noinline: inlined, it would be instrumented as its
// caller). ASan still checks every load.
__attribute__((no_sanitize("coverage"), noinline)) inline size_t first_mismatch(const uint8_t* p, size_t n, uint8_t fill)
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

} // namespace fuzz
