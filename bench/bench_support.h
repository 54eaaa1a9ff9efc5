#pragma once
// Shared helpers for the Mana Pool host benchmarks: registration defaults, the
// TSC counter, host memory for the allocators under test, the reference mallocs
// as allocator policies, and the random-size churn trace.
#include <benchmark/benchmark.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "mm/buddy_allocator.h"
#include "mm/frame_allocator.h"
#include "mm/heap.h"
#include "mm/page_source.h"
#include "system_allocators.h"

namespace bench {

// ---- Registration ----------------------------------------------------------

// Every benchmark runs repetitions() times (default 5; the environment
// variable AETHELOS_BENCH_REPETITIONS overrides it) and reports only the
// aggregates: mean, median, stddev, cv, min. docs/performance.md quotes medians.
// main() makes --benchmark_min_time=0.1 and random interleaving of the
// repetitions the defaults (the command line overrides both).
inline constexpr int kDefaultRepetitions = 5;
int repetitions();

// The fastest repetition: on a shared machine, bursts of interference can
// slow a whole benchmark (all its repetitions); the minimum is then the better
// estimate of the code's own cost. Reported next to the median, never instead.
double minimum(const std::vector<double>& values);

inline benchmark::internal::Benchmark* configure(benchmark::internal::Benchmark* b)
{
    return b->Repetitions(repetitions())
        ->ReportAggregatesOnly(true)
        ->ComputeStatistics("min", minimum)
        ->Unit(benchmark::kNanosecond);
}

template <typename Fn>
benchmark::internal::Benchmark* add(const std::string& name, Fn&& fn)
{
    return configure(benchmark::RegisterBenchmark(name.c_str(), static_cast<Fn&&>(fn)));
}

// Registration entry points, one per file, called by main() in this order.
void register_pair_benchmarks();  // bench_pairs.cpp: slab caches vs the mallocs, buddy pairs and worst case
void register_frame_benchmarks(); // bench_frames.cpp: FrameAllocator order 0 / order 9
void register_churn_benchmarks(); // bench_churn.cpp: the random-size trace on every general allocator

// ---- Cycles ----------------------------------------------------------------
//
// Two counters, both in time-stamp-counter ticks (the TSC runs at a constant
// reference rate, tsc_mhz in the JSON context, not the core's momentary clock):
//   cycles   per-op median over many short batches of kCycleBatch operations
//            (at least kCycleSamples batches, spread over at least kCycleWindowUs),
//            each batch bracketed by fenced rdtsc reads (the empty bracket's
//            cost removed). Batches, not single ops: on this AMD EPYC guest the
//            TSC advances in steps of ~26 ticks (10 ns), coarser than one pair.
//            Robust on a shared machine: a batch that was preempted is an
//            outlier, not part of the median.
//   tsc_avg  ticks across the whole timed loop / iterations: the same span as
//            the Time column, so it includes any time the thread was preempted.

class TscCounter {
public:
    TscCounter() : m_start(__rdtsc()) { }
    void finish(benchmark::State& state) const
    {
        const uint64_t ticks = __rdtsc() - m_start;
        state.counters["tsc_avg"] = benchmark::Counter(static_cast<double>(ticks), benchmark::Counter::kAvgIterations);
    }

private:
    uint64_t m_start;
};

inline uint64_t fenced_rdtsc()
{
    _mm_lfence();
    const uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

// Median of `values` (reordered).
uint64_t median(std::vector<uint64_t>& values);

// Median ticks of an empty fenced bracket; measured once.
uint64_t rdtsc_overhead();

inline constexpr size_t kCycleSamples = 2001;      // at least this many brackets...
inline constexpr uint64_t kCycleWindowUs = 20000;  // ...and at least this long, so a short
inline constexpr size_t kCycleMaxSamples = 200001; // disturbance cannot own the median
inline constexpr size_t kCycleBatch = 64;

// TSC ticks per microsecond, measured once at startup (measure_tsc_mhz).
extern double g_tsc_mhz;

// Runs op() after the timed loop in brackets of about kCycleBatch operations
// (see above) and stores the median per-operation ticks, bracket overhead
// removed, as the "cycles" counter. ops_per_call: operations one op() performs.
template <typename Op>
void sample_cycles(benchmark::State& state, Op&& op, size_t ops_per_call = 1)
{
    if (state.error_occurred())
        return;
    const size_t calls = ops_per_call >= kCycleBatch ? 1 : kCycleBatch / ops_per_call;
    const uint64_t window = static_cast<uint64_t>(g_tsc_mhz * kCycleWindowUs);
    std::vector<uint64_t> samples;
    samples.reserve(kCycleSamples);
    const uint64_t start = __rdtsc();
    while (samples.size() < kCycleMaxSamples && (samples.size() < kCycleSamples || __rdtsc() - start < window)) {
        const uint64_t t0 = fenced_rdtsc();
        for (size_t i = 0; i < calls; ++i)
            op();
        const uint64_t t1 = fenced_rdtsc();
        samples.push_back(t1 - t0);
    }
    const uint64_t ticks = median(samples);
    const uint64_t overhead = rdtsc_overhead();
    state.counters["cycles"] =
        static_cast<double>(ticks > overhead ? ticks - overhead : 0) / static_cast<double>(calls * ops_per_call);
}

// A benchmark setup or invariant failed: no numbers are better than wrong ones.
[[noreturn]] void fail(const char* what);

// Measured once at startup against CLOCK_MONOTONIC.
double measure_tsc_mhz();

// ---- Host memory -----------------------------------------------------------

// A zeroed, pre-faulted buffer aligned to `alignment`, like RAM the kernel
// reaches through the physmap: no page faults inside timed loops.
class HostBuffer {
public:
    HostBuffer(size_t size, size_t alignment);
    ~HostBuffer() { ::free(m_data); }
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;

    uint8_t* data() const { return m_data; }
    size_t size() const { return m_size; }

private:
    uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

// A PageSource over a private 4 KiB..4 MiB buddy in a HostBuffer, i.e. what
// the kernel's frame allocator + physmap give the heap, without glibc on the path.
class BuddyPageSource final : public mm::PageSource {
public:
    static constexpr unsigned kMaxOrder = 10; // 4 MiB blocks

    explicit BuddyPageSource(size_t bytes);
    BuddyPageSource(const BuddyPageSource&) = delete;
    BuddyPageSource& operator=(const BuddyPageSource&) = delete;
    ~BuddyPageSource() = default;

    bool ok() const { return m_ok; }
    void* allocate_pages(unsigned order) override
    {
        auto block = m_buddy.allocate_order(order);
        return block ? *block : nullptr;
    }
    void free_pages(void* p, unsigned) override { (void)m_buddy.free(p); }
    const mm::BuddyAllocator& buddy() const { return m_buddy; }

private:
    HostBuffer m_region;
    std::vector<uint8_t> m_metadata;
    mm::BuddyAllocator m_buddy;
    bool m_ok = false;
};

// mm::FrameAllocator over a HostBuffer standing in for physical memory from
// address 0 (virt = phys + buffer address), as a PageSource: the kernel heap's
// configuration (frame allocator + physmap).
class FramePageSource final : public mm::PageSource {
public:
    explicit FramePageSource(size_t bytes);
    FramePageSource(const FramePageSource&) = delete;
    FramePageSource& operator=(const FramePageSource&) = delete;
    ~FramePageSource() = default;

    bool ok() const { return m_ok; }
    void* allocate_pages(unsigned order) override;
    void free_pages(void* p, unsigned order) override;
    uintptr_t window_base() const { return reinterpret_cast<uintptr_t>(m_memory.data()); }
    size_t window_bytes() const { return m_memory.size(); }

private:
    HostBuffer m_memory;
    std::unique_ptr<mm::FrameAllocator> m_frames; // ~70 KiB of zone tables
    bool m_ok = false;
};

// mm::Heap (kmalloc without the kernel's lock) over a FramePageSource, debug
// checks off as in a release kernel.
class HeapFixture {
public:
    explicit HeapFixture(size_t bytes);
    HeapFixture(const HeapFixture&) = delete;
    HeapFixture& operator=(const HeapFixture&) = delete;

    bool ok() const { return m_heap != nullptr && m_heap->status().has_value(); }
    mm::Heap& heap() { return *m_heap; }

private:
    FramePageSource m_pages;
    std::vector<uint8_t> m_tags;
    std::unique_ptr<mm::Heap> m_heap;
};

// ---- Allocator policies --------------------------------------------------------
// allocate(size) / release(ptr, size) for every allocator under test. The Mana
// Pool ones check each free like the kernel wrappers do (which panic).

struct HeapPolicy {
    static constexpr const char* kName = "heap";
    mm::Heap* heap;
    bool ready() const { return heap != nullptr; }
    void* allocate(size_t size) { return heap->allocate(size); }
    void release(void* p, size_t)
    {
        if (!heap->free(p)) [[unlikely]]
            fail("heap free rejected");
    }
};

// ---- Reference mallocs as allocator policies --------------------------------

struct GlibcMalloc {
    static constexpr const char* kName = "glibc";
    bool ready() const { return true; }
    void* allocate(size_t size) { return ::malloc(size); }
    void release(void* p, size_t) { ::free(p); }
};

struct Mimalloc {
    static constexpr const char* kName = "mimalloc";
    bool ready() const { return g_mimalloc.available(); }
    void* allocate(size_t size) { return g_mimalloc.malloc_fn(size); }
    void release(void* p, size_t) { g_mimalloc.free_fn(p); }
};

struct Jemalloc {
    static constexpr const char* kName = "jemalloc";
    bool ready() const { return g_jemalloc.available(); }
    void* allocate(size_t size) { return g_jemalloc.malloc_fn(size); }
    void release(void* p, size_t) { g_jemalloc.free_fn(p); }
};

// ---- Random-size churn trace -------------------------------------------------

// Deterministic generator (splitmix64) so every allocator and every machine
// replays the same sizes.
class SplitMix64 {
public:
    explicit SplitMix64(uint64_t seed) : m_state(seed) { }
    uint64_t next()
    {
        uint64_t z = (m_state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t bound) { return next() % bound; }

private:
    uint64_t m_state;
};

struct ChurnOp {
    uint32_t slot; // which live block is replaced
    uint32_t size; // size of its replacement
};

struct ChurnTrace {
    static constexpr uint64_t kSeed = 0x4d616e61506f6f6cull; // "ManaPool"
    static constexpr uint32_t kSlots = 2048;                 // live blocks (working set)
    static constexpr size_t kOps = size_t{1} << 20;          // replayed cyclically
    // Size mix: 80% small (8..2048 B), 15% medium (2 KiB..64 KiB], 5% large (64 KiB..256 KiB].
    static constexpr uint32_t kSmallMax = 2048;
    static constexpr uint32_t kMediumMax = 64 * 1024;
    static constexpr uint32_t kLargeMax = 256 * 1024;

    std::vector<uint32_t> initial; // kSlots sizes filling the working set before timing
    std::vector<ChurnOp> ops;
    double mean_size = 0;
    uint64_t initial_bytes = 0;

    static const ChurnTrace& get(); // generated once
};

uint32_t churn_size(SplitMix64& rng);

} // namespace bench
