// Alloc+free pairs: the slab caches and mm::Heap (kmalloc) against glibc,
// mimalloc and jemalloc at the same sizes, and the 64 B..64 KiB buddy (typical
// pair, fragmented pair and the split-from-the-top worst case).
//
//   pair/<size>/<allocator>   one allocation freed at once, repeated: the
//                             allocators' fastest path (same object each time)
//   batch/<size>/<allocator>  kBatch allocations, then their frees in the same
//                             order: walks the free lists over distinct objects
#include <memory>
#include <vector>

#include "bench_support.h"
#include "mm/buddy_allocator.h"
#include "mm/slab_cache.h"

namespace bench {

namespace {

constexpr size_t kSlabSizes[] = {16, 32, 64, 128, 256, 512, 1024, 2048};
constexpr size_t kMediumSizes[] = {4096, 16384, 65536}; // heap medium layer vs the mallocs
constexpr size_t kBatch = 128;
constexpr size_t kBuddyMin = 64;
constexpr size_t kBuddyMax = 64 * 1024;
constexpr size_t kBuddyRegion = 4 * 1024 * 1024; // the Rust original's heap size
constexpr size_t kBuddySizes[] = {64, 256, 1024, 4096, 16384, 65536};
constexpr size_t kHeapBytes = 64 * 1024 * 1024;

// ---- Allocators under test ----------------------------------------------------

// One SlabCache of exactly `size` bytes over a private page source.
class SlabPolicy {
public:
    static constexpr const char* kName = "slab";

    explicit SlabPolicy(size_t size) : m_pages(16 * 1024 * 1024)
    {
        mm::SlabCacheConfig config;
        config.name = "bench";
        config.object_size = size;
        config.debug = mm::SlabDebug::Off;
        m_ready = m_pages.ok() && m_cache.init(config, m_pages).has_value();
    }
    ~SlabPolicy() { (void)m_cache.release_all(); }
    bool ready() const { return m_ready; }
    void* allocate(size_t) { return m_cache.allocate(); }
    void release(void* p, size_t)
    {
        if (!m_cache.free(p)) [[unlikely]]
            fail("slab free rejected");
    }

private:
    BuddyPageSource m_pages;
    mm::SlabCache m_cache;
    bool m_ready = false;
};

// mm::Heap: size-class lookup + slab for small sizes, chunked buddy for medium.
class KmallocPolicy {
public:
    static constexpr const char* kName = "heap";

    KmallocPolicy() : m_fixture(kHeapBytes), m_policy{m_fixture.ok() ? &m_fixture.heap() : nullptr} { }
    bool ready() const { return m_policy.ready(); }
    void* allocate(size_t size) { return m_policy.allocate(size); }
    void release(void* p, size_t size) { m_policy.release(p, size); }

private:
    HeapFixture m_fixture;
    HeapPolicy m_policy;
};

// On the heap, not the stack: the allocator's hot fields then sit at the same
// page offsets in every run instead of wherever stack randomisation puts them
// (4 KiB aliasing against the slab's own hot lines made rare runs slower).
template <typename Policy>
std::unique_ptr<Policy> make_policy(size_t size)
{
    if constexpr (__is_same(Policy, SlabPolicy))
        return std::make_unique<Policy>(size);
    else
        return std::make_unique<Policy>();
}

// ---- Pair and batch -------------------------------------------------------------

template <typename Policy>
void pair(benchmark::State& state, size_t size)
{
    const std::unique_ptr<Policy> holder = make_policy<Policy>(size);
    Policy& allocator = *holder;
    if (!allocator.ready()) {
        state.SkipWithError("allocator not available");
        return;
    }
    // One live object keeps the allocator warm (a current slab, a chunk): the
    // loop measures fast paths, not slab or chunk creation.
    void* anchor = allocator.allocate(size);
    auto one_pair = [&allocator, size] {
        void* p = allocator.allocate(size);
        benchmark::DoNotOptimize(p);
        allocator.release(p, size);
    };
    TscCounter tsc;
    for (auto _ : state)
        one_pair();
    tsc.finish(state);
    sample_cycles(state, one_pair);
    allocator.release(anchor, size);
}

template <typename Policy>
void batch(benchmark::State& state, size_t size)
{
    const std::unique_ptr<Policy> holder = make_policy<Policy>(size);
    Policy& allocator = *holder;
    if (!allocator.ready()) {
        state.SkipWithError("allocator not available");
        return;
    }
    void* anchor = allocator.allocate(size);
    void* objects[kBatch];
    auto one_batch = [&allocator, &objects, size] {
        for (void*& p : objects) {
            p = allocator.allocate(size);
            benchmark::DoNotOptimize(p);
        }
        for (void* p : objects)
            allocator.release(p, size);
    };
    one_batch(); // first touch of the slabs/pages outside the timed loop
    TscCounter tsc;
    for (auto _ : state)
        one_batch();
    tsc.finish(state);
    // Time per pair from CPU time (see docs/performance.md), and cycles per pair.
    state.counters["pair_time"] =
        benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
    sample_cycles(state, one_batch, kBatch);
    allocator.release(anchor, size);
}

// ---- Buddy ----------------------------------------------------------------------

class BuddyFixture {
public:
    BuddyFixture(size_t region_bytes, size_t min_block, size_t max_block) : m_region(region_bytes, max_block)
    {
        if (m_region.data() == nullptr)
            return;
        m_metadata.resize(mm::BuddyAllocator::metadata_bytes_needed(region_bytes, min_block, max_block));
        m_ok = m_buddy.init(m_region.data(), region_bytes, min_block, max_block, m_metadata.data(), m_metadata.size())
                   .has_value();
    }
    bool ok() const { return m_ok; }
    mm::BuddyAllocator& buddy() { return m_buddy; }

private:
    HostBuffer m_region;
    std::vector<uint8_t> m_metadata;
    mm::BuddyAllocator m_buddy;
    bool m_ok = false;
};

template <typename Setup>
void buddy_pair(benchmark::State& state, size_t size, size_t region, Setup&& setup)
{
    const auto fixture = std::make_unique<BuddyFixture>(region, kBuddyMin, kBuddyMax); // see make_policy
    if (!fixture->ok()) {
        state.SkipWithError("buddy init failed");
        return;
    }
    mm::BuddyAllocator& buddy = fixture->buddy();
    setup(buddy);
    auto one_pair = [&buddy, size] {
        auto block = buddy.allocate(size);
        if (!block) [[unlikely]]
            fail("buddy allocation failed");
        benchmark::DoNotOptimize(*block);
        if (!buddy.free(*block)) [[unlikely]]
            fail("buddy free rejected");
    };
    TscCounter tsc;
    for (auto _ : state)
        one_pair();
    tsc.finish(state);
    sample_cycles(state, one_pair);
}

// Typical pair: one min block is pinned, so every order has exactly one free
// block and a pair of any size neither splits nor merges.
void pin_one_block(mm::BuddyAllocator& buddy) { (void)buddy.allocate(kBuddyMin); }

// Fragmented pair: a fixed random mix of block sizes filled to 75% and a third
// of them freed again (about 50% occupancy). A pair takes the smallest free
// block that fits, splitting it as needed, and the free merges it back.
void fragment(mm::BuddyAllocator& buddy)
{
    SplitMix64 rng(0xb0dd1e5ull);
    std::vector<void*> blocks;
    while (buddy.bytes_used() < buddy.bytes_total() / 4 * 3) {
        // Orders 0..10, each half as likely as the one below.
        unsigned order = 0;
        while (order < 10 && (rng.next() & 1))
            ++order;
        auto block = buddy.allocate_order(order);
        if (block)
            blocks.push_back(*block);
    }
    for (void* block : blocks) {
        if (rng.below(3) == 0)
            (void)buddy.free(block);
    }
}

// Worst case: a region of exactly one fully coalesced 64 KiB block. Allocating
// 64 B splits it down through all 10 orders; the free merges all the way back.
void buddy_worst_case(benchmark::State& state)
{
    buddy_pair(state, kBuddyMin, kBuddyMax, [](mm::BuddyAllocator&) {});
}

template <template <typename> class Kind>
void register_kind(const char* kind)
{
    for (size_t size : kSlabSizes) {
        const std::string prefix = std::string(kind) + "/" + std::to_string(size) + "/";
        add(prefix + SlabPolicy::kName, [size](benchmark::State& s) { Kind<SlabPolicy>::run(s, size); });
        add(prefix + KmallocPolicy::kName, [size](benchmark::State& s) { Kind<KmallocPolicy>::run(s, size); });
        add(prefix + Mimalloc::kName, [size](benchmark::State& s) { Kind<Mimalloc>::run(s, size); });
        add(prefix + Jemalloc::kName, [size](benchmark::State& s) { Kind<Jemalloc>::run(s, size); });
        add(prefix + GlibcMalloc::kName, [size](benchmark::State& s) { Kind<GlibcMalloc>::run(s, size); });
    }
    for (size_t size : kMediumSizes) {
        const std::string prefix = std::string(kind) + "/" + std::to_string(size) + "/";
        add(prefix + KmallocPolicy::kName, [size](benchmark::State& s) { Kind<KmallocPolicy>::run(s, size); });
        add(prefix + Mimalloc::kName, [size](benchmark::State& s) { Kind<Mimalloc>::run(s, size); });
        add(prefix + Jemalloc::kName, [size](benchmark::State& s) { Kind<Jemalloc>::run(s, size); });
        add(prefix + GlibcMalloc::kName, [size](benchmark::State& s) { Kind<GlibcMalloc>::run(s, size); });
    }
}

template <typename Policy>
struct PairKind {
    static void run(benchmark::State& state, size_t size) { pair<Policy>(state, size); }
};
template <typename Policy>
struct BatchKind {
    static void run(benchmark::State& state, size_t size) { batch<Policy>(state, size); }
};

} // namespace

void register_pair_benchmarks()
{
    register_kind<PairKind>("pair");
    register_kind<BatchKind>("batch");
    for (size_t size : kBuddySizes) {
        add("buddy/pair/" + std::to_string(size),
            [size](benchmark::State& s) { buddy_pair(s, size, kBuddyRegion, pin_one_block); });
    }
    for (size_t size : kBuddySizes) {
        add("buddy/fragmented-pair/" + std::to_string(size),
            [size](benchmark::State& s) { buddy_pair(s, size, kBuddyRegion, fragment); });
    }
    add("buddy/worst-case/64", buddy_worst_case);
}

} // namespace bench
