#include "diag/ktest.h"

#include "lib/log.h"
#include "lib/string.h"
#include "time/time.h"

extern "C" const kernel::ktest::TestCase __ktests_start[];
extern "C" const kernel::ktest::TestCase __ktests_end[];

namespace kernel::ktest {

void Context::fail(const char* file, int line, const char* what)
{
    ++m_failures;
    lib::log::print("    at {}:{}: {}\n", file, line, what);
}

const TestCase* find_case(const char* suite, const char* name)
{
    for (const TestCase* tc = __ktests_start; tc != __ktests_end; ++tc)
        if (lib::StringView(tc->suite) == suite && lib::StringView(tc->name) == name)
            return tc;
    return nullptr;
}

Summary run_all(const char* filter)
{
    Summary summary;
    const size_t total = static_cast<size_t>(__ktests_end - __ktests_start);
    lib::log::print("ktest: {} registered case(s), filter '{}'\n", total, filter ? filter : "");
    for (const TestCase* tc = __ktests_start; tc != __ktests_end; ++tc) {
        if (!matches_filter(filter, tc->suite, tc->name)) {
            ++summary.filtered;
            continue;
        }
        lib::log::print("[ RUN  ] {}.{}\n", tc->suite, tc->name);
        Context ctx;
        // Tick time per case (it stands still while a case keeps interrupts off); under -icount it
        // is guest work, so the slow cases stand out in the log.
        const uint64_t start_ns = time::uptime_ns();
        tc->fn(ctx);
        const uint64_t elapsed_ms = (time::uptime_ns() - start_ns) / 1'000'000;
        if (ctx.failed()) {
            ++summary.failed;
            lib::log::print("[ FAIL ] {}.{} ({} failure(s), {} ms)\n", tc->suite, tc->name, ctx.failures(), elapsed_ms);
        } else if (ctx.skipped()) {
            ++summary.skipped;
            lib::log::print("[ SKIP ] {}.{} ({})\n", tc->suite, tc->name, ctx.skip_reason());
        } else {
            ++summary.passed;
            lib::log::print("[  OK  ] {}.{} ({} ms)\n", tc->suite, tc->name, elapsed_ms);
        }
    }
    lib::log::print("{} passed, {} failed, {} skipped\n", summary.passed, summary.failed, summary.skipped);
    return summary;
}

} // namespace kernel::ktest
