// Shared helpers for the host benchmarks (see bench_support.h).
#include "bench_support.h"

#include <stdio.h>
#include <time.h>

namespace bench {

namespace {

long env_long(const char* name, long fallback)
{
    const char* text = getenv(name);
    if (text == nullptr || *text == '\0')
        return fallback;
    char* end = nullptr;
    const long value = strtol(text, &end, 10);
    return (end != nullptr && *end == '\0' && value > 0) ? value : fallback;
}

uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

} // namespace

int repetitions() { return static_cast<int>(env_long("AETHELOS_BENCH_REPETITIONS", kDefaultRepetitions)); }

double minimum(const std::vector<double>& values)
{
    return values.empty() ? 0.0 : *std::min_element(values.begin(), values.end());
}

uint64_t median(std::vector<uint64_t>& values)
{
    if (values.empty())
        return 0;
    auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
    std::nth_element(values.begin(), middle, values.end());
    return *middle;
}

double g_tsc_mhz = 2000; // replaced by main() with the measured rate

uint64_t rdtsc_overhead()
{
    static const uint64_t overhead = [] {
        std::vector<uint64_t> samples(kCycleSamples * 5);
        for (uint64_t& sample : samples) {
            const uint64_t t0 = fenced_rdtsc();
            const uint64_t t1 = fenced_rdtsc();
            sample = t1 - t0;
        }
        return median(samples);
    }();
    return overhead;
}

double measure_tsc_mhz()
{
    const uint64_t t0 = monotonic_ns();
    const uint64_t c0 = __rdtsc();
    while (monotonic_ns() - t0 < 100000000ull) { }
    const uint64_t c1 = __rdtsc();
    const uint64_t t1 = monotonic_ns();
    return static_cast<double>(c1 - c0) * 1000.0 / static_cast<double>(t1 - t0);
}

HostBuffer::HostBuffer(size_t size, size_t alignment) : m_size(size)
{
    m_data = static_cast<uint8_t*>(aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment));
    if (m_data != nullptr)
        memset(m_data, 0, size); // fault every page in now
}

BuddyPageSource::BuddyPageSource(size_t bytes) : m_region(bytes, size_t{4096} << kMaxOrder)
{
    constexpr size_t kMin = 4096;
    constexpr size_t kMax = kMin << kMaxOrder;
    if (m_region.data() == nullptr)
        return;
    m_metadata.resize(mm::BuddyAllocator::metadata_bytes_needed(bytes, kMin, kMax));
    m_ok = m_buddy.init(m_region.data(), bytes, kMin, kMax, m_metadata.data(), m_metadata.size()).has_value();
}

void fail(const char* what)
{
    fprintf(stderr, "bench: FATAL: %s\n", what);
    abort();
}

FramePageSource::FramePageSource(size_t bytes)
    : m_memory(bytes, mm::kFrameMaxBlock),
      m_frames(std::make_unique<mm::FrameAllocator>(reinterpret_cast<uintptr_t>(m_memory.data())))
{
    if (m_memory.data() == nullptr)
        return;
    const mm::PhysRange usable = mm::make_phys_range(0, bytes);
    m_ok = m_frames->add_range(usable).has_value() && m_frames->zone_count() == 1;
}

void* FramePageSource::allocate_pages(unsigned order)
{
    auto frame = m_frames->allocate(order);
    return frame ? m_frames->to_virt(*frame) : nullptr;
}

void FramePageSource::free_pages(void* p, unsigned order)
{
    if (!m_frames->free(m_frames->to_phys(p), order)) [[unlikely]]
        fail("frame free rejected");
}

HeapFixture::HeapFixture(size_t bytes) : m_pages(bytes), m_tags(bytes / mm::kHeapPageSize)
{
    if (!m_pages.ok())
        return;
    mm::HeapConfig config;
    config.window_base = m_pages.window_base();
    config.window_bytes = m_pages.window_bytes();
    config.tags = m_tags.data();
    config.tag_bytes = m_tags.size();
    config.debug = mm::SlabDebug::Off;
    m_heap = std::make_unique<mm::Heap>(m_pages, config);
}

uint32_t churn_size(SplitMix64& rng)
{
    const uint64_t pick = rng.below(100);
    if (pick < 80)
        return static_cast<uint32_t>(8 + rng.below(ChurnTrace::kSmallMax - 8 + 1));
    if (pick < 95)
        return static_cast<uint32_t>(ChurnTrace::kSmallMax + 1 +
                                     rng.below(ChurnTrace::kMediumMax - ChurnTrace::kSmallMax));
    return static_cast<uint32_t>(ChurnTrace::kMediumMax + 1 +
                                 rng.below(ChurnTrace::kLargeMax - ChurnTrace::kMediumMax));
}

const ChurnTrace& ChurnTrace::get()
{
    static const ChurnTrace trace = [] {
        ChurnTrace t;
        SplitMix64 rng(kSeed);
        t.initial.reserve(kSlots);
        for (uint32_t i = 0; i < kSlots; ++i) {
            t.initial.push_back(churn_size(rng));
            t.initial_bytes += t.initial.back();
        }
        t.ops.reserve(kOps);
        uint64_t total = 0;
        for (size_t i = 0; i < kOps; ++i) {
            const auto slot = static_cast<uint32_t>(rng.below(kSlots));
            const uint32_t size = churn_size(rng);
            total += size;
            t.ops.push_back({slot, size});
        }
        t.mean_size = static_cast<double>(total) / static_cast<double>(kOps);
        return t;
    }();
    return trace;
}

} // namespace bench
