// Host tests for mm::Heap, the generic core of the Mana Pool's kernel heap.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mm/heap.h"
#include "support/intrusive_list_access.h"

using mm::BuddyAllocator;
using mm::Heap;
using mm::HeapCheckReport;
using mm::HeapConfig;
using mm::HeapCorruption;
using mm::HeapError;
using mm::HeapLayer;
using mm::HeapStats;
using mm::HeapViolation;
using mm::MediumCorruption;
using mm::SlabDebug;

namespace mm {
// Reaches into the heap to corrupt it on purpose (invariant checker tests).
struct HeapTestAccess {
    static uint8_t& tag(Heap& h, const void* p)
    {
        return h.m_config.tags[(reinterpret_cast<uintptr_t>(p) - h.m_config.window_base) >> 12];
    }
    static uint64_t& bucket_mask(Heap& h) { return h.m_bucket_mask; }
    static uint64_t& used(Heap& h) { return h.m_counters.bytes_used; }
    static uint64_t& chunk_magic(Heap& h, const void* p)
    {
        return reinterpret_cast<Heap::Chunk*>(reinterpret_cast<uintptr_t>(p) & ~(h.chunk_bytes() - 1))->magic;
    }
    static size_t chunk_meta_bytes(const Heap& h) { return h.m_chunk_meta_bytes; }
    static auto* chunk(Heap& h, const void* p)
    {
        return reinterpret_cast<Heap::Chunk*>(reinterpret_cast<uintptr_t>(p) & ~(h.chunk_bytes() - 1));
    }
    static uint8_t& chunk_list(Heap& h, const void* p) { return chunk(h, p)->list; }
    static BuddyAllocator& chunk_buddy(Heap& h, const void* p) { return chunk(h, p)->buddy; }
    static size_t& empty_count(Heap& h) { return lib::IntrusiveListTestAccess::size(h.m_empty); }
};
} // namespace mm

using Access = mm::HeapTestAccess;

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;
constexpr size_t kPage = 4096;

uintptr_t addr_of(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// A PageSource over a private buddy of 4 KiB .. 4 MiB pages, with an optional
// page limit (for OOM) and a record of every live block (so a wrong free order
// or a leak is seen).
class TestPageSource final : public mm::PageSource {
public:
    static constexpr unsigned kMaxOrder = 10;

    explicit TestPageSource(size_t bytes) : m_bytes(bytes)
    {
        m_memory = static_cast<unsigned char*>(std::aligned_alloc(4 * MiB, bytes));
        REQUIRE(m_memory != nullptr);
        m_meta.resize(mm::BuddyAllocator::metadata_bytes_needed(m_memory, bytes, kPage, kPage << kMaxOrder));
        REQUIRE(m_buddy.init(m_memory, bytes, kPage, kPage << kMaxOrder, m_meta.data(), m_meta.size()).has_value());
        m_limit = bytes / kPage;
        m_initial = buddyinfo();
    }
    ~TestPageSource() { std::free(m_memory); }
    TestPageSource(const TestPageSource&) = delete;
    TestPageSource& operator=(const TestPageSource&) = delete;

    void* allocate_pages(unsigned order) override
    {
        ++m_calls;
        if (order > kMaxOrder || m_used + (uint64_t{1} << order) > m_limit)
            return nullptr;
        auto r = m_buddy.allocate_order(order);
        if (!r)
            return nullptr;
        m_used += uint64_t{1} << order;
        m_live[*r] = order;
        return *r;
    }

    void free_pages(void* p, unsigned order) override
    {
        auto it = m_live.find(p);
        if (it == m_live.end() || it->second != order) {
            ++m_errors;
            return;
        }
        m_live.erase(it);
        if (!m_buddy.free_sized(p, kPage << order))
            ++m_errors;
        m_used -= uint64_t{1} << order;
    }

    uint64_t free_page_count() const
    {
        return std::min<uint64_t>(m_limit - std::min(m_limit, m_used), m_buddy.bytes_free() / kPage);
    }
    static uint64_t free_pages_fn(void* context) { return static_cast<TestPageSource*>(context)->free_page_count(); }
    static void stats_fn(void* context, mm::HeapSourceStats& out)
    {
        auto* self = static_cast<TestPageSource*>(context);
        out.available = true;
        out.total_pages = self->m_bytes / kPage;
        out.free_pages = self->free_page_count();
        out.order_count = kMaxOrder + 1;
        for (unsigned k = 0; k <= kMaxOrder; ++k) {
            out.free_blocks[k] = self->m_buddy.free_blocks(k);
            out.fragmentation_index[k] = self->m_buddy.fragmentation_index(k);
        }
    }

    std::vector<uint64_t> buddyinfo() const
    {
        std::vector<uint64_t> v;
        for (unsigned k = 0; k <= kMaxOrder; ++k)
            v.push_back(m_buddy.free_blocks(k));
        return v;
    }
    // Everything given back, and the buddy coalesced to exactly its start.
    bool at_initial_state() const
    {
        return m_used == 0 && m_live.empty() && m_errors == 0 && buddyinfo() == m_initial &&
            m_buddy.check_invariants().ok();
    }

    void set_limit_pages(uint64_t pages) { m_limit = pages; }
    uintptr_t base() const { return addr_of(m_memory); }
    size_t bytes() const { return m_bytes; }
    uint64_t used_pages() const { return m_used; }
    uint64_t errors() const { return m_errors; }
    uint64_t calls() const { return m_calls; }

private:
    size_t m_bytes;
    unsigned char* m_memory = nullptr;
    std::vector<unsigned char> m_meta;
    mm::BuddyAllocator m_buddy;
    uint64_t m_limit = 0;
    uint64_t m_used = 0;
    uint64_t m_errors = 0;
    uint64_t m_calls = 0;
    std::unordered_map<void*, unsigned> m_live;
    std::vector<uint64_t> m_initial;
};

// Collects corruption reports as text and structure.
struct Reports {
    std::vector<std::string> text;
    std::vector<mm::MediumCorruptionReport> medium;
    std::vector<mm::SlabCorruptionReport> slab;
    std::vector<HeapLayer> layers;

    static void record(void* context, const HeapCorruption& c)
    {
        auto* self = static_cast<Reports*>(context);
        char buf[512];
        mm::format_corruption(c, buf, sizeof(buf));
        self->text.emplace_back(buf);
        self->layers.push_back(c.layer);
        if (c.medium != nullptr)
            self->medium.push_back(*c.medium);
        if (c.slab != nullptr)
            self->slab.push_back(*c.slab);
    }
};

struct StringSink final : lib::FormatSink {
    std::string text;
    void write(const char* s, size_t n) override { text.append(s, n); }
};

struct OomLog {
    unsigned calls = 0;
    std::string last;
    HeapLayer last_layer = HeapLayer::Small;

    static void record(void* context, const mm::HeapOomReport& report)
    {
        auto* self = static_cast<OomLog*>(context);
        ++self->calls;
        self->last_layer = report.layer;
        StringSink sink;
        mm::format_oom_report(sink, report);
        self->last = sink.text;
    }
};

std::string describe(const HeapCheckReport& r)
{
    return std::string(mm::to_string(r.first)) + " at " + std::to_string(r.first_address) + ", " +
        std::to_string(r.violations) + " violation(s)";
}

#define REQUIRE_HEAP_OK(heap)                                                                                          \
    do {                                                                                                               \
        const HeapCheckReport report_ = (heap).check_invariants();                                                     \
        INFO(describe(report_));                                                                                       \
        REQUIRE(report_.ok());                                                                                         \
    } while (0)

// A heap over a private page source, with recorded reports.
struct Fixture {
    explicit Fixture(SlabDebug debug = SlabDebug::Off, size_t bytes = 64 * MiB, void (*tweak)(HeapConfig&) = nullptr)
        : source(bytes), tags(bytes / kPage)
    {
        HeapConfig config;
        config.window_base = source.base();
        config.window_bytes = source.bytes();
        config.tags = tags.data();
        config.tag_bytes = tags.size();
        config.debug = debug;
        config.source_context = &source;
        config.source_free_pages = &TestPageSource::free_pages_fn;
        config.source_stats = &TestPageSource::stats_fn;
        config.on_corruption = &Reports::record;
        config.corruption_context = &reports;
        config.on_oom = &OomLog::record;
        config.oom_context = &oom;
        if (tweak != nullptr)
            tweak(config);
        heap = std::make_unique<Heap>(source, config);
        REQUIRE(heap->status().has_value());
    }

    // Free everything given, shrink, and check nothing is left anywhere.
    void require_clean()
    {
        heap->shrink();
        REQUIRE_HEAP_OK(*heap);
        const HeapStats s = heap->stats();
        CHECK(s.bytes_used == 0);
        CHECK(s.pages_held == 0);
        CHECK(s.chunks == 0);
        CHECK(s.large_blocks == 0);
        CHECK(source.at_initial_state());
    }

    TestPageSource source;
    std::vector<uint8_t> tags;
    Reports reports;
    OomLog oom;
    std::unique_ptr<Heap> heap;
};

void fill(void* p, size_t size, uint32_t seed)
{
    auto* b = static_cast<uint8_t*>(p);
    const size_t head = std::min<size_t>(size, 128);
    for (size_t i = 0; i < head; ++i)
        b[i] = static_cast<uint8_t>(seed + i * 7);
    const size_t tail = std::min<size_t>(size - head, 64);
    for (size_t i = size - tail; i < size; ++i)
        b[i] = static_cast<uint8_t>(seed + i * 7);
}

bool intact(const void* p, size_t size, uint32_t seed, size_t limit = SIZE_MAX)
{
    const auto* b = static_cast<const uint8_t*>(p);
    const size_t head = std::min<size_t>(size, 128);
    for (size_t i = 0; i < head && i < limit; ++i) {
        if (b[i] != static_cast<uint8_t>(seed + i * 7))
            return false;
    }
    const size_t tail = std::min<size_t>(size - head, 64);
    for (size_t i = size - tail; i < size && i < limit; ++i) {
        if (b[i] != static_cast<uint8_t>(seed + i * 7))
            return false;
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------
// Construction and names
// ---------------------------------------------------------------------------

TEST_CASE("heap: errors, layers and violations have names", "[heap]")
{
    for (auto e : {HeapError::ForeignPointer, HeapError::InteriorPointer, HeapError::DoubleFree, HeapError::WrongCache,
                   HeapError::Corrupted, HeapError::InvalidConfig, HeapError::NotInitialized, HeapError::RegistryFull,
                   HeapError::AlreadyRegistered, HeapError::NotRegistered, HeapError::NotEmpty})
        CHECK(std::string(mm::to_string(e)) != "unknown heap error");
    for (auto l : {HeapLayer::Small, HeapLayer::Medium, HeapLayer::Large, HeapLayer::Object})
        CHECK(std::string(mm::to_string(l)) != "unknown");
    for (auto k : {MediumCorruption::Poison, MediumCorruption::RedZoneBefore, MediumCorruption::RedZoneAfter,
                   MediumCorruption::Header})
        CHECK(std::string(mm::to_string(k)) != "unknown corruption");
    for (unsigned v = 0; v <= static_cast<unsigned>(HeapViolation::Accounting); ++v)
        CHECK(std::string(mm::to_string(static_cast<HeapViolation>(v))) != "unknown violation");
}

TEST_CASE("heap: configuration is validated", "[heap]")
{
    TestPageSource source(8 * MiB);
    std::vector<uint8_t> tags(source.bytes() / kPage);
    auto base_config = [&] {
        HeapConfig c;
        c.window_base = source.base();
        c.window_bytes = source.bytes();
        c.tags = tags.data();
        c.tag_bytes = tags.size();
        return c;
    };
    auto status_of = [&](const HeapConfig& c) {
        auto heap = std::make_unique<Heap>(source, c);
        return heap->status();
    };
    CHECK(status_of(base_config()).has_value());

    std::vector<std::pair<const char*, void (*)(HeapConfig&)>> bad = {
        {"no tags", [](HeapConfig& c) { c.tags = nullptr; }},
        {"tag buffer too small", [](HeapConfig& c) { c.tag_bytes -= 1; }},
        {"empty window", [](HeapConfig& c) { c.window_bytes = 0; }},
        {"unaligned window", [](HeapConfig& c) { c.window_base += 8; }},
        {"window size not pages", [](HeapConfig& c) { c.window_bytes -= 100; }},
        {"window wraps", [](HeapConfig& c) { c.window_base = UINTPTR_MAX & ~uintptr_t{4095}; }},
        {"min block not a power of two", [](HeapConfig& c) { c.medium_min_block = 96; }},
        {"min block too small", [](HeapConfig& c) { c.medium_min_block = 8; }},
        {"max below min", [](HeapConfig& c) { c.medium_max_block = 32; }},
        {"chunk too small for max block", [](HeapConfig& c) { c.chunk_order = 4; }},
        {"chunk order too large", [](HeapConfig& c) { c.chunk_order = 40; }},
        {"min watermark above low", [](HeapConfig& c) { c.min_watermark_pages = 10, c.low_watermark_pages = 5; }},
        {"max block above 2 GiB", [](HeapConfig& c) { c.medium_max_block = size_t{1} << 32, c.chunk_order = 20; }},
    };
    for (auto& [name, tweak] : bad) {
        INFO(name);
        HeapConfig c = base_config();
        tweak(c);
        auto status = status_of(c);
        REQUIRE_FALSE(status.has_value());
        CHECK(status.error() == HeapError::InvalidConfig);
    }

    // A failed heap refuses everything and changes nothing.
    HeapConfig c = base_config();
    c.tags = nullptr;
    Heap broken(source, c);
    CHECK(broken.allocate(16) == nullptr);
    CHECK(broken.free(reinterpret_cast<void*>(source.base())).error() == HeapError::NotInitialized);
    CHECK(broken.usable_size(reinterpret_cast<void*>(source.base())).error() == HeapError::NotInitialized);
    CHECK(broken.stats().failed_allocations == 1);
    CHECK(broken.shrink() == 0);
    mm::SlabCache cache;
    CHECK(broken.attach_cache(cache, mm::SlabCacheConfig{}).error() == HeapError::NotInitialized);
    CHECK(broken.cache_validate(cache, reinterpret_cast<void*>(source.base())).error() == HeapError::NotInitialized);
    CHECK(broken.layer_of(reinterpret_cast<void*>(source.base())).error() == HeapError::NotInitialized);
    CHECK(broken.check_invariants().ok());
    CHECK(source.calls() == 0);
}

// ---------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------

TEST_CASE("heap: small sizes come from the size classes", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        Fixture f(debug);
        Heap& heap = *f.heap;
        CHECK(heap.debug_enabled() == (debug == SlabDebug::On));
        std::vector<void*> ptrs;
        for (size_t size = 0; size <= 2048; size += (size < 300 ? 1 : 37)) {
            void* p = heap.allocate(size);
            REQUIRE(p != nullptr);
            CHECK(addr_of(p) % 16 == 0);
            CHECK(heap.layer_of(p).value() == HeapLayer::Small);
            const size_t usable = heap.usable_size(p).value();
            CHECK(usable == mm::size_class_round_up(std::max<size_t>(size, 1)));
            std::memset(p, 0x5a, usable);
            ptrs.push_back(p);
        }
        REQUIRE_HEAP_OK(heap);
        const HeapStats s = heap.stats();
        CHECK(s.small_bytes_used == s.bytes_used);
        CHECK(s.allocations == ptrs.size());
        CHECK(s.chunks == 0);
        for (void* p : ptrs)
            REQUIRE(heap.free(p).has_value());
        CHECK(f.reports.text.empty());
        CHECK(heap.stats().frees == ptrs.size());
        f.require_clean();
    }
}

TEST_CASE("heap: medium sizes come from buddy chunks", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        Fixture f(debug);
        Heap& heap = *f.heap;
        std::vector<std::pair<void*, size_t>> ptrs;
        for (size_t size : {2049ul, 3000ul, 4096ul, 5000ul, 8192ul, 10000ul, 16384ul, 30000ul, 40000ul, 65536ul - 64}) {
            void* p = heap.allocate(size);
            REQUIRE(p != nullptr);
            CHECK(heap.layer_of(p).value() == HeapLayer::Medium);
            CHECK(addr_of(p) % 16 == 0);
            const size_t usable = heap.usable_size(p).value();
            if (debug == SlabDebug::On)
                CHECK(usable == size); // the red zone starts right after
            else
                CHECK(usable == std::bit_ceil(size));
            std::memset(p, 0x33, usable);
            ptrs.emplace_back(p, size);
        }
        REQUIRE_HEAP_OK(heap);
        HeapStats s = heap.stats();
        CHECK(s.chunks >= 1);
        CHECK(s.medium_bytes_used == s.bytes_used);
        CHECK(s.medium_metadata_bytes == s.chunks * Access::chunk_meta_bytes(heap));
        for (auto [p, size] : ptrs)
            REQUIRE(heap.free(p).has_value());
        CHECK(f.reports.text.empty());
        s = heap.stats();
        CHECK(s.chunks == 1); // one empty chunk is kept for reuse
        CHECK(s.chunks_empty == 1);
        f.require_clean();
    }
}

TEST_CASE("heap: layer boundaries", "[heap]")
{
    Fixture f(SlabDebug::Off);
    Heap& heap = *f.heap;
    auto layer = [&](size_t size, size_t align = 0) {
        void* p = heap.allocate(size, align);
        REQUIRE(p != nullptr);
        HeapLayer l = heap.layer_of(p).value();
        REQUIRE(heap.free(p).has_value());
        return l;
    };
    CHECK(layer(2048) == HeapLayer::Small);
    CHECK(layer(2049) == HeapLayer::Medium);
    CHECK(layer(64 * KiB) == HeapLayer::Medium);
    CHECK(layer(64 * KiB + 1) == HeapLayer::Large);
    CHECK(layer(16, 16) == HeapLayer::Small);
    CHECK(layer(16, 32) == HeapLayer::Medium);
    CHECK(layer(16, 64 * KiB) == HeapLayer::Medium);
    CHECK(layer(16, 128 * KiB) == HeapLayer::Large);
    f.require_clean();

    Fixture d(SlabDebug::On);
    auto dlayer = [&](size_t size, size_t align = 0) {
        void* p = d.heap->allocate(size, align);
        REQUIRE(p != nullptr);
        HeapLayer l = d.heap->layer_of(p).value();
        REQUIRE(d.heap->free(p).has_value());
        return l;
    };
    CHECK(dlayer(64 * KiB - 32) == HeapLayer::Medium); // 16 + size + 16 fits exactly
    CHECK(dlayer(64 * KiB - 31) == HeapLayer::Large);
    CHECK(dlayer(100, 32 * KiB) == HeapLayer::Medium);
    CHECK(dlayer(32 * KiB, 32 * KiB) == HeapLayer::Large);
    CHECK(d.reports.text.empty());
    d.require_clean();
}

TEST_CASE("heap: a 1 MiB allocation is one large block", "[heap]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    void* p = heap.allocate(1 * MiB);
    REQUIRE(p != nullptr);
    CHECK(addr_of(p) % MiB == 0);
    CHECK(heap.layer_of(p).value() == HeapLayer::Large);
    CHECK(heap.usable_size(p).value() == 1 * MiB);
    std::memset(p, 0xa5, 1 * MiB);
    HeapStats s = heap.stats();
    CHECK(s.large_blocks == 1);
    CHECK(s.large_bytes == 1 * MiB);
    CHECK(s.pages_held == 256);
    CHECK(s.bytes_used == 1 * MiB);
    REQUIRE_HEAP_OK(heap);

    // Every page but the first is an interior pointer, as is any unaligned one.
    auto* b = static_cast<uint8_t*>(p);
    CHECK(heap.free(b + 1).error() == HeapError::InteriorPointer);
    CHECK(heap.free(b + kPage).error() == HeapError::InteriorPointer);
    CHECK(heap.free(b + 1 * MiB - 1).error() == HeapError::InteriorPointer);
    CHECK(heap.usable_size(b + kPage).error() == HeapError::InteriorPointer);
    CHECK(heap.stats().invalid_frees == 3);
    REQUIRE(heap.free(p).has_value());
    CHECK(heap.free(p).error() == HeapError::DoubleFree); // the pages went back to the source
    CHECK(heap.stats().large_blocks == 0);
    CHECK(heap.stats().pages_held == 0);

    // Other large sizes round up to whole pages, powers of two.
    void* q = heap.allocate(65 * KiB);
    REQUIRE(q != nullptr);
    CHECK(heap.usable_size(q).value() == 128 * KiB);
    void* r = heap.allocate(3 * MiB);
    REQUIRE(r != nullptr);
    CHECK(heap.usable_size(r).value() == 4 * MiB);
    REQUIRE(heap.free(q).has_value());
    REQUIRE(heap.free(r).has_value());
    // Beyond what the source has, and beyond any possible order.
    CHECK(heap.allocate(8 * MiB) == nullptr);
    CHECK(heap.allocate(SIZE_MAX / 2) == nullptr);
    CHECK(f.reports.text.empty());
    f.require_clean();
}

TEST_CASE("heap: aligned allocations honour their alignment", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        Fixture f(debug);
        Heap& heap = *f.heap;
        std::vector<void*> ptrs;
        for (size_t align = 1; align <= 2 * MiB; align <<= 1) {
            for (size_t size : {1ul, 15ul, 16ul, 100ul, 2048ul, 3000ul, 70000ul}) {
                INFO("size " << size << " align " << align);
                void* p = heap.allocate(size, align);
                REQUIRE(p != nullptr);
                CHECK(addr_of(p) % align == 0);
                CHECK(heap.usable_size(p).value() >= size);
                std::memset(p, 0x11, size);
                ptrs.push_back(p);
            }
        }
        REQUIRE_HEAP_OK(heap);
        for (void* p : ptrs)
            REQUIRE(heap.free(p).has_value());
        // Not a power of two: refused, counted.
        const uint64_t failed = heap.stats().failed_allocations;
        CHECK(heap.allocate(16, 3) == nullptr);
        CHECK(heap.allocate(16, 48) == nullptr);
        CHECK(heap.stats().failed_allocations == failed + 2);
        CHECK(f.reports.text.empty());
        f.require_clean();
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

TEST_CASE("heap: invalid frees are precise and change nothing", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        Fixture f(debug);
        Heap& heap = *f.heap;
        auto* small = static_cast<uint8_t*>(heap.allocate(100));
        auto* medium = static_cast<uint8_t*>(heap.allocate(5000));
        auto* large = static_cast<uint8_t*>(heap.allocate(200 * KiB));
        REQUIRE((small && medium && large));
        const HeapStats before = heap.stats();
        const std::vector<uint8_t> tags_before = f.tags;

        int on_stack = 0;
        CHECK(heap.free(&on_stack).error() == HeapError::ForeignPointer);
        CHECK(heap.free(reinterpret_cast<void*>(f.source.base() - 16)).error() == HeapError::ForeignPointer);
        CHECK(heap.free(reinterpret_cast<void*>(f.source.base() + f.source.bytes())).error() ==
              HeapError::ForeignPointer);
        // In the window, but never heap memory.
        CHECK(heap.free(reinterpret_cast<void*>(f.source.base() + f.source.bytes() - kPage)).error() ==
              HeapError::ForeignPointer);
        CHECK(heap.free(small + 1).error() == HeapError::InteriorPointer);
        CHECK(heap.free(small + 16).error() == HeapError::InteriorPointer);
        CHECK(heap.free(medium + 8).error() == HeapError::InteriorPointer);
        CHECK(heap.free(medium + 64).error() == HeapError::InteriorPointer);
        CHECK(heap.free(medium - 16).error() == HeapError::InteriorPointer); // the block start in debug
        CHECK(heap.free(large + 4 * kPage).error() == HeapError::InteriorPointer);
        // Chunk metadata: the chunk header at the chunk start.
        const auto chunk = addr_of(medium) & ~(heap.chunk_bytes() - 1);
        CHECK(heap.free(reinterpret_cast<void*>(chunk)).error() == HeapError::InteriorPointer);
        CHECK(heap.free(reinterpret_cast<void*>(chunk + 100)).error() == HeapError::InteriorPointer);
        // Free memory inside a chunk: never handed out.
        const auto far = chunk + heap.chunk_bytes() - 64 * KiB;
        CHECK(heap.free(reinterpret_cast<void*>(far)).error() == HeapError::DoubleFree);
        CHECK(heap.free(reinterpret_cast<void*>(far + 16)).error() == HeapError::DoubleFree);
        CHECK(heap.free(reinterpret_cast<void*>(far + 3)).error() == HeapError::DoubleFree);

        const HeapStats after = heap.stats();
        CHECK(after.invalid_frees == before.invalid_frees + 15);
        HeapStats a = after;
        a.invalid_frees = before.invalid_frees;
        CHECK(a == before);
        CHECK(f.tags == tags_before);
        REQUIRE_HEAP_OK(heap);

        // Double frees in every layer.
        REQUIRE(heap.free(small).has_value());
        REQUIRE(heap.free(medium).has_value());
        REQUIRE(heap.free(large).has_value());
        CHECK(heap.free(small).error() == HeapError::DoubleFree);
        CHECK(heap.free(medium).error() == HeapError::DoubleFree);
        CHECK(heap.free(large).error() == HeapError::DoubleFree);
        CHECK(heap.usable_size(medium).error() == HeapError::DoubleFree);
        CHECK(heap.free(nullptr).has_value());
        CHECK(heap.usable_size(nullptr).error() == HeapError::ForeignPointer);
        REQUIRE_HEAP_OK(heap);

        // After shrink, pointers into the released slab and chunk are stale.
        heap.shrink();
        CHECK(heap.free(small).error() == HeapError::DoubleFree);
        CHECK(heap.free(medium).error() == HeapError::DoubleFree);
        CHECK(f.reports.text.empty());
        f.require_clean();
    }
}

TEST_CASE("heap: damaged owners are reported as corruption", "[heap]")
{
    Fixture f(SlabDebug::Off);
    Heap& heap = *f.heap;
    void* medium = heap.allocate(5000);
    void* small = heap.allocate(64);
    REQUIRE((medium && small));

    uint64_t& magic = Access::chunk_magic(heap, medium);
    const uint64_t saved = magic;
    magic = 0;
    CHECK(heap.free(medium).error() == HeapError::Corrupted);
    CHECK(heap.check_invariants().has(HeapViolation::ChunkHeader));
    magic = saved;
    REQUIRE_HEAP_OK(heap);

    // A page tagged as a slab without a slab header.
    uint8_t& tag = Access::tag(heap, medium);
    const uint8_t saved_tag = tag;
    tag = Access::tag(heap, small);
    CHECK(heap.free(medium).error() == HeapError::Corrupted);
    CHECK(heap.layer_of(medium).error() == HeapError::Corrupted);
    mm::ObjectCache<uint64_t> words;
    REQUIRE(words.init(heap, "words").has_value());
    CHECK(words.destroy(static_cast<uint64_t*>(medium)).error() == HeapError::Corrupted);
    REQUIRE(words.destroy_cache().has_value());
    CHECK(heap.check_invariants().has(HeapViolation::Tags));
    tag = saved_tag;
    REQUIRE_HEAP_OK(heap);

    // Counters that disagree with the walk.
    Access::used(heap) += 8;
    CHECK(heap.check_invariants().has(HeapViolation::Accounting));
    Access::used(heap) -= 8;
    // A bucket mask bit without a chunk.
    Access::bucket_mask(heap) ^= uint64_t{1} << 9;
    CHECK(heap.check_invariants().has(HeapViolation::ChunkList));
    Access::bucket_mask(heap) ^= uint64_t{1} << 9;
    REQUIRE_HEAP_OK(heap);

    REQUIRE(heap.free(medium).has_value());
    REQUIRE(heap.free(small).has_value());
    f.require_clean();
}

// ---------------------------------------------------------------------------
// realloc, calloc
// ---------------------------------------------------------------------------

TEST_CASE("heap: reallocate grows in place, moves across layers, keeps contents", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        Fixture f(debug);
        Heap& heap = *f.heap;

        // nullptr allocates; size 0 frees.
        void* p = heap.reallocate(nullptr, 40).value();
        REQUIRE(p != nullptr);
        CHECK(heap.usable_size(p).value() == 48);
        CHECK(heap.reallocate(p, 0).value() == nullptr);
        CHECK(heap.free(p).error() == HeapError::DoubleFree);

        // In place within the block.
        p = heap.allocate(40);
        fill(p, 40, 1);
        CHECK(heap.reallocate(p, 48).value() == p);
        CHECK(intact(p, 40, 1));

        // Through every layer and back, contents preserved.
        size_t size = 48;
        fill(p, size, 2);
        for (size_t next :
             {1000ul, 2048ul, 3000ul, 20000ul, 64 * KiB, 100 * KiB, 1 * MiB, 2 * MiB, 50000ul, 2000ul, 24ul}) {
            INFO("from " << size << " to " << next);
            void* q = heap.reallocate(p, next).value();
            REQUIRE(q != nullptr);
            const size_t kept = std::min(size, next);
            CHECK(intact(q, std::min<size_t>(kept, 128), 2, kept));
            CHECK(heap.usable_size(q).value() >= next);
            fill(q, next, 2);
            p = q;
            size = next;
        }
        REQUIRE_HEAP_OK(heap);

        // A medium block grows in place up to its capacity.
        void* m = heap.allocate(5000);
        fill(m, 5000, 3);
        void* m2 = heap.reallocate(m, 6000).value();
        CHECK(m2 == m);
        CHECK(intact(m2, 128, 3));
        CHECK(heap.usable_size(m2).value() >= 6000);
        std::memset(m2, 0x42, 6000); // all of it usable: no red-zone report
        // Shrinking far below the block moves it to a tighter one.
        void* m3 = heap.reallocate(m2, 100).value();
        CHECK(m3 != m2);
        CHECK(heap.layer_of(m3).value() == HeapLayer::Small);
        CHECK(static_cast<uint8_t*>(m3)[99] == 0x42);

        // OOM while moving: nullptr, the original stays valid.
        heap.fail_nth_allocation(1);
        auto failed = heap.reallocate(m3, 10000);
        REQUIRE(failed.has_value());
        CHECK(failed.value() == nullptr);
        CHECK(static_cast<uint8_t*>(m3)[99] == 0x42);
        CHECK(heap.stats().injected_failures == 1);
        // A shrink that cannot move stays in place.
        void* big = heap.allocate(1 * MiB);
        heap.fail_nth_allocation(1);
        CHECK(heap.reallocate(big, 10).value() == big);

        // Invalid pointers: an error, nothing changes.
        const HeapStats before = heap.stats();
        int local = 0;
        CHECK(heap.reallocate(&local, 10).error() == HeapError::ForeignPointer);
        CHECK(heap.reallocate(static_cast<uint8_t*>(big) + kPage, 10).error() == HeapError::InteriorPointer);
        CHECK(heap.stats().bytes_used == before.bytes_used);

        for (void* x : {p, m3, big})
            REQUIRE(heap.free(x).has_value());
        CHECK(f.reports.text.empty());
        f.require_clean();
    }
}

// Found by the heap fuzzer: a medium block that grows within its capacity while the move's
// allocation fails must still be re-zoned, or the caller's legal writes land in its red zone.
TEST_CASE("heap: a grow that cannot move stays in place with its new size", "[heap][debug]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    void* p = heap.allocate(110, 2048); // a 2 KiB-aligned medium block, much larger than 110
    REQUIRE(p != nullptr);
    REQUIRE(heap.layer_of(p).value() == HeapLayer::Medium);
    heap.fail_nth_allocation(1);
    void* q = heap.reallocate(p, 841).value();
    CHECK(q == p);
    CHECK(heap.usable_size(q).value() >= 841);
    std::memset(q, 0x5a, 841);
    CHECK_FALSE(heap.check_invariants().has(HeapViolation::MediumRedZone));
    REQUIRE(heap.free(q).has_value());
    CHECK(f.reports.text.empty());
    f.require_clean();
}

// Issue 10: the page tags alone let a freed small object and a pointer into a slab object pass
// as live, and the in-place path (or the fallback after a failed move) handed them back: a
// caller writing new_size bytes there wrote into a free slot or over the next object.
TEST_CASE("heap: reallocate rejects freed and interior slab pointers exactly as free does", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        Fixture f(debug);
        Heap& heap = *f.heap;
        // The error realloc gives must be free's, and neither may change anything but the count.
        auto expect_rejected = [&](void* ptr, size_t new_size, HeapError expected) {
            INFO("realloc(" << ptr << ", " << new_size << ")");
            HeapStats before = heap.stats();
            auto moved = heap.reallocate(ptr, new_size);
            REQUIRE_FALSE(moved.has_value());
            CHECK(moved.error() == expected);
            auto freed = heap.free(ptr);
            REQUIRE_FALSE(freed.has_value());
            CHECK(freed.error() == moved.error());
            HeapStats after = heap.stats();
            CHECK(after.invalid_frees == before.invalid_frees + 2);
            before.invalid_frees = after.invalid_frees;
            CHECK(after == before);
            REQUIRE_HEAP_OK(heap);
        };

        void* freed = heap.allocate(40);
        void* keep = heap.allocate(40); // keeps the slab alive
        REQUIRE(heap.free(freed).has_value());
        expect_rejected(freed, 40, HeapError::DoubleFree);   // in place
        expect_rejected(freed, 4000, HeapError::DoubleFree); // a move
        // A large object shrunk far: a move, whose failed allocation used to keep it "in place".
        void* big = heap.allocate(2000);
        void* big_keep = heap.allocate(2000);
        REQUIRE(heap.free(big).has_value());
        heap.fail_nth_allocation(1);
        expect_rejected(big, 16, HeapError::DoubleFree);
        heap.fail_nth_allocation(0);

        // Interior: 100 bytes from a+16 of a 112-byte slot run 4 bytes into the next object.
        auto* a = static_cast<uint8_t*>(heap.allocate(100));
        auto* b = static_cast<uint8_t*>(heap.allocate(100));
        REQUIRE(heap.usable_size(a).value() < 116);
        fill(a, 100, 5);
        fill(b, 100, 6);
        expect_rejected(a + 16, 100, HeapError::InteriorPointer); // in place
        heap.fail_nth_allocation(1);
        expect_rejected(a + 16, 8, HeapError::InteriorPointer); // failed move
        heap.fail_nth_allocation(0);
        CHECK(intact(a, 100, 5));
        CHECK(intact(b, 100, 6));

        for (void* x : {keep, big_keep, static_cast<void*>(a), static_cast<void*>(b)})
            REQUIRE(heap.free(x).has_value());
        CHECK(f.reports.text.empty());
        f.require_clean();
    }
}

TEST_CASE("heap: allocate_zeroed zeroes and checks for overflow", "[heap]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    for (auto [n, size] :
         std::vector<std::pair<size_t, size_t>>{{1, 1}, {10, 48}, {3, 1000}, {100, 300}, {7, 100000}}) {
        auto* p = static_cast<uint8_t*>(heap.allocate_zeroed(n, size));
        REQUIRE(p != nullptr);
        CHECK(std::all_of(p, p + n * size, [](uint8_t b) { return b == 0; }));
        REQUIRE(heap.free(p).has_value());
    }
    // A freed and reused block is zeroed again (it was poisoned in between).
    auto* p = static_cast<uint8_t*>(heap.allocate_zeroed(5, 1000));
    std::memset(p, 0xff, 5000);
    REQUIRE(heap.free(p).has_value());
    p = static_cast<uint8_t*>(heap.allocate_zeroed(5, 1000));
    CHECK(std::all_of(p, p + 5000, [](uint8_t b) { return b == 0; }));
    REQUIRE(heap.free(p).has_value());

    const uint64_t failed = heap.stats().failed_allocations;
    CHECK(heap.allocate_zeroed(SIZE_MAX / 2, 3) == nullptr);
    CHECK(heap.allocate_zeroed(SIZE_MAX, SIZE_MAX) == nullptr);
    CHECK(heap.stats().failed_allocations == failed + 2);
    CHECK(heap.stats().oom_events == 0); // an overflow is not an OOM
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Typed caches
// ---------------------------------------------------------------------------

namespace {

struct Tcb {
    static inline int live = 0;
    uint64_t id;
    uint8_t stack_guard[200];
    explicit Tcb(uint64_t i) : id(i)
    {
        ++live;
        std::memset(stack_guard, 0x77, sizeof(stack_guard));
    }
    ~Tcb() { --live; }
};

struct alignas(64) WaitNode {
    WaitNode* next = nullptr;
    uint64_t key = 0;
};

} // namespace

TEST_CASE("heap: typed object caches stay off the general heap", "[heap]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    mm::ObjectCache<Tcb> tcbs;
    mm::ObjectCache<WaitNode> nodes;
    CHECK(tcbs.allocate() == nullptr); // not attached
    CHECK(tcbs.free(&f).error() == HeapError::NotInitialized);
    REQUIRE(tcbs.init(heap, "thread").has_value());
    REQUIRE(nodes.init(heap, "wait-node").has_value());
    CHECK(tcbs.initialized());
    CHECK(tcbs.init(heap, "again").error() == HeapError::AlreadyRegistered);

    std::vector<Tcb*> threads;
    std::vector<WaitNode*> waits;
    for (uint64_t i = 0; i < 500; ++i) {
        Tcb* t = tcbs.create(i);
        REQUIRE(t != nullptr);
        CHECK(t->id == i);
        CHECK(addr_of(t) % 16 == 0);
        CHECK(heap.layer_of(t).value() == HeapLayer::Object);
        threads.push_back(t);
        WaitNode* w = nodes.create();
        REQUIRE(w != nullptr);
        CHECK(addr_of(w) % 64 == 0);
        waits.push_back(w);
    }
    CHECK(Tcb::live == 500);
    HeapStats s = heap.stats();
    CHECK(s.small_bytes_total == 0); // nothing went through the size classes
    CHECK(s.object_bytes_used == 500 * sizeof(Tcb) + 500 * sizeof(WaitNode));
    CHECK(s.cache_count == mm::kSizeClassCount + 2);
    CHECK(std::string(s.caches[mm::kSizeClassCount].name) == "thread");
    CHECK(s.caches[mm::kSizeClassCount].typed);
    CHECK(s.caches[mm::kSizeClassCount].active_objects == 500);
    REQUIRE_HEAP_OK(heap);

    // Crossing the caches is refused before any destructor runs.
    CHECK(heap.free(threads[0]).error() == HeapError::WrongCache);
    void* general = heap.allocate(64);
    CHECK(tcbs.free(general).error() == HeapError::WrongCache);
    CHECK(tcbs.free(waits[0]).error() == HeapError::WrongCache);
    CHECK(tcbs.destroy(reinterpret_cast<Tcb*>(waits[0])).error() == HeapError::WrongCache);
    alignas(Tcb) unsigned char local[sizeof(Tcb)] = {};
    CHECK(tcbs.destroy(reinterpret_cast<Tcb*>(local)).error() == HeapError::ForeignPointer);
    CHECK(heap.reallocate(threads[0], 10).error() == HeapError::WrongCache);
    CHECK(Tcb::live == 500);
    REQUIRE(heap.free(general).has_value());

    // Detaching with live objects is refused.
    CHECK(tcbs.destroy_cache().error() == HeapError::NotEmpty);
    for (Tcb* t : threads)
        REQUIRE(tcbs.destroy(t).has_value());
    CHECK(Tcb::live == 0);
    CHECK(tcbs.free(threads[0]).error() == HeapError::DoubleFree);
    for (WaitNode* w : waits)
        REQUIRE(nodes.destroy(w).has_value());

    // Fault injection reaches typed caches too.
    heap.fail_nth_allocation(1);
    CHECK(tcbs.create(1) == nullptr);

    REQUIRE(tcbs.destroy_cache().has_value());
    REQUIRE(nodes.destroy_cache().has_value());
    CHECK(!tcbs.initialized());
    CHECK(tcbs.destroy_cache().error() == HeapError::NotInitialized);
    CHECK(heap.detach_cache(const_cast<mm::SlabCache&>(tcbs.cache())).error() == HeapError::NotRegistered);
    CHECK(heap.stats().cache_count == mm::kSizeClassCount);
    CHECK(f.reports.text.empty());
    f.require_clean();
}

TEST_CASE("heap: the object cache registry has a fixed capacity", "[heap]")
{
    Fixture f;
    std::vector<std::unique_ptr<mm::ObjectCache<uint64_t>>> caches;
    for (size_t i = 0; i < mm::kHeapMaxObjectCaches; ++i) {
        caches.push_back(std::make_unique<mm::ObjectCache<uint64_t>>());
        REQUIRE(caches.back()->init(*f.heap, "c").has_value());
    }
    mm::ObjectCache<uint64_t> extra;
    CHECK(extra.init(*f.heap, "extra").error() == HeapError::RegistryFull);
    caches.front()->destroy_cache().value();
    struct Huge {
        uint8_t bytes[2 * MiB];
    };
    mm::ObjectCache<Huge> huge;
    CHECK(huge.init(*f.heap, "huge").error() == HeapError::InvalidConfig);
    for (size_t i = 1; i < caches.size(); ++i)
        REQUIRE(caches[i]->destroy_cache().has_value());
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Debug checks
// ---------------------------------------------------------------------------

TEST_CASE("heap: medium red zones catch overflow, underflow and header damage", "[heap][debug]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;

    SECTION("overflow")
    {
        auto* p = static_cast<uint8_t*>(heap.allocate(5000));
        p[5000] = 0x00;
        p[5001] = 0x01;
        CHECK(heap.check_invariants().has(HeapViolation::MediumRedZone));
        REQUIRE(heap.free(p).has_value()); // reported, then freed
        REQUIRE(f.reports.medium.size() == 1);
        const auto& r = f.reports.medium[0];
        CHECK(r.kind == MediumCorruption::RedZoneAfter);
        CHECK(r.detected_at == mm::SlabCheckPoint::Free);
        CHECK(r.object == p);
        CHECK(r.offset == 5000);
        CHECK(r.requested == 5000);
        CHECK(r.order == 7); // 8 KiB = 64 B << 7
        CHECK(r.block_size == 8192);
        CHECK(r.expected == 0xcc);
        CHECK(r.found_count == 16);
        CHECK(r.found[0] == 0x00);
        CHECK(r.found[1] == 0x01);
        CHECK(r.found[2] == 0xcc);
        CHECK(f.reports.text[0].find("overflow") != std::string::npos);
        CHECK(f.reports.text[0].find("order 7") != std::string::npos);
        CHECK(f.reports.text[0].find("offset 5000") != std::string::npos);
        CHECK(f.reports.text[0].find("found 00 01 cc") != std::string::npos);
        CHECK(f.reports.layers[0] == HeapLayer::Medium);
        CHECK(heap.stats().corruptions == 1);
    }
    SECTION("underflow")
    {
        auto* p = static_cast<uint8_t*>(heap.allocate(3000));
        p[-1] = 0x99;
        REQUIRE(heap.free(p).has_value());
        REQUIRE(f.reports.medium.size() == 1);
        CHECK(f.reports.medium[0].kind == MediumCorruption::RedZoneBefore);
        CHECK(f.reports.medium[0].offset == -1);
        CHECK(f.reports.medium[0].found[0] == 0x99);
    }
    SECTION("header")
    {
        auto* p = static_cast<uint8_t*>(heap.allocate(3000));
        p[-16] = 0x00; // the magic
        CHECK(heap.check_invariants().has(HeapViolation::MediumHeader));
        CHECK(heap.layer_of(p).error() == HeapError::Corrupted);
        REQUIRE(heap.free(p).has_value());
        REQUIRE(f.reports.medium.size() == 1);
        CHECK(f.reports.medium[0].kind == MediumCorruption::Header);
        CHECK(f.reports.medium[0].offset == -16);
    }
    SECTION("realloc checks the zones before resizing")
    {
        auto* p = static_cast<uint8_t*>(heap.allocate(3000));
        p[3000] = 0;
        auto* q = static_cast<uint8_t*>(heap.reallocate(p, 3500).value());
        CHECK(q == p);
        REQUIRE(f.reports.medium.size() == 1);
        CHECK(f.reports.medium[0].kind == MediumCorruption::RedZoneAfter);
        q[3499] = 1; // now legal
        REQUIRE(heap.free(q).has_value());
        CHECK(f.reports.medium.size() == 1);
    }
    // Every report repaired what it found.
    REQUIRE_HEAP_OK(heap);
    f.require_clean();
}

TEST_CASE("heap: medium poison catches writes after free", "[heap][debug]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    // Keep the chunk from being given back, and the block from merging far.
    void* keep = heap.allocate(5000);
    auto* p = static_cast<uint8_t*>(heap.allocate(5000));
    const uintptr_t block = addr_of(p) - 16;
    REQUIRE(heap.free(p).has_value());
    p[100] = 0x00; // use after free
    const HeapCheckReport check = heap.check_invariants();
    CHECK(check.has(HeapViolation::MediumPoison));
    CHECK(check.first_address == ((block + 116) & ~uintptr_t{63}));

    // Hand out blocks of that order until the damaged one comes back.
    std::vector<void*> taken;
    for (int i = 0; i < 64 && f.reports.medium.empty(); ++i)
        taken.push_back(heap.allocate(5000));
    REQUIRE(f.reports.medium.size() == 1);
    const auto& r = f.reports.medium[0];
    CHECK(r.kind == MediumCorruption::Poison);
    CHECK(r.detected_at == mm::SlabCheckPoint::Allocate);
    CHECK(r.block == reinterpret_cast<void*>(block));
    CHECK(r.offset == 116);
    CHECK(r.expected == 0x6b);
    CHECK(r.found[0] == 0x00);
    CHECK(r.found[1] == 0x6b);
    CHECK(f.reports.text[0].find("use after free") != std::string::npos);
    for (void* t : taken)
        REQUIRE(heap.free(t).has_value());
    REQUIRE(heap.free(keep).has_value());
    REQUIRE_HEAP_OK(heap);
    f.require_clean();
}

TEST_CASE("heap: slab reports arrive through the heap's callback", "[heap][debug]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    auto* p = static_cast<uint8_t*>(heap.allocate(40)); // kmalloc-48
    p[48] = 0;
    REQUIRE(heap.free(p).has_value());
    REQUIRE(f.reports.slab.size() == 1);
    CHECK(f.reports.layers[0] == HeapLayer::Small);
    CHECK(std::string(f.reports.slab[0].cache_name) == "kmalloc-48");
    CHECK(f.reports.slab[0].kind == mm::SlabCorruption::RedZoneAfter);
    CHECK(f.reports.slab[0].offset == 48);
    CHECK(heap.stats().corruptions == 1);

    mm::ObjectCache<Tcb> tcbs;
    REQUIRE(tcbs.init(heap, "thread").has_value());
    Tcb* t = tcbs.create(1);
    reinterpret_cast<uint8_t*>(t)[sizeof(Tcb)] = 0;
    REQUIRE(tcbs.destroy(t).has_value());
    REQUIRE(f.reports.slab.size() == 2);
    CHECK(f.reports.layers[1] == HeapLayer::Object);
    CHECK(std::string(f.reports.slab[1].cache_name) == "thread");
    REQUIRE(tcbs.destroy_cache().has_value());
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Growth, shrink, pressure, OOM
// ---------------------------------------------------------------------------

TEST_CASE("heap: empty slabs and chunks are retained, then shrunk", "[heap]")
{
    Fixture f(SlabDebug::Off, 64 * MiB, [](HeapConfig& c) { c.max_empty_chunks = 2; });
    Heap& heap = *f.heap;
    std::vector<void*> ptrs;
    for (int i = 0; i < 200; ++i)
        ptrs.push_back(heap.allocate(30000)); // 32 KiB blocks: several chunks
    const HeapStats full = heap.stats();
    CHECK(full.chunks >= 20);
    for (void* p : ptrs)
        REQUIRE(heap.free(p).has_value());
    HeapStats s = heap.stats();
    CHECK(s.chunks == 2);
    CHECK(s.chunks_empty == 2);
    CHECK(s.chunks_released == full.chunks - 2);
    CHECK(heap.shrink() == 2 * heap.chunk_bytes());
    CHECK(heap.stats().chunks == 0);

    // Slabs: one empty slab per class is kept.
    ptrs.clear();
    for (int i = 0; i < 5000; ++i)
        ptrs.push_back(heap.allocate(64));
    for (void* p : ptrs)
        REQUIRE(heap.free(p).has_value());
    s = heap.stats();
    CHECK(s.small_bytes_total > 0);
    CHECK(s.small_bytes_used == 0);
    CHECK(heap.shrink() == s.small_bytes_total);
    f.require_clean();
}

TEST_CASE("heap: OOM reports in full, returns nullptr, and leaks nothing", "[heap][oom]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        Fixture f(debug, 16 * MiB);
        Heap& heap = *f.heap;
        f.source.set_limit_pages(6 * MiB / kPage + 175); // six 1 MiB blocks and change
        const HeapStats start = heap.stats();

        std::vector<void*> ptrs;
        // Large blocks first, then medium, then small ones, each until failure.
        for (size_t size : {1 * MiB, 256 * KiB, 30000ul, 3000ul, 512ul, 16ul}) {
            const unsigned before = f.oom.calls;
            for (;;) {
                void* p = heap.allocate(size);
                if (p == nullptr)
                    break;
                std::memset(p, 0x3c, size);
                ptrs.push_back(p);
            }
            CHECK(f.oom.calls == before + 1);
        }
        CHECK(f.source.used_pages() > 6 * MiB / kPage + 175 - 64);
        CHECK(f.oom.last_layer == HeapLayer::Small);
        CHECK(f.oom.last.find("out of memory: 16 bytes") != std::string::npos);
        CHECK(f.oom.last.find("kmalloc-16") != std::string::npos);
        CHECK(f.oom.last.find("buddyinfo") != std::string::npos);
        CHECK(f.oom.last.find("pages: 4096 total") != std::string::npos);
        HeapStats s = heap.stats();
        CHECK(s.oom_events == 6);
        CHECK(s.failed_allocations == 6);
        CHECK(s.pressure_events >= 6);
        CHECK(s.source_failures >= 6);
        REQUIRE_HEAP_OK(heap);

        for (void* p : ptrs)
            REQUIRE(heap.free(p).has_value());
        heap.shrink();
        s = heap.stats();
        CHECK(s.bytes_used == start.bytes_used);
        CHECK(s.pages_held == start.pages_held);
        CHECK(s.chunks == start.chunks);
        CHECK(s.small_bytes_total == start.small_bytes_total);
        for (unsigned i = 0; i < s.cache_count; ++i)
            CHECK(s.caches[i].active_objects == 0);
        CHECK(f.reports.text.empty());
        f.require_clean();

        // And the memory is there again.
        void* p = heap.allocate(4 * MiB);
        CHECK(p != nullptr);
        REQUIRE(heap.free(p).has_value());
    }
}

namespace {

struct Hoard {
    std::vector<void*> items;
    unsigned calls = 0;
    size_t last_wanted = 0;

    static size_t reclaim(void* context, Heap& heap, size_t pages_wanted)
    {
        auto* self = static_cast<Hoard*>(context);
        ++self->calls;
        self->last_wanted = pages_wanted;
        size_t freed = 0;
        for (void* p : self->items) {
            freed += heap.usable_size(p).value();
            REQUIRE(heap.free(p).has_value());
        }
        self->items.clear();
        return freed;
    }
};

} // namespace

TEST_CASE("heap: reclaimers run below the low watermark", "[heap][pressure]")
{
    Fixture f(SlabDebug::Off, 16 * MiB);
    Heap& heap = *f.heap;
    f.source.set_limit_pages(1024); // 4 MiB
    heap.set_watermarks(256, 32);
    Hoard hoard;
    REQUIRE(heap.register_reclaimer(&Hoard::reclaim, &hoard).has_value());
    CHECK(heap.register_reclaimer(&Hoard::reclaim, &hoard).error() == HeapError::AlreadyRegistered);

    // Fill a hoard of medium blocks until the watermark trips.
    for (int i = 0; i < 1000 && hoard.calls == 0; ++i) {
        void* p = heap.allocate(30000);
        REQUIRE(p != nullptr);
        hoard.items.push_back(p);
    }
    REQUIRE(hoard.calls == 1);
    // Everything hoarded before the tripping allocation went back; that
    // allocation itself was handed out after the reclaim.
    REQUIRE(hoard.items.size() == 1);
    CHECK(hoard.last_wanted > 0);
    HeapStats s = heap.stats();
    CHECK(s.pressure_events == 1);
    CHECK(s.reclaimer_calls == 1);
    CHECK(s.oom_events == 0);
    // The emptied chunks were given back: only the last allocation's is held.
    CHECK(s.chunks == 1);
    CHECK(f.source.free_page_count() >= 256);
    CHECK(s.low_watermark_pages == 256);
    CHECK(s.min_watermark_pages == 32);

    REQUIRE(heap.unregister_reclaimer(&Hoard::reclaim, &hoard).has_value());
    CHECK(heap.unregister_reclaimer(&Hoard::reclaim, &hoard).error() == HeapError::NotRegistered);
    CHECK(heap.register_reclaimer(nullptr, nullptr).error() == HeapError::InvalidConfig);
    REQUIRE(heap.free(hoard.items[0]).has_value());
    f.require_clean();
}

TEST_CASE("heap: the min watermark is never crossed; a reclaimer can rescue an allocation", "[heap][pressure]")
{
    Fixture f(SlabDebug::Off, 16 * MiB);
    Heap& heap = *f.heap;
    f.source.set_limit_pages(1024);
    heap.set_watermarks(128, 64);

    std::vector<void*> ptrs;
    for (;;) {
        void* p = heap.allocate(100 * KiB); // 32 pages each
        if (p == nullptr)
            break;
        ptrs.push_back(p);
    }
    CHECK(f.source.free_page_count() >= 64);
    CHECK(f.source.free_page_count() < 64 + 32);
    HeapStats s = heap.stats();
    CHECK(s.watermark_refusals >= 1);
    CHECK(s.oom_events == 1);

    // The same request succeeds when a reclaimer gives memory back.
    Hoard hoard;
    hoard.items.assign(ptrs.begin(), ptrs.begin() + 4);
    ptrs.erase(ptrs.begin(), ptrs.begin() + 4);
    REQUIRE(heap.register_reclaimer(&Hoard::reclaim, &hoard).has_value());
    void* rescued = heap.allocate(100 * KiB);
    CHECK(rescued != nullptr);
    CHECK(hoard.calls >= 1);
    CHECK(heap.stats().oom_events == 1);
    ptrs.push_back(rescued);

    // A full registry refuses more reclaimers.
    std::vector<Hoard> more(mm::kHeapMaxReclaimers);
    size_t registered = 1;
    for (auto& h : more) {
        if (registered++ < mm::kHeapMaxReclaimers)
            REQUIRE(heap.register_reclaimer(&Hoard::reclaim, &h).has_value());
        else
            CHECK(heap.register_reclaimer(&Hoard::reclaim, &h).error() == HeapError::RegistryFull);
    }
    for (void* p : ptrs)
        REQUIRE(heap.free(p).has_value());
    f.require_clean();
}

TEST_CASE("heap: fault injection fails exactly the n-th allocation", "[heap]")
{
    Fixture f;
    Heap& heap = *f.heap;
    heap.fail_nth_allocation(3);
    void* a = heap.allocate(10);
    void* b = heap.allocate(5000);
    void* c = heap.allocate(100);
    void* d = heap.allocate(100);
    CHECK(a != nullptr);
    CHECK(b != nullptr);
    CHECK(c == nullptr);
    CHECK(d != nullptr);
    HeapStats s = heap.stats();
    CHECK(s.injected_failures == 1);
    CHECK(s.failed_allocations == 1);
    CHECK(s.oom_events == 0);
    heap.fail_nth_allocation(1);
    CHECK(heap.allocate_zeroed(2, 8) == nullptr);
    heap.fail_nth_allocation(0);
    void* e = heap.allocate(10);
    CHECK(e != nullptr);
    for (void* p : {a, b, d, e})
        REQUIRE(heap.free(p).has_value());
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

TEST_CASE("heap: statistics snapshot", "[heap][stats]")
{
    Fixture f(SlabDebug::Off);
    Heap& heap = *f.heap;
    void* s1 = heap.allocate(100);
    void* s2 = heap.allocate(100);
    void* m1 = heap.allocate(4096);
    void* m2 = heap.allocate(20000);
    void* l1 = heap.allocate(200 * KiB);
    HeapStats s = heap.stats();
    CHECK(s.allocations == 5);
    CHECK(s.bytes_used == 112 * 2 + 4096 + 32768 + 256 * KiB);
    CHECK(s.small_bytes_used == 224);
    CHECK(s.medium_bytes_used == 4096 + 32768);
    CHECK(s.large_bytes == 256 * KiB);
    CHECK(s.large_blocks == 1);
    CHECK(s.chunks == 1);
    CHECK(s.bytes_total == s.pages_held * kPage);
    CHECK(s.bytes_free == s.bytes_total - s.bytes_used);
    CHECK(s.peak_bytes_used == s.bytes_used);
    CHECK(s.medium_order_count == 11);
    CHECK(s.medium_min_block == 64);
    uint64_t free_bytes = 0;
    for (unsigned k = 0; k < s.medium_order_count; ++k)
        free_bytes += s.medium_free_blocks[k] * (64ull << k);
    CHECK(free_bytes == s.medium_bytes_free);
    CHECK(s.medium_bytes_total == s.medium_bytes_free + s.medium_bytes_used);
    CHECK(s.medium_fragmentation_index[0] == -1000); // small blocks are free
    CHECK(s.source.available);
    CHECK(s.source.free_pages == f.source.free_page_count());
    const mm::HeapCacheRow& row = s.caches[mm::size_class_index(100)];
    CHECK(std::string(row.name) == "kmalloc-112");
    CHECK(row.active_objects == 2);
    CHECK(row.allocations == 2);

    StringSink sink;
    mm::format_heap_stats(sink, s);
    CHECK(sink.text.find("kmalloc-112") != std::string::npos);
    CHECK(sink.text.find("medium buddyinfo") != std::string::npos);
    CHECK(sink.text.find("fragmentation index") != std::string::npos);

    for (void* p : {s1, s2, m1, m2, l1})
        REQUIRE(heap.free(p).has_value());
    s = heap.stats();
    CHECK(s.frees == 5);
    CHECK(s.bytes_used == 0);
    CHECK(s.peak_bytes_used == 112 * 2 + 4096 + 32768 + 256 * KiB);
    CHECK(s.peak_pages_held >= 64 + 64);
    f.require_clean();
}

TEST_CASE("heap: fragmentation index follows Linux over the summed chunks", "[heap][stats]")
{
    Fixture f(SlabDebug::Off);
    Heap& heap = *f.heap;
    // Fill one chunk with 64 B medium blocks (aligned requests), then free
    // every other one: lots of free memory, nothing above order 0.
    std::vector<void*> ptrs;
    for (;;) {
        void* p = heap.allocate(64, 64);
        ptrs.push_back(p);
        if (heap.stats().chunks > 1)
            break;
    }
    heap.free(ptrs.back()).value();
    ptrs.pop_back();
    for (size_t i = 0; i < ptrs.size(); i += 2)
        heap.free(ptrs[i]).value();
    const HeapStats s = heap.stats();
    REQUIRE(s.chunks == 2);
    // The second chunk is empty and carries big blocks; drop it to look at the first.
    heap.shrink();
    const HeapStats t = heap.stats();
    REQUIRE(t.chunks == 1);
    CHECK(t.medium_free_blocks[0] > 1000);
    for (unsigned k = 1; k < t.medium_order_count; ++k)
        CHECK(t.medium_free_blocks[k] == 0);
    CHECK(t.medium_fragmentation_index[0] == -1000);
    // Linux: 1000 - (1000 + free_pages * 1000 / 2^order) / free_blocks.
    const uint64_t blocks = t.medium_free_blocks[0];
    for (unsigned k = 1; k < t.medium_order_count; ++k)
        CHECK(t.medium_fragmentation_index[k] ==
              1000 - static_cast<int32_t>((1000 + blocks * 1000 / (1u << k)) / blocks));
    for (size_t i = 1; i < ptrs.size(); i += 2)
        heap.free(ptrs[i]).value();
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Randomized model
// ---------------------------------------------------------------------------

namespace {

struct Mix {
    const char* name;
    int small_pct;  // 1 .. 2048
    int medium_pct; // 2049 .. 64 KiB
    size_t large_max;
    size_t max_live;
    int aligned_pct;
    size_t max_align;
};

size_t pick_size(std::mt19937_64& rng, const Mix& mix)
{
    const int roll = static_cast<int>(rng() % 100);
    if (roll < mix.small_pct) {
        // Skewed towards tiny objects, like a kernel's.
        return (rng() % 4 == 0) ? 1 + rng() % 2048 : 1 + rng() % 256;
    }
    if (roll < mix.small_pct + mix.medium_pct)
        return 2049 + rng() % (64 * KiB - 2048);
    return 64 * KiB + 1 + rng() % (mix.large_max - 64 * KiB);
}

struct LiveBlock {
    void* p;
    size_t size;
    size_t align;
    uint32_t seed;
};

void run_model(const Mix& mix, SlabDebug debug, uint64_t operations, uint64_t seed)
{
    INFO("mix " << mix.name << " debug " << (debug == SlabDebug::On) << " seed " << seed);
    Fixture f(debug, 512 * MiB);
    Heap& heap = *f.heap;
    std::mt19937_64 rng(seed);
    std::vector<LiveBlock> live;
    std::map<uintptr_t, size_t> ranges;
    uint32_t next_seed = 1;
    uint64_t failures = 0;

    auto insert = [&](void* p, size_t size) {
        const uintptr_t a = addr_of(p);
        auto it = ranges.lower_bound(a);
        if (it != ranges.end() && it->first < a + size)
            return false;
        if (it != ranges.begin()) {
            auto prev = std::prev(it);
            if (prev->first + prev->second > a)
                return false;
        }
        ranges.emplace(a, size);
        return true;
    };

    for (uint64_t op = 0; op < operations; ++op) {
        const int roll = static_cast<int>(rng() % 100);
        const bool want_alloc = live.empty() || (live.size() < mix.max_live && roll < 55);
        if (want_alloc) {
            const size_t size = pick_size(rng, mix);
            size_t align = 0;
            if (static_cast<int>(rng() % 100) < mix.aligned_pct)
                align = size_t{32} << (rng() % std::countr_zero(mix.max_align / 32 * 2));
            void* p = heap.allocate(size, align);
            if (p == nullptr) {
                ++failures;
                continue;
            }
            const size_t need_align = align ? align : 16;
            if (addr_of(p) % need_align != 0) {
                FAIL("misaligned " << p << " for alignment " << need_align);
            }
            if (!insert(p, size))
                FAIL("overlap at " << p << " size " << size);
            const uint32_t s = next_seed++;
            fill(p, size, s);
            live.push_back({p, size, align, s});
        } else if (roll < 62) {
            // realloc a random block
            const size_t i = rng() % live.size();
            LiveBlock& b = live[i];
            const size_t size = pick_size(rng, mix);
            if (!intact(b.p, b.size, b.seed))
                FAIL("contents damaged before realloc at " << b.p);
            auto r = heap.reallocate(b.p, size);
            if (!r)
                FAIL("realloc refused " << b.p);
            if (*r == nullptr) {
                ++failures;
                continue;
            }
            ranges.erase(addr_of(b.p));
            const size_t kept = std::min(b.size, size);
            if (!intact(*r, std::min<size_t>(kept, 128), b.seed, kept))
                FAIL("realloc lost contents " << b.size << " -> " << size);
            if (addr_of(*r) % 16 != 0)
                FAIL("realloc misaligned");
            if (!insert(*r, size))
                FAIL("overlap after realloc at " << *r);
            b.p = *r;
            b.size = size;
            b.align = 0;
            b.seed = next_seed++;
            fill(b.p, b.size, b.seed);
        } else {
            const size_t i = rng() % live.size();
            LiveBlock b = live[i];
            live[i] = live.back();
            live.pop_back();
            if (!intact(b.p, b.size, b.seed))
                FAIL("contents damaged at " << b.p << " size " << b.size);
            if (heap.usable_size(b.p).value() < b.size)
                FAIL("usable size below request");
            ranges.erase(addr_of(b.p));
            if (!heap.free(b.p))
                FAIL("free refused " << b.p);
        }
        if (op % 200000 == 199999) {
            REQUIRE_HEAP_OK(heap);
            const HeapStats s = heap.stats();
            REQUIRE(s.pages_held == f.source.used_pages());
        }
    }
    CHECK(failures == 0);
    REQUIRE_HEAP_OK(heap);
    for (const LiveBlock& b : live) {
        if (!intact(b.p, b.size, b.seed))
            FAIL("contents damaged at the end " << b.p);
        REQUIRE(heap.free(b.p).has_value());
    }
    CHECK(f.reports.text.empty());
    f.require_clean();
}

} // namespace

TEST_CASE("heap: randomized model, small-heavy mix", "[heap][model]")
{
    const Mix mix{"small-heavy", 90, 9, 256 * KiB, 4096, 5, 4096};
    run_model(mix, SlabDebug::Off, 400000, 0x5eed0001);
}

TEST_CASE("heap: randomized model, mixed sizes", "[heap][model]")
{
    const Mix mix{"mixed", 40, 45, 1 * MiB, 1024, 10, 64 * KiB};
    run_model(mix, SlabDebug::Off, 350000, 0x5eed0002);
}

TEST_CASE("heap: randomized model, large-heavy mix", "[heap][model]")
{
    const Mix mix{"large", 20, 30, 2 * MiB, 96, 10, 1 * MiB};
    run_model(mix, SlabDebug::Off, 250000, 0x5eed0003);
}

TEST_CASE("heap: randomized model with debug checks", "[heap][model][debug]")
{
    const Mix mix{"debug-mixed", 70, 25, 512 * KiB, 512, 10, 32 * KiB};
    run_model(mix, SlabDebug::On, 100000, 0x5eed0004);
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

TEST_CASE("heap: threads share one heap under a mutex", "[heap][threads]")
{
    Fixture f(SlabDebug::On, 256 * MiB);
    Heap& heap = *f.heap;
    std::mutex lock;
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> done{0};
    mm::ObjectCache<WaitNode> nodes;
    REQUIRE(nodes.init(heap, "wait-node").has_value());

    auto worker = [&](unsigned id) {
        std::mt19937_64 rng(1000 + id);
        std::vector<LiveBlock> live;
        std::vector<WaitNode*> mine;
        for (int op = 0; op < 40000; ++op) {
            const int roll = static_cast<int>(rng() % 100);
            if (live.empty() || (roll < 55 && live.size() < 300)) {
                const size_t size = rng() % 10 == 0 ? 2049 + rng() % 30000 : 1 + rng() % 1024;
                void* p;
                {
                    std::lock_guard<std::mutex> guard(lock);
                    p = heap.allocate(size);
                }
                if (p == nullptr) {
                    ++errors;
                    continue;
                }
                const uint32_t seed = id * 1000000 + op;
                fill(p, size, seed); // outside the lock: the block is ours alone
                live.push_back({p, size, 0, seed});
            } else if (roll < 65) {
                WaitNode* w;
                {
                    std::lock_guard<std::mutex> guard(lock);
                    w = nodes.create();
                }
                if (w == nullptr) {
                    ++errors;
                    continue;
                }
                w->key = id;
                mine.push_back(w);
            } else if (roll < 75 && !mine.empty()) {
                WaitNode* w = mine.back();
                mine.pop_back();
                if (w->key != id)
                    ++errors;
                std::lock_guard<std::mutex> guard(lock);
                if (!nodes.destroy(w))
                    ++errors;
            } else {
                const size_t i = rng() % live.size();
                LiveBlock b = live[i];
                live[i] = live.back();
                live.pop_back();
                if (!intact(b.p, b.size, b.seed))
                    ++errors;
                std::lock_guard<std::mutex> guard(lock);
                if (!heap.free(b.p))
                    ++errors;
            }
        }
        std::lock_guard<std::mutex> guard(lock);
        for (const LiveBlock& b : live) {
            if (!intact(b.p, b.size, b.seed) || !heap.free(b.p))
                ++errors;
        }
        for (WaitNode* w : mine) {
            if (w->key != id || !nodes.destroy(w))
                ++errors;
        }
        ++done;
    };
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < 4; ++i)
        threads.emplace_back(worker, i);
    for (auto& t : threads)
        t.join();
    CHECK(done == 4);
    CHECK(errors == 0);
    CHECK(f.reports.text.empty());
    REQUIRE(nodes.destroy_cache().has_value());
    f.require_clean();
}

// ---------------------------------------------------------------------------
// Rare paths
// ---------------------------------------------------------------------------

namespace {

// Hands out pages the heap must refuse: outside its window, or misaligned.
class RogueSource final : public mm::PageSource {
public:
    explicit RogueSource(TestPageSource& inner) : m_inner(inner) { }
    void* allocate_pages(unsigned order) override
    {
        ++m_handed;
        if (m_mode == 0)
            return &m_outside[0];
        void* p = m_inner.allocate_pages(order + 1);
        m_last = p;
        return p == nullptr ? nullptr : static_cast<uint8_t*>(p) + kPage; // misaligned for order >= 1
    }
    void free_pages(void* p, unsigned order) override
    {
        ++m_returned;
        if (m_mode == 1 && p == static_cast<uint8_t*>(m_last) + kPage)
            m_inner.free_pages(m_last, order + 1);
    }
    int m_mode = 0;
    unsigned m_handed = 0;
    unsigned m_returned = 0;

private:
    TestPageSource& m_inner;
    void* m_last = nullptr;
    alignas(4096) uint8_t m_outside[4096];
};

} // namespace

TEST_CASE("heap: pages a source should not have given are refused and returned", "[heap]")
{
    TestPageSource inner(32 * MiB);
    auto rogue = std::make_unique<RogueSource>(inner);
    std::vector<uint8_t> tags(inner.bytes() / kPage);
    HeapConfig c;
    c.window_base = inner.base();
    c.window_bytes = inner.bytes();
    c.tags = tags.data();
    c.tag_bytes = tags.size();
    c.on_oom = nullptr; // the default: one log line
    Heap heap(*rogue, c);
    REQUIRE(heap.status().has_value());
    CHECK(heap.allocate(100) == nullptr); // outside the window
    rogue->m_mode = 1;
    CHECK(heap.allocate(200 * KiB) == nullptr); // misaligned
    CHECK(rogue->m_handed == rogue->m_returned);
    const HeapStats s = heap.stats();
    CHECK(s.source_failures == rogue->m_handed);
    CHECK(s.pages_held == 0);
    CHECK(s.oom_events == 2);
    CHECK(inner.at_initial_state());
}

TEST_CASE("heap: report texts cover every layer", "[heap]")
{
    char buf[128];
    CHECK(mm::format_corruption(HeapCorruption{}, buf, sizeof(buf)) > 0);
    CHECK(std::string(buf).find("no details") != std::string::npos);

    Fixture f(SlabDebug::On, 16 * MiB);
    Heap& heap = *f.heap;
    f.source.set_limit_pages(0);
    CHECK(heap.allocate(3000, 256) == nullptr);
    CHECK(f.oom.last.find("3000 bytes aligned to 256 from the medium layer (buddy order") != std::string::npos);
    CHECK(heap.allocate(300 * KiB) == nullptr);
    CHECK(f.oom.last.find("from the large layer (page order 7)") != std::string::npos);
    mm::ObjectCache<Tcb> tcbs;
    REQUIRE(tcbs.init(heap, "thread").has_value());
    CHECK(tcbs.create(1) == nullptr);
    CHECK(f.oom.last_layer == HeapLayer::Object);
    CHECK(f.oom.last.find("(cache thread)") != std::string::npos);
    CHECK(heap.stats().caches[mm::kSizeClassCount].failed_allocations == 2); // before and after reclaim
    f.source.set_limit_pages(UINT64_MAX);

    // Without handlers: logged, counted, and the operation completes.
    heap.set_oom_handler(nullptr, nullptr);
    heap.set_corruption_handler(nullptr, nullptr);
    f.source.set_limit_pages(0);
    CHECK(heap.allocate(10) == nullptr);
    f.source.set_limit_pages(UINT64_MAX);
    auto* p = static_cast<uint8_t*>(heap.allocate(5001));
    p[5001] = 0; // odd end: the mismatch is in the unaligned head of the zone
    REQUIRE(heap.free(p).has_value());
    CHECK(heap.stats().corruptions == 1);
    CHECK(f.reports.text.empty());
    REQUIRE(tcbs.destroy_cache().has_value());
    f.require_clean();
}

TEST_CASE("heap: pointer queries on every kind of page", "[heap]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        Fixture f(debug);
        Heap& heap = *f.heap;
        auto* small = static_cast<uint8_t*>(heap.allocate(64));
        auto* medium = static_cast<uint8_t*>(heap.allocate(5000));
        auto* large = static_cast<uint8_t*>(heap.allocate(100 * KiB));
        const uintptr_t chunk = addr_of(medium) & ~(heap.chunk_bytes() - 1);
        CHECK(heap.layer_of(reinterpret_cast<void*>(f.source.base() + f.source.bytes() - kPage)).error() ==
              HeapError::ForeignPointer);
        CHECK(heap.layer_of(reinterpret_cast<void*>(chunk + 64)).error() == HeapError::InteriorPointer);
        CHECK(heap.layer_of(medium + 16).error() == HeapError::InteriorPointer);
        CHECK(heap.layer_of(large + 8).error() == HeapError::InteriorPointer);
        CHECK(heap.usable_size(large + 5 * kPage).error() == HeapError::InteriorPointer);
        CHECK(heap.layer_of(small).value() == HeapLayer::Small);
        CHECK(heap.layer_of(large).value() == HeapLayer::Large);

        // realloc of invalid pointers: errors, nothing moves or leaks.
        const HeapStats before = heap.stats();
        CHECK(heap.reallocate(medium + 16, 0).error() == HeapError::InteriorPointer);
        CHECK(heap.reallocate(small + 16, 5000).error() == HeapError::InteriorPointer);
        HeapStats after = heap.stats();
        CHECK(after.bytes_used == before.bytes_used);
        CHECK(after.invalid_frees == before.invalid_frees + 2);

        // A typed cache rejects general-heap and released memory before any destructor.
        mm::ObjectCache<Tcb> tcbs;
        REQUIRE(tcbs.init(heap, "thread").has_value());
        CHECK(tcbs.destroy(reinterpret_cast<Tcb*>(medium)).error() == HeapError::WrongCache);
        CHECK(tcbs.destroy(reinterpret_cast<Tcb*>(f.source.base() + f.source.bytes() - kPage)).error() ==
              HeapError::ForeignPointer);
        CHECK(heap.cache_free(const_cast<mm::SlabCache&>(tcbs.cache()), nullptr).has_value());
        Tcb* t = tcbs.create(5);
        REQUIRE(tcbs.destroy(t).has_value());
        heap.shrink(); // with the typed cache attached: its empty slab goes too
        CHECK(tcbs.destroy(t).error() == HeapError::DoubleFree);
        CHECK(heap.layer_of(t).error() == HeapError::DoubleFree);
        // A cache that was never attached gets nothing.
        mm::SlabCache stray;
        CHECK(heap.cache_allocate(stray) == nullptr);
        REQUIRE(tcbs.destroy_cache().has_value());

        for (void* p : {static_cast<void*>(small), static_cast<void*>(medium), static_cast<void*>(large)})
            REQUIRE(heap.free(p).has_value());
        f.require_clean();
    }

    // Debug: with a damaged header the block start is still told from the
    // object; queries refuse the block; a free reports, then frees it.
    Fixture d(SlabDebug::On);
    auto* p = static_cast<uint8_t*>(d.heap->allocate(3000));
    p[-16] ^= 0xff;
    CHECK(d.heap->free(p - 16).error() == HeapError::InteriorPointer);
    CHECK(d.heap->reallocate(p, 10).error() == HeapError::Corrupted);
    CHECK(d.heap->usable_size(p).error() == HeapError::Corrupted);
    CHECK(d.reports.medium.empty());
    REQUIRE(d.heap->free(p).has_value());
    REQUIRE(d.reports.medium.size() == 1);
    CHECK(d.reports.medium[0].kind == MediumCorruption::Header);
    d.require_clean();
}

TEST_CASE("heap: reclaim does not nest and typed caches OOM like the rest", "[heap][pressure]")
{
    Fixture f(SlabDebug::Off, 16 * MiB);
    Heap& heap = *f.heap;
    struct Nested {
        unsigned calls = 0;
        size_t inner = 1;
        static size_t run(void* context, Heap& h, size_t)
        {
            auto* self = static_cast<Nested*>(context);
            ++self->calls;
            self->inner = h.reclaim(); // nested: refused
            return 0;
        }
    } nested;
    Hoard first;
    REQUIRE(heap.register_reclaimer(&Hoard::reclaim, &first).has_value());
    REQUIRE(heap.register_reclaimer(&Nested::run, &nested).has_value());
    REQUIRE(heap.unregister_reclaimer(&Hoard::reclaim, &first).has_value()); // from the front
    heap.reclaim();
    CHECK(nested.calls == 1);
    CHECK(nested.inner == 0);
    CHECK(first.calls == 0);

    // A typed cache that cannot grow: reclaim, retry, OOM report, nullptr.
    mm::ObjectCache<Tcb> tcbs;
    REQUIRE(tcbs.init(heap, "thread").has_value());
    f.source.set_limit_pages(0);
    const uint64_t events = heap.stats().pressure_events;
    CHECK(tcbs.create(1) == nullptr);
    CHECK(heap.stats().pressure_events == events + 1);
    CHECK(f.oom.last_layer == HeapLayer::Object);
    REQUIRE(tcbs.destroy_cache().has_value());
    REQUIRE(heap.unregister_reclaimer(&Nested::run, &nested).has_value());
    f.source.set_limit_pages(UINT64_MAX);
    f.require_clean();
}

// The fuzz harness's per-operation check: each corruption below is at the pointer passed (its
// object, block, chunk or page run) or in the counters, and must be caught without the walk.
TEST_CASE("heap: the local check finds corruption at the pointer touched", "[heap][debug]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    auto* small = static_cast<uint8_t*>(heap.allocate(64));
    auto* small_freed = static_cast<uint8_t*>(heap.allocate(64));
    auto* medium = static_cast<uint8_t*>(heap.allocate(5000));
    auto* medium_freed = static_cast<uint8_t*>(heap.allocate(5000));
    auto* large = static_cast<uint8_t*>(heap.allocate(100 * KiB));
    REQUIRE(heap.free(small_freed).has_value());
    REQUIRE(heap.free(medium_freed).has_value());
    REQUIRE(heap.layer_of(medium).value() == HeapLayer::Medium);
    REQUIRE(heap.layer_of(large).value() == HeapLayer::Large);
    for (const uint8_t* p : {small, small_freed, medium, medium_freed, large, large + 5 * kPage})
        REQUIRE(heap.check_local(p).ok());
    int local = 0;
    REQUIRE(heap.check_local(&local).ok());
    auto expect = [&](const void* at, HeapViolation v) {
        const HeapCheckReport r = heap.check_local(at);
        INFO(describe(r) << ", looking for " << mm::to_string(v));
        CHECK(r.has(v));
        CHECK_FALSE(heap.check_invariants().ok()); // the whole walk agrees
    };

    SECTION("a write after free in a slab")
    {
        small_freed[8] ^= 0xff;
        expect(small_freed, HeapViolation::SlabCache);
        small_freed[8] ^= 0xff;
    }
    SECTION("a medium red zone")
    {
        medium[5000] ^= 0xff;
        expect(medium, HeapViolation::MediumRedZone);
        medium[5000] ^= 0xff;
    }
    SECTION("a write after free in a medium block")
    {
        medium_freed[20] ^= 0xff;
        expect(medium_freed, HeapViolation::MediumPoison);
        medium_freed[20] ^= 0xff;
    }
    SECTION("a chunk on the wrong list")
    {
        const uint8_t saved = Access::chunk_list(heap, medium);
        Access::chunk_list(heap, medium) = saved == 0 ? 1 : 0;
        expect(medium, HeapViolation::ChunkList);
        Access::chunk_list(heap, medium) = saved;
    }
    SECTION("a chunk header")
    {
        Access::chunk_magic(heap, medium) ^= 1;
        expect(medium + 100, HeapViolation::ChunkHeader);
        Access::chunk_magic(heap, medium) ^= 1;
    }
    SECTION("a large block's tags")
    {
        const uint8_t saved = Access::tag(heap, large + 3 * kPage);
        Access::tag(heap, large + 3 * kPage) = 0;
        expect(large + 20 * kPage, HeapViolation::Tags);
        Access::tag(heap, large + 3 * kPage) = saved;
    }
    SECTION("the counters")
    {
        Access::used(heap) += heap.pages_held() * kPage;
        expect(nullptr, HeapViolation::Accounting);
        Access::used(heap) -= heap.pages_held() * kPage;
    }
    REQUIRE_HEAP_OK(heap);
    for (void* p : {static_cast<void*>(small), static_cast<void*>(medium), static_cast<void*>(large)})
        REQUIRE(heap.free(p).has_value());
    CHECK(f.reports.text.empty());
    f.require_clean();
}

TEST_CASE("heap: the invariant checker finds damaged lists, buckets, tags and caches", "[heap]")
{
    Fixture f(SlabDebug::On);
    Heap& heap = *f.heap;
    void* medium = heap.allocate(5000);
    auto* large = static_cast<uint8_t*>(heap.allocate(100 * KiB));
    auto* small = static_cast<uint8_t*>(heap.allocate(64));
    REQUIRE_HEAP_OK(heap);

    auto expect = [&](HeapViolation kind) {
        const HeapCheckReport r = heap.check_invariants();
        INFO(describe(r));
        CHECK(r.has(kind));
    };

    // Chunk list links and ids.
    auto* chunk = Access::chunk(heap, medium);
    const uint8_t list = chunk->list;
    chunk->list = static_cast<uint8_t>(list - 1);
    expect(HeapViolation::ChunkList);
    chunk->list = list;
    auto* next = chunk->link.next;
    chunk->link.next = chunk; // a cycle
    expect(HeapViolation::ChunkList);
    chunk->link.next = next;
    auto* prev = chunk->link.prev;
    chunk->link.prev = chunk;
    expect(HeapViolation::ChunkList);
    chunk->link.prev = prev;
    Access::empty_count(heap) += 1;
    expect(HeapViolation::ChunkList);
    Access::empty_count(heap) -= 1;
    Access::bucket_mask(heap) |= uint64_t{1} << 20; // beyond the medium orders
    expect(HeapViolation::ChunkList);
    Access::bucket_mask(heap) &= ~(uint64_t{1} << 20);
    REQUIRE_HEAP_OK(heap);

    // Blocks taken behind the heap's back: wrong bucket, wrong bytes.
    mm::BuddyAllocator& buddy = Access::chunk_buddy(heap, medium);
    std::vector<void*> behind;
    while (buddy.free_blocks(10) != 0)
        behind.push_back(buddy.allocate_order(10).value());
    expect(HeapViolation::ChunkList);
    expect(HeapViolation::Accounting);
    for (void* b : behind) {
        std::memset(b, 0x6b, 64 * KiB); // back to poison, as the heap would leave it
        REQUIRE(buddy.free(b).has_value());
    }
    REQUIRE_HEAP_OK(heap);

    // A broken free-list link inside the chunk: the buddy's own check.
    {
        Fixture g(SlabDebug::Off);
        void* m = g.heap->allocate(5000);
        mm::BuddyAllocator& b = Access::chunk_buddy(*g.heap, m);
        auto* node = reinterpret_cast<uintptr_t*>(addr_of(m) + 8 * KiB); // the free 8 KiB buddy
        const uintptr_t saved = node[1];
        node[1] = 12345;
        CHECK(!b.check_invariants().ok());
        const HeapCheckReport r = g.heap->check_invariants();
        CHECK(r.has(HeapViolation::Buddy));
        node[1] = saved;
        REQUIRE(g.heap->free(m).has_value());
        g.require_clean();
    }

    // Tags: an unknown value, a large block without its tail, a tail without its head.
    uint8_t& free_tag = Access::tag(heap, reinterpret_cast<void*>(f.source.base() + f.source.bytes() - kPage));
    free_tag = 0x02;
    expect(HeapViolation::Tags);
    free_tag = 0x00;
    uint8_t& tail = Access::tag(heap, large + kPage);
    const uint8_t saved_tail = tail;
    tail = 0;
    expect(HeapViolation::Tags);
    tail = saved_tail;
    uint8_t& head = Access::tag(heap, large);
    const uint8_t saved_head = head;
    head = saved_tail; // the head now reads as a tail without a head
    expect(HeapViolation::Tags);
    head = saved_head;
    REQUIRE_HEAP_OK(heap);

    // A size class whose free object was written after free.
    REQUIRE(heap.free(small).has_value());
    small[8] = 0;
    expect(HeapViolation::SlabCache);
    small[8] = 0x6b;
    REQUIRE_HEAP_OK(heap);

    REQUIRE(heap.free(medium).has_value());
    REQUIRE(heap.free(large).has_value());
    f.require_clean();
}
