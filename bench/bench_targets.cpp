// TargetReporter: console table + the targets summary (see bench_targets.h).
#include "bench_targets.h"

#include <stdio.h>

#include <algorithm>
#include <ostream>

namespace bench {

namespace {

constexpr int kSlabTargetSizes[] = {16, 32, 64, 128, 256, 512, 1024};
constexpr int kBuddySizes[] = {64, 256, 1024, 4096, 16384, 65536};
constexpr double kBuddyPairTargetNs = 40;
constexpr double kBuddyWorstTargetNs = 150;
constexpr double kFrameTargetCycles = 100;
constexpr double kGlibcFactor = 3;

std::string text(const char* fmt, double a = 0, double b = 0, double c = 0, double d = 0, double e = 0)
{
    char buf[256];
    snprintf(buf, sizeof buf, fmt, a, b, c, d, e);
    return buf;
}

const char* verdict(bool met) { return met ? "MET" : "MISSED"; }

} // namespace

void TargetReporter::ReportRuns(const std::vector<Run>& runs)
{
    for (const Run& run : runs) {
        if (run.error_occurred)
            continue;
        const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
        const bool minimum = run.run_type == Run::RT_Aggregate && run.aggregate_name == "min";
        const bool single = run.run_type == Run::RT_Iteration && run.repetitions <= 1;
        if (!median && !minimum && !single)
            continue;
        Result result;
        result.real_ns = run.GetAdjustedRealTime();
        result.cpu_ns = run.GetAdjustedCPUTime();
        result.median = median;
        if (auto it = run.counters.find("cycles"); it != run.counters.end())
            result.cycles = it->second.value;
        if (auto it = run.counters.find("pair_time"); it != run.counters.end())
            result.pair_ns = it->second.value * 1e9;
        (minimum ? m_minimums : m_results)[run.run_name.function_name] = result;
    }
    ConsoleReporter::ReportRuns(runs);
}

const TargetReporter::Result* TargetReporter::find(const std::string& name) const
{
    auto it = m_results.find(name);
    return it == m_results.end() ? nullptr : &it->second;
}

const TargetReporter::Result* TargetReporter::find_min(const std::string& name) const
{
    auto it = m_minimums.find(name);
    return it == m_minimums.end() ? nullptr : &it->second;
}

void TargetReporter::print_targets()
{
    std::ostream& out = GetOutputStream();
    out << "\nMana Pool targets (issue 3). Medians of the repetitions; times are CPU time per operation\n"
           "(wall time on a shared machine includes time the thread was preempted), cycles are TSC ticks.\n\n";

    // Slab pair vs mimalloc and glibc.
    bool slab_complete = true;
    bool slab_vs_mimalloc = true;
    bool slab_vs_glibc = true;
    bool have_min = true;
    double min_vs_mi = 1e9;
    double min_vs_glibc = 1e9;
    out << "  Slab pair 16-1024 B: at least as fast as mimalloc, >= 3x faster than glibc (speed ratios from CPU time)\n"
           "      size  slab ns (cyc)  mimalloc ns (cyc)  glibc ns (cyc)  vs mimalloc  vs glibc"
           "   batch of 128: vs mimalloc / vs glibc   heap (kmalloc path) ns (cyc)\n";
    for (int size : kSlabTargetSizes) {
        const std::string prefix = "pair/" + std::to_string(size) + "/";
        const Result* slab = find(prefix + "slab");
        const Result* mi = find(prefix + "mimalloc");
        const Result* glibc = find(prefix + "glibc");
        if (slab == nullptr || mi == nullptr || glibc == nullptr || slab->cpu_ns <= 0) {
            slab_complete = false;
            out << text("    %6.0f  (not run)\n", size);
            continue;
        }
        const double vs_mi = mi->cpu_ns / slab->cpu_ns;
        const double vs_glibc = glibc->cpu_ns / slab->cpu_ns;
        slab_vs_mimalloc = slab_vs_mimalloc && vs_mi >= 1.0;
        slab_vs_glibc = slab_vs_glibc && vs_glibc >= kGlibcFactor;
        const Result* slab_min = find_min(prefix + "slab");
        const Result* mi_min = find_min(prefix + "mimalloc");
        const Result* glibc_min = find_min(prefix + "glibc");
        if (slab_min != nullptr && mi_min != nullptr && glibc_min != nullptr && slab_min->cpu_ns > 0) {
            min_vs_mi = std::min(min_vs_mi, mi_min->cpu_ns / slab_min->cpu_ns);
            min_vs_glibc = std::min(min_vs_glibc, glibc_min->cpu_ns / slab_min->cpu_ns);
        } else {
            have_min = false;
        }
        out << text("    %6.0f  %5.2f (%5.1f)", size, slab->cpu_ns, slab->cycles)
            << text("      %5.2f (%5.1f)", mi->cpu_ns, mi->cycles)
            << text("   %5.2f (%5.1f)", glibc->cpu_ns, glibc->cycles) << text("  %10.2fx  %7.2fx", vs_mi, vs_glibc);
        const std::string batch = "batch/" + std::to_string(size) + "/";
        const Result* bslab = find(batch + "slab");
        const Result* bmi = find(batch + "mimalloc");
        const Result* bglibc = find(batch + "glibc");
        if (bslab != nullptr && bmi != nullptr && bglibc != nullptr && bslab->pair_ns > 0)
            out << text("   %14.2fx / %.2fx", bmi->pair_ns / bslab->pair_ns, bglibc->pair_ns / bslab->pair_ns);
        else
            out << "                      ";
        if (const Result* heap = find(prefix + "heap"))
            out << text("          %6.2f (%5.1f)", heap->cpu_ns, heap->cycles);
        out << "\n";
    }
    if (slab_complete) {
        out << "    => as fast as mimalloc: " << verdict(slab_vs_mimalloc)
            << "; >= 3x glibc: " << verdict(slab_vs_glibc) << "\n";
        if (have_min)
            out << text("       (fastest repetitions instead of medians: worst size %.2fx mimalloc, %.2fx glibc)\n",
                        min_vs_mi, min_vs_glibc);
        out << "\n";
    } else {
        out << "    => incomplete (filtered out)\n\n";
    }

    // Buddy pair.
    double worst_pair = -1;
    int worst_size = 0;
    for (int size : kBuddySizes) {
        const Result* r = find("buddy/pair/" + std::to_string(size));
        if (r != nullptr && r->cpu_ns > worst_pair) {
            worst_pair = r->cpu_ns;
            worst_size = size;
        }
    }
    double worst_fragmented = -1;
    for (int size : kBuddySizes) {
        const Result* r = find("buddy/fragmented-pair/" + std::to_string(size));
        if (r != nullptr)
            worst_fragmented = std::max(worst_fragmented, r->cpu_ns);
    }
    if (worst_pair >= 0) {
        out << text("  Buddy pair (64 B-64 KiB) median <= 40 ns: slowest size %.0f B at %.2f ns", worst_size,
                    worst_pair);
        if (worst_fragmented >= 0)
            out << text("; fragmented heap: slowest %.2f ns", worst_fragmented);
        out << "  => " << verdict(worst_pair <= kBuddyPairTargetNs && worst_fragmented <= kBuddyPairTargetNs) << "\n";
    } else {
        out << "  Buddy pair: not run\n";
    }

    // Buddy worst case.
    if (const Result* r = find("buddy/worst-case/64")) {
        out << text("  Buddy worst case (64 B from one free 64 KiB block, 10 splits + 10 merges) <= 150 ns: %.2f ns"
                    " (%.1f cycles)",
                    r->cpu_ns, r->cycles)
            << "  => " << verdict(r->cpu_ns <= kBuddyWorstTargetNs) << "\n";
    } else {
        out << "  Buddy worst case: not run\n";
    }

    // Frame pair.
    if (const Result* r = find("frame/pair/order0")) {
        out << text("  Frame pair order 0 <= 100 cycles: %.1f cycles (%.2f ns)", r->cycles, r->cpu_ns) << "  => "
            << verdict(r->cycles >= 0 && r->cycles <= kFrameTargetCycles) << "\n";
        if (const Result* r9 = find("frame/pair/order9"))
            out << text("  Frame pair order 9 (no target): %.1f cycles (%.2f ns)\n", r9->cycles, r9->cpu_ns);
    } else {
        out << "  Frame pair: not run\n";
    }
    out.flush();
}

} // namespace bench
