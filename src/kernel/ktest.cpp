#include "kernel/ktest.h"

#include "lib/log.h"

extern "C" const kernel::ktest::TestCase __ktests_start[];
extern "C" const kernel::ktest::TestCase __ktests_end[];

namespace kernel::ktest {

void Context::fail(const char* file, int line, const char* what)
{
    ++m_failures;
    lib::log::print("    at {}:{}: {}\n", file, line, what);
}

Summary run_all(const char* filter)
{
    Summary summary;
    const size_t total = static_cast<size_t>(__ktests_end - __ktests_start);
    lib::log::print("ktest: {} registered case(s), filter '{}'\n", total, filter ? filter : "");
    for (const TestCase* tc = __ktests_start; tc != __ktests_end; ++tc) {
        if (!matches_filter(filter, tc->suite, tc->name)) {
            ++summary.skipped;
            continue;
        }
        lib::log::print("[ RUN  ] {}.{}\n", tc->suite, tc->name);
        Context ctx;
        tc->fn(ctx);
        if (ctx.failed()) {
            ++summary.failed;
            lib::log::print("[ FAIL ] {}.{} ({} failure(s))\n", tc->suite, tc->name, ctx.failures());
        } else {
            ++summary.passed;
            lib::log::print("[  OK  ] {}.{}\n", tc->suite, tc->name);
        }
    }
    lib::log::print("{} passed, {} failed\n", summary.passed, summary.failed);
    return summary;
}

} // namespace kernel::ktest
