// aethelos_bench: the Mana Pool's host benchmarks (make bench).
//
// Startup loads mimalloc and jemalloc privately and verifies glibc's malloc is
// still the process allocator before any measurement; a failed verification
// aborts the run rather than publishing mislabelled numbers.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "bench_support.h"
#include "bench_targets.h"

namespace {

constexpr const char* kReexecGuard = "AETHELOS_BENCH_TLS_REEXEC";
// jemalloc's initial-exec TLS block is ~2.6 KiB; glibc reserves 512 bytes of
// surplus static TLS for dlopen() by default.
constexpr const char* kStaticTlsTunable = "glibc.rtld.optional_static_tls=16384";

[[noreturn]] void reexec_with_static_tls(char** argv)
{
    std::string tunables = kStaticTlsTunable;
    if (const char* existing = getenv("GLIBC_TUNABLES"); existing != nullptr && *existing != '\0')
        tunables = std::string(existing) + ":" + tunables;
    setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
    setenv(kReexecGuard, "1", 1);
    execv("/proc/self/exe", argv);
    perror("bench: re-exec for static TLS failed");
    exit(1);
}

} // namespace

int main(int argc, char** argv)
{
    const bool reexeced = getenv(kReexecGuard) != nullptr;
    switch (bench::load_system_allocators(!reexeced)) {
    case bench::LoadResult::Ok: break;
    case bench::LoadResult::NeedsStaticTlsReexec:
        fprintf(stderr, "bench: jemalloc needs more static TLS; re-executing with GLIBC_TUNABLES=%s\n",
                kStaticTlsTunable);
        reexec_with_static_tls(argv);
    case bench::LoadResult::Failed:
        fprintf(stderr, "bench: glibc malloc verification failed; refusing to measure\n");
        return 1;
    }

    char mhz[32];
    bench::g_tsc_mhz = bench::measure_tsc_mhz();
    snprintf(mhz, sizeof mhz, "%.0f", bench::g_tsc_mhz);
    benchmark::AddCustomContext("tsc_mhz", mhz);
    benchmark::AddCustomContext("glibc_malloc", bench::g_glibc_library + " (verified: mallinfo2 + usable size)");
    benchmark::AddCustomContext("mimalloc", bench::g_mimalloc.available() ? bench::g_mimalloc.library : "unavailable");
    benchmark::AddCustomContext("jemalloc", bench::g_jemalloc.available() ? bench::g_jemalloc.library : "unavailable");
    benchmark::AddCustomContext("repetitions", std::to_string(bench::repetitions()));
#ifdef AETHELOS_BENCH_NO_SIMD
    benchmark::AddCustomContext("build",
                                "g++ " __VERSION__ ", -O2 -DNDEBUG, no AETHELOS_DEBUG_CHECKS, no SIMD "
                                "(-mgeneral-regs-only for src/, -fno-tree-vectorize for bench/)");
#else
    benchmark::AddCustomContext("build",
                                "g++ " __VERSION__ ", -O2 -DNDEBUG, no AETHELOS_DEBUG_CHECKS, "
                                "host SIMD allowed (AETHELOS_BENCH_HOST_SIMD=ON: not kernel-like)");
#endif
    benchmark::AddCustomContext("cycles", "TSC ticks per op: median over fenced batches (see bench_support.h)");
    const auto& trace = bench::ChurnTrace::get();
    char churn[160];
    snprintf(churn, sizeof churn, "seed %#llx, %u live blocks (%.1f MiB initially), %zu ops, mean size %.0f B",
             static_cast<unsigned long long>(bench::ChurnTrace::kSeed), bench::ChurnTrace::kSlots,
             static_cast<double>(trace.initial_bytes) / (1024.0 * 1024.0), trace.ops.size(), trace.mean_size);
    benchmark::AddCustomContext("churn_trace", churn);

    bench::register_pair_benchmarks();
    bench::register_frame_benchmarks();
    bench::register_churn_benchmarks();

    // Defaults first, so that the same flags given on the command line win.
    // Random interleaving runs the repetitions of all benchmarks in a shuffled
    // order: a burst of interference from elsewhere on the machine then hits
    // single repetitions of several benchmarks, which the medians absorb,
    // rather than every repetition of one benchmark.
    std::vector<char*> args{argv[0], const_cast<char*>("--benchmark_min_time=0.1"),
                            const_cast<char*>("--benchmark_enable_random_interleaving=true")};
    args.insert(args.end(), argv + 1, argv + argc);
    int arg_count = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&arg_count, args.data());
    if (benchmark::ReportUnrecognizedArguments(arg_count, args.data()))
        return 1;
    const bool color = isatty(STDOUT_FILENO) != 0;
    bench::TargetReporter reporter(color ? benchmark::ConsoleReporter::OO_ColorTabular
                                         : benchmark::ConsoleReporter::OO_Tabular);
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_targets();
    benchmark::Shutdown();
    return 0;
}
