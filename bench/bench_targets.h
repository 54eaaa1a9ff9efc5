#pragma once
// The console reporter used by main(): the usual table, plus a closing summary
// that checks the medians against the Mana Pool's targets (issue 3):
//
//   Slab pair, 16-1024 B     at least as fast as mimalloc and >= 3x faster than glibc
//   Buddy pair               median <= 40 ns
//   Buddy worst case         <= 150 ns (split from the maximum order)
//   Frame pair, order 0      <= 100 cycles
#include <benchmark/benchmark.h>

#include <map>
#include <string>

namespace bench {

class TargetReporter : public benchmark::ConsoleReporter {
public:
    explicit TargetReporter(OutputOptions options) : ConsoleReporter(options) { }

    void ReportRuns(const std::vector<Run>& runs) override;
    // Prints the targets table to the reporter's output stream.
    void print_targets();

private:
    struct Result {
        double real_ns = 0;
        double cpu_ns = 0;
        double cycles = -1;  // the "cycles" counter, -1 when absent
        double pair_ns = -1; // the batch benchmarks' "pair_time" counter, in ns
        bool median = false; // an aggregate median (else a single run)
    };

    const Result* find(const std::string& name) const;
    const Result* find_min(const std::string& name) const;

    std::map<std::string, Result> m_results;  // medians, by benchmark name without the repetition suffix
    std::map<std::string, Result> m_minimums; // the "min" aggregates
};

} // namespace bench
