#pragma once
// In-kernel test framework. Cases are registered in the ".ktests" linker
// section so no central list has to be maintained, and are run in link order
// when the Heartwood is booted with `ktest` or `ktest=<filter>`.
#include <stddef.h>
#include <stdint.h>

#include "kernel/diagnostics.h"
#include "lib/format.h"

namespace kernel::ktest {

class Context {
public:
    // Records a failed expectation; the case carries on (KEXPECT) or returns (KASSERT).
    void fail(const char* file, int line, const char* what);
    template <typename... Args>
    void failf(const char* file, int line, const char* fmt, const Args&... args)
    {
        char buf[256];
        lib::format(buf, sizeof(buf), fmt, args...);
        fail(file, line, buf);
    }
    // Records that the case cannot run here (KSKIP); the runner counts it as skipped, not passed.
    void skip(const char* reason) { m_skip_reason = reason; }
    bool failed() const { return m_failures != 0; }
    unsigned failures() const { return m_failures; }
    bool skipped() const { return m_skip_reason != nullptr; }
    const char* skip_reason() const { return m_skip_reason; }

private:
    unsigned m_failures = 0;
    const char* m_skip_reason = nullptr;
};

struct TestCase {
    const char* suite;
    const char* name;
    void (*fn)(Context&);
    const char* file;
    int line;
};

// The runner walks .ktests as an array, so every entry must sit at exactly this stride:
// KTEST pins alignas(8), because GCC would otherwise align a 40-byte constant to 32.
static_assert(sizeof(TestCase) % 8 == 0);

using Summary = diag::KtestSummary;

// Runs every case whose "suite.name" matches `filter` (glob with '*'; empty or
// null runs all) and prints one line per case plus "N passed, N failed, N skipped"
// (scripts grep the line's "N passed, N failed" start). Any case may be run again
// in the same boot (the shell's `ktest`), so a case must not keep state between runs.
Summary run_all(const char* filter);

// The case registered as suite.name, or nullptr.
const TestCase* find_case(const char* suite, const char* name);

// Glob match used by the filter: '*' matches any run of characters.
bool matches_filter(const char* filter, const char* suite, const char* name);

} // namespace kernel::ktest

#define KTEST_CONCAT_(a, b) a##b
#define KTEST_CONCAT(a, b) KTEST_CONCAT_(a, b)

#define KTEST(suite, name)                                                                                             \
    static void ktest_fn_##suite##_##name(::kernel::ktest::Context& ktest_ctx);                                        \
    [[gnu::used, gnu::section(".ktests")]] alignas(                                                                    \
        8) static constexpr ::kernel::ktest::TestCase ktest_case_##suite##_##name{                                     \
        #suite, #name, &ktest_fn_##suite##_##name, __FILE__, __LINE__};                                                \
    static void ktest_fn_##suite##_##name([[maybe_unused]] ::kernel::ktest::Context& ktest_ctx)

#define KEXPECT(cond)                                                                                                  \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            ktest_ctx.fail(__FILE__, __LINE__, "expected: " #cond);                                                    \
    } while (0)

#define KASSERT(cond)                                                                                                  \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            ktest_ctx.fail(__FILE__, __LINE__, "asserted: " #cond);                                                    \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

// Ends a case that cannot run on this machine (a resource it needs is absent); it is reported
// as skipped with the reason, not as passed.
#define KSKIP(reason)                                                                                                  \
    do {                                                                                                               \
        ktest_ctx.skip(reason);                                                                                        \
        return;                                                                                                        \
    } while (0)

#define KEXPECT_EQ(a, b)                                                                                               \
    do {                                                                                                               \
        const auto& ktest_a_ = (a);                                                                                    \
        const auto& ktest_b_ = (b);                                                                                    \
        if (!(ktest_a_ == ktest_b_))                                                                                   \
            ktest_ctx.failf(__FILE__, __LINE__, "expected {} == {} ({} vs {})", #a, #b, ktest_a_, ktest_b_);           \
    } while (0)
