// Host tests for mm::SlabCache, the generic slab layer of the Mana Pool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mm/size_classes.h"
#include "mm/slab_cache.h"
#include "support/intrusive_list_access.h"

using mm::SlabCache;
using mm::SlabCacheConfig;
using mm::SlabCacheStats;
using mm::SlabCheckPoint;
using mm::SlabCheckReport;
using mm::SlabCorruption;
using mm::SlabCorruptionReport;
using mm::SlabDebug;
using mm::SlabError;
using mm::SlabViolation;

namespace mm {
// Reaches into the cache to corrupt it on purpose (invariant checker tests).
struct SlabCacheTestAccess {
    using Header = SlabCache::SlabHeader;
    static Header* header(void* slab) { return static_cast<Header*>(slab); }
    static void* current(SlabCache& c) { return c.m_current; }
    static uint32_t& in_use(void* slab) { return header(slab)->in_use; }
    static void*& free_head(void* slab) { return header(slab)->free_list; }
    static uint64_t& magic(void* slab) { return header(slab)->magic; }
    static uint64_t* bitmap(void* slab) { return header(slab)->bitmap(); }
    static void*& next(void* slab) { return reinterpret_cast<void*&>(header(slab)->link.next); }
    static void*& prev(void* slab) { return reinterpret_cast<void*&>(header(slab)->link.prev); }
    static void** link_of(SlabCache& c, void* object) { return c.link_of(object); }
    static void* full_head(SlabCache& c) { return c.m_full.front(); }
    static void set_full_head(SlabCache& c, void* slab) { lib::IntrusiveListTestAccess::head(c.m_full) = header(slab); }
    static void set_current(SlabCache& c, void* slab) { c.m_current = header(slab); }
    static SlabCache*& owner(void* slab) { return header(slab)->cache; }
    static void tag_partial(void* slab) { header(slab)->list = SlabCache::ListId::Partial; }
    static void tag_full(void* slab) { header(slab)->list = SlabCache::ListId::Full; }
    static uint64_t& allocations(SlabCache& c) { return c.m_allocations; }
    static uint64_t& slabs_released(SlabCache& c) { return c.m_slabs_released; }
    static size_t& partial_count(SlabCache& c) { return lib::IntrusiveListTestAccess::size(c.m_partial); }
    static uint64_t& active(SlabCache& c) { return c.m_active; }
    static size_t object_offset(SlabCache& c) { return c.m_object_offset; }
    static size_t first_object_offset(SlabCache& c) { return c.m_first_object_offset; }
};
} // namespace mm

using Access = mm::SlabCacheTestAccess;

namespace {

constexpr size_t kPage = 4096;

// A PageSource over aligned_alloc that counts what is outstanding, checks
// that every free matches an allocation of the same order, can be limited to
// simulate exhaustion, and hands out dirty pages (the cache must not assume
// zeroed memory). Thread-safe.
class TestPageSource final : public mm::PageSource {
public:
    ~TestPageSource()
    {
        for (auto& [p, order] : m_blocks)
            std::free(p);
    }

    void* allocate_pages(unsigned order) override
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        const size_t pages = size_t{1} << order;
        if (m_limit_pages != 0 && m_live_pages + pages > m_limit_pages) {
            ++m_refusals;
            return nullptr;
        }
        const size_t bytes = kPage << order;
        void* p = std::aligned_alloc(bytes, bytes);
        if (p == nullptr)
            return nullptr;
        std::memset(p, 0xa5, bytes);
        m_blocks[p] = order;
        m_live_pages += pages;
        ++m_allocations;
        return p;
    }

    void free_pages(void* p, unsigned order) override
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        auto it = m_blocks.find(p);
        if (it == m_blocks.end() || it->second != order) {
            ++m_bad_frees;
            return;
        }
        m_blocks.erase(it);
        m_live_pages -= size_t{1} << order;
        std::memset(p, 0x5a, kPage << order);
        std::free(p);
    }

    size_t live_blocks() const
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_blocks.size();
    }
    size_t live_pages() const
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_live_pages;
    }
    size_t bad_frees() const { return m_bad_frees; }
    size_t refusals() const { return m_refusals; }
    size_t allocations() const { return m_allocations; }
    void set_limit_pages(size_t pages) { m_limit_pages = pages; }

private:
    mutable std::mutex m_mutex;
    std::map<void*, unsigned> m_blocks;
    size_t m_live_pages = 0;
    size_t m_limit_pages = 0;
    size_t m_bad_frees = 0;
    size_t m_refusals = 0;
    size_t m_allocations = 0;
};

// Captures corruption reports (the kernel wrapper panics instead).
struct ReportLog {
    std::vector<SlabCorruptionReport> reports;
    std::vector<std::string> texts;

    static void callback(void* context, const SlabCorruptionReport& report)
    {
        auto* log = static_cast<ReportLog*>(context);
        log->reports.push_back(report);
        char text[512];
        mm::format_report(report, text, sizeof(text));
        log->texts.emplace_back(text);
    }
    void attach(SlabCache& cache) { cache.set_report_callback(&ReportLog::callback, this); }
};

SlabCacheConfig config(const char* name, size_t size, size_t alignment = 8, SlabDebug debug = SlabDebug::Off)
{
    SlabCacheConfig c;
    c.name = name;
    c.object_size = size;
    c.alignment = alignment;
    c.debug = debug;
    return c;
}

void init_or_fail(SlabCache& cache, const SlabCacheConfig& c, mm::PageSource& source)
{
    auto result = cache.init(c, source);
    REQUIRE(result.has_value());
}

uintptr_t slab_of(const SlabCache& cache, const void* p)
{
    return reinterpret_cast<uintptr_t>(p) & ~(cache.slab_bytes() - 1);
}

std::string hex(const void* p)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(p)));
    return buf;
}

#define REQUIRE_INVARIANTS(cache)                                                                                      \
    do {                                                                                                               \
        const SlabCheckReport report_ = (cache).check_invariants();                                                    \
        INFO("violations " << report_.violations << " first " << mm::to_string(report_.first));                        \
        REQUIRE(report_.ok());                                                                                         \
    } while (0)

} // namespace

TEST_CASE("slab: every error, corruption kind and violation has a name", "[slab]")
{
    std::vector<std::string> names;
    for (auto e : {SlabError::InvalidConfig, SlabError::ForeignPointer, SlabError::WrongCache,
                   SlabError::NotObjectStart, SlabError::DoubleFree, SlabError::NotEmpty})
        names.emplace_back(mm::to_string(e));
    for (auto k : {SlabCorruption::Poison, SlabCorruption::RedZoneBefore, SlabCorruption::RedZoneAfter,
                   SlabCorruption::FreeListLink})
        names.emplace_back(mm::to_string(k));
    for (auto v : {SlabViolation::None, SlabViolation::BadHeader, SlabViolation::ListCorrupt, SlabViolation::WrongList,
                   SlabViolation::CountMismatch, SlabViolation::FreeListCorrupt, SlabViolation::StrayBitmapBit,
                   SlabViolation::PoisonDamaged, SlabViolation::RedZoneDamaged})
        names.emplace_back(mm::to_string(v));
    for (auto p : {SlabCheckPoint::Allocate, SlabCheckPoint::Free, SlabCheckPoint::Check})
        names.emplace_back(mm::to_string(p));
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    CHECK(std::string(mm::to_string(static_cast<SlabError>(200))) == "unknown slab error");
    CHECK(std::string(mm::to_string(static_cast<SlabCorruption>(200))) == "unknown corruption");
    CHECK(std::string(mm::to_string(static_cast<SlabViolation>(200))) == "unknown violation");
    CHECK(std::string(mm::to_string(static_cast<SlabCheckPoint>(200))) == "unknown");
}

TEST_CASE("slab: configuration is validated and a failed init changes nothing", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    auto expect_invalid = [&](SlabCacheConfig c) {
        auto r = cache.init(c, source);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == SlabError::InvalidConfig);
        CHECK_FALSE(cache.initialized());
    };
    expect_invalid(config("zero", 0));
    expect_invalid(config("align3", 64, 3));
    expect_invalid(config("align0", 64, 0));
    expect_invalid(config("align8k", 64, 8192));
    expect_invalid(config("huge", (kPage << SlabCache::kMaxSlabOrder) + 1));
    expect_invalid(config("huge2", kPage << SlabCache::kMaxSlabOrder)); // the header leaves no room
    SlabCacheConfig bad_order = config("order", 64);
    bad_order.slab_order = SlabCache::kMaxSlabOrder + 1;
    expect_invalid(bad_order);
    SlabCacheConfig too_small = config("small-slab", 5000);
    too_small.slab_order = 0;
    expect_invalid(too_small);
    CHECK(source.allocations() == 0);

    // A cache that holds slabs refuses init; its state is untouched.
    init_or_fail(cache, config("live", 64), source);
    void* p = cache.allocate();
    REQUIRE(p != nullptr);
    const SlabCacheStats before = cache.stats();
    auto r = cache.init(config("other", 128), source);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == SlabError::NotEmpty);
    CHECK(cache.stats() == before);
    REQUIRE(cache.free(p).has_value());
    REQUIRE(cache.release_all().has_value());
    // After release_all it can be re-initialised with another geometry; counters restart.
    init_or_fail(cache, config("again", 128), source);
    CHECK(cache.object_size() == 128);
    CHECK(cache.stats().allocations == 0);
    CHECK(std::string(cache.name()) == "again");
}

TEST_CASE("slab: an uninitialised cache hands out nothing and rejects every free", "[slab]")
{
    SlabCache cache;
    CHECK_FALSE(cache.initialized());
    CHECK(cache.allocate() == nullptr);
    CHECK(cache.stats().failed_allocations == 1);
    alignas(64) static uint8_t buffer[256];
    auto r = cache.free(buffer);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == SlabError::ForeignPointer);
    CHECK(cache.shrink() == 0);
    CHECK(cache.check_invariants().ok());
    CHECK(cache.release_all().has_value());
}

TEST_CASE("slab: geometry keeps waste at most 1/8 with enough objects per slab", "[slab]")
{
    TestPageSource source;
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        for (unsigned i = 0; i < mm::kSizeClassCount; ++i) {
            SlabCache cache;
            init_or_fail(cache, config(mm::size_class_name(i), mm::size_class_size(i), 16, debug), source);
            INFO(cache.name() << " debug " << (debug == SlabDebug::On));
            const size_t slab = cache.slab_bytes();
            CHECK(slab == (kPage << cache.slab_order()));
            CHECK(cache.objects_per_slab() >= SlabCache::kMinObjectsPerSlab);
            CHECK((slab - cache.objects_per_slab() * cache.slot_size()) * 8 <= slab);
            CHECK(cache.slot_size() % 16 == 0);
            if (debug == SlabDebug::Off)
                CHECK(cache.slot_size() == mm::size_class_size(i));
            else
                CHECK(cache.slot_size() >= mm::size_class_size(i) + 32);
            CHECK(cache.debug_enabled() == (debug == SlabDebug::On));
        }
    }
    SlabCache cache;
    init_or_fail(cache, config("tiny", 1), source);
    CHECK(cache.slot_size() == 8);
    CHECK(cache.alignment() == 8);
    CHECK(cache.slab_order() == 0);
    CHECK(cache.objects_per_slab() > 400);

    // No order meets the target: the least wasteful one is used.
    SlabCache big;
    init_or_fail(big, config("big", 300 * 1024), source);
    CHECK(big.objects_per_slab() >= 1);
    CHECK(big.slab_order() <= SlabCache::kMaxSlabOrder);

    // A forced order is honoured.
    SlabCacheConfig forced = config("forced", 64);
    forced.slab_order = 3;
    SlabCache f;
    init_or_fail(f, forced, source);
    CHECK(f.slab_bytes() == 32768);
    CHECK(f.stats().pages_per_slab == 8);
}

TEST_CASE("slab: objects are distinct, aligned, inside their slab and reused LIFO", "[slab]")
{
    TestPageSource source;
    for (size_t alignment : {8, 16, 64, 256, 4096}) {
        for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
            SlabCache cache;
            init_or_fail(cache, config("aligned", 72, alignment, debug), source);
            INFO("alignment " << alignment << " debug " << (debug == SlabDebug::On));
            std::vector<void*> objects;
            for (size_t i = 0; i < 3 * cache.objects_per_slab() + 1; ++i) {
                void* p = cache.allocate();
                REQUIRE(p != nullptr);
                REQUIRE(reinterpret_cast<uintptr_t>(p) % alignment == 0);
                REQUIRE(reinterpret_cast<uintptr_t>(p) + 72 <= slab_of(cache, p) + cache.slab_bytes());
                REQUIRE(SlabCache::cache_of(p, cache.slab_bytes()) == &cache);
                std::memset(p, static_cast<int>(i), 72);
                objects.push_back(p);
            }
            std::vector<void*> sorted = objects;
            std::sort(sorted.begin(), sorted.end());
            for (size_t i = 1; i < sorted.size(); ++i)
                REQUIRE(static_cast<uint8_t*>(sorted[i]) >= static_cast<uint8_t*>(sorted[i - 1]) + 72);
            for (size_t i = 0; i < objects.size(); ++i)
                REQUIRE(static_cast<uint8_t*>(objects[i])[71] == static_cast<uint8_t>(i));
            CHECK(cache.stats().slabs_total == 4);
            REQUIRE_INVARIANTS(cache);

            void* last = objects.back();
            REQUIRE(cache.free(last).has_value());
            CHECK(cache.allocate() == last); // LIFO: the hottest object comes back first

            for (void* p : objects)
                REQUIRE(cache.free(p).has_value());
            REQUIRE_INVARIANTS(cache);
            cache.shrink();
            CHECK(source.live_blocks() == 0);
        }
    }
    CHECK(source.bad_frees() == 0);
}

TEST_CASE("slab: statistics follow the slabs through partial, full and empty", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("stats-128", 128), source);
    const size_t per_slab = cache.objects_per_slab();
    REQUIRE(per_slab >= 8);

    SlabCacheStats s = cache.stats();
    CHECK(std::string(s.name) == "stats-128");
    CHECK(s.object_size == 128);
    CHECK(s.slot_size == 128);
    CHECK(s.objects_per_slab == per_slab);
    CHECK(s.pages_per_slab == 1);
    CHECK(s.slabs_total == 0);
    CHECK(s.active_objects == 0);
    CHECK_FALSE(s.debug);

    std::vector<void*> objects;
    for (size_t i = 0; i < 3 * per_slab; ++i)
        objects.push_back(cache.allocate());
    s = cache.stats();
    CHECK(s.active_objects == 3 * per_slab);
    CHECK(s.total_objects == 3 * per_slab);
    CHECK(s.slabs_total == 3);
    CHECK(s.slabs_full == 3);
    CHECK(s.slabs_partial == 0);
    CHECK(s.slabs_empty == 0);
    CHECK(s.allocations == 3 * per_slab);
    CHECK(s.frees == 0);
    CHECK(s.peak_active_objects == 3 * per_slab);
    CHECK(s.bytes_total == 3 * kPage);
    CHECK(s.bytes_active == 3 * per_slab * 128);
    CHECK(s.slabs_allocated == 3);
    CHECK(source.live_blocks() == 3);

    // One object out of the first slab: it becomes partial.
    REQUIRE(cache.free(objects[0]).has_value());
    s = cache.stats();
    CHECK(s.slabs_full == 2);
    CHECK(s.slabs_partial == 1);
    CHECK(s.frees == 1);
    REQUIRE_INVARIANTS(cache);

    // Empty the first and second slabs: one empty slab is kept, the other released.
    for (size_t i = 1; i < 2 * per_slab; ++i)
        REQUIRE(cache.free(objects[i]).has_value());
    s = cache.stats();
    CHECK(s.slabs_total == 2);
    CHECK(s.slabs_empty == 1);
    CHECK(s.slabs_full == 1);
    CHECK(s.slabs_released == 1);
    CHECK(source.live_blocks() == 2);
    CHECK(s.active_objects == per_slab);
    CHECK(s.peak_active_objects == 3 * per_slab);
    REQUIRE_INVARIANTS(cache);

    // The kept empty slab is reused before the PageSource is asked.
    const size_t before = source.allocations();
    void* again = cache.allocate();
    CHECK(source.allocations() == before);
    REQUIRE(cache.free(again).has_value());

    // Emptying the last slab: it is the current one, so it stays too.
    for (size_t i = 2 * per_slab; i < 3 * per_slab; ++i)
        REQUIRE(cache.free(objects[i]).has_value());
    s = cache.stats();
    CHECK(s.active_objects == 0);
    CHECK(s.frees == s.allocations);
    REQUIRE_INVARIANTS(cache);

    const size_t released = cache.shrink();
    CHECK(released == s.slabs_total * kPage);
    CHECK(source.live_blocks() == 0);
    s = cache.stats();
    CHECK(s.slabs_total == 0);
    CHECK(s.slabs_empty == 0);
    CHECK(s.bytes_total == 0);
    CHECK(cache.shrink() == 0);
    REQUIRE_INVARIANTS(cache);

    char line[256];
    const size_t n = mm::format_slabinfo(cache.stats(), line, sizeof(line));
    CHECK(n < sizeof(line));
    const std::string text(line);
    CHECK(text.find("stats-128") == 0);
    CHECK(text.find("size 128 slot 128") != std::string::npos);
    CHECK(text.find("pages/slab") != std::string::npos);
}

TEST_CASE("slab: the empty-slab limit is configurable", "[slab]")
{
    for (unsigned keep : {0u, 1u, 3u}) {
        TestPageSource source;
        SlabCache cache;
        SlabCacheConfig c = config("keep", 256);
        c.max_empty_slabs = keep;
        init_or_fail(cache, c, source);
        const size_t per_slab = cache.objects_per_slab();
        std::vector<void*> objects;
        for (size_t i = 0; i < 6 * per_slab; ++i)
            objects.push_back(cache.allocate());
        for (void* p : objects)
            REQUIRE(cache.free(p).has_value());
        INFO("keep " << keep);
        // The current slab (the last one) stays, plus up to `keep` other empty slabs.
        CHECK(source.live_blocks() == keep + 1);
        CHECK(cache.stats().slabs_empty == keep + 1);
        REQUIRE_INVARIANTS(cache);
        cache.shrink();
        CHECK(source.live_blocks() == 0);
    }
}

TEST_CASE("slab: one object per slab moves straight between full and empty", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    SlabCacheConfig c = config("one-per-slab", 3000);
    c.slab_order = 0;
    init_or_fail(cache, c, source);
    REQUIRE(cache.objects_per_slab() == 1);
    std::vector<void*> objects;
    for (int i = 0; i < 5; ++i)
        objects.push_back(cache.allocate());
    CHECK(cache.stats().slabs_full == 5);
    REQUIRE_INVARIANTS(cache);
    REQUIRE(cache.free(objects[1]).has_value()); // full -> empty (kept)
    REQUIRE(cache.free(objects[2]).has_value()); // full -> released
    CHECK(cache.stats().slabs_empty == 1);
    CHECK(cache.stats().slabs_total == 4);
    REQUIRE_INVARIANTS(cache);
    for (int i : {0, 3, 4})
        REQUIRE(cache.free(objects[i]).has_value());
    REQUIRE_INVARIANTS(cache);
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: an exhausted PageSource fails the allocation and changes nothing else", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("oom", 512), source);
    const size_t pages_per_slab = cache.slab_bytes() / kPage;
    source.set_limit_pages(2 * pages_per_slab);
    std::vector<void*> objects;
    while (void* p = cache.allocate())
        objects.push_back(p);
    CHECK(objects.size() == 2 * cache.objects_per_slab());
    SlabCacheStats before = cache.stats();
    CHECK(before.failed_allocations == 1);
    CHECK(cache.allocate() == nullptr);
    SlabCacheStats after = cache.stats();
    CHECK(after.failed_allocations == 2);
    after.failed_allocations = before.failed_allocations;
    CHECK(after == before);
    REQUIRE_INVARIANTS(cache);

    // Memory back: allocation works again.
    REQUIRE(cache.free(objects.back()).has_value());
    objects.pop_back();
    void* p = cache.allocate();
    CHECK(p != nullptr);
    objects.push_back(p);
    for (void* q : objects)
        REQUIRE(cache.free(q).has_value());
    cache.shrink();
    CHECK(source.live_blocks() == 0);
    CHECK(source.refusals() >= 2);
}

TEST_CASE("slab: a PageSource that breaks the alignment contract is refused", "[slab]")
{
    struct Misaligned final : mm::PageSource {
        alignas(8192) uint8_t buffer[3 * 8192];
        int frees = 0;
        void* allocate_pages(unsigned) override { return buffer + 4096 + 64; }
        void free_pages(void*, unsigned) override { ++frees; }
    };
    static Misaligned source;
    SlabCache cache;
    init_or_fail(cache, config("misaligned", 64), source);
    CHECK(cache.allocate() == nullptr);
    CHECK(source.frees == 1);
    CHECK(cache.stats().slabs_total == 0);
}

TEST_CASE("slab: invalid frees are rejected and leave stats, invariants and memory untouched; validate agrees",
          "[slab]")
{
    for (SlabDebug debug : {SlabDebug::Off, SlabDebug::On}) {
        INFO("debug " << (debug == SlabDebug::On));
        TestPageSource source;
        SlabCache cache;
        SlabCache other;
        init_or_fail(cache, config("victim", 96, 16, debug), source);
        init_or_fail(other, config("other", 96, 16, debug), source);
        ReportLog log;
        log.attach(cache);

        std::vector<void*> objects;
        for (int i = 0; i < 20; ++i)
            objects.push_back(cache.allocate());
        void* freed = objects[5];
        REQUIRE(cache.free(freed).has_value());
        void* foreign_object = other.allocate();
        REQUIRE(foreign_object != nullptr);

        const uintptr_t slab = slab_of(cache, objects[0]);
        REQUIRE(slab_of(cache, objects[10]) == slab);
        const std::vector<uint8_t> memory_before(reinterpret_cast<uint8_t*>(slab),
                                                 reinterpret_cast<uint8_t*>(slab) + cache.slab_bytes());
        const SlabCacheStats stats_before = cache.stats();

        auto expect = [&](void* ptr, SlabError error) {
            INFO("pointer " << hex(ptr));
            auto v = cache.validate(ptr); // what Heap::reallocate asks first
            REQUIRE_FALSE(v.has_value());
            CHECK(v.error() == error);
            auto r = cache.free(ptr);
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error() == error);
            CHECK(cache.stats() == stats_before);
            CHECK(std::memcmp(memory_before.data(), reinterpret_cast<void*>(slab), memory_before.size()) == 0);
            REQUIRE_INVARIANTS(cache);
        };

        expect(nullptr, SlabError::ForeignPointer);
        expect(reinterpret_cast<void*>(uintptr_t{64}), SlabError::ForeignPointer);
        // A readable, slab-aligned buffer that is no slab.
        void* plain = std::aligned_alloc(cache.slab_bytes(), cache.slab_bytes());
        std::memset(plain, 0x11, cache.slab_bytes());
        expect(static_cast<uint8_t*>(plain) + 256, SlabError::ForeignPointer);
        std::free(plain);
        expect(foreign_object, SlabError::WrongCache);
        auto* o = static_cast<uint8_t*>(objects[10]);
        expect(o + 1, SlabError::NotObjectStart);
        expect(o + 8, SlabError::NotObjectStart);
        expect(o + 95, SlabError::NotObjectStart);
        expect(o - 1, SlabError::NotObjectStart);                             // previous slot's tail / red zone
        expect(reinterpret_cast<void*>(slab), SlabError::NotObjectStart);     // the header itself
        expect(reinterpret_cast<void*>(slab + 8), SlabError::NotObjectStart); // inside the header
        expect(reinterpret_cast<void*>(slab + cache.slab_bytes() - 1), SlabError::NotObjectStart); // tail
        const size_t past_last = Access::first_object_offset(cache) + cache.objects_per_slab() * cache.slot_size();
        if (past_last < cache.slab_bytes())
            expect(reinterpret_cast<uint8_t*>(slab) + past_last, SlabError::NotObjectStart); // one past the last slot
        if (debug == SlabDebug::On)
            expect(o - Access::object_offset(cache), SlabError::NotObjectStart); // slot start = red zone
        expect(freed, SlabError::DoubleFree);
        // Never allocated since the slab was made.
        REQUIRE(cache.objects_per_slab() > 20);
        expect(static_cast<uint8_t*>(objects[19]) + cache.slot_size(), SlabError::DoubleFree);
        // Every live object passes, and validating changes nothing.
        for (void* p : objects) {
            if (p != freed)
                CHECK(cache.validate(p).has_value());
        }
        CHECK(cache.stats() == stats_before);
        CHECK(std::memcmp(memory_before.data(), reinterpret_cast<void*>(slab), memory_before.size()) == 0);
        CHECK(log.reports.empty());

        REQUIRE(other.free(foreign_object).has_value());
        for (void* p : objects) {
            if (p != freed)
                REQUIRE(cache.free(p).has_value());
        }
        cache.shrink();
        other.shrink();
        CHECK(source.live_blocks() == 0);
    }
}

TEST_CASE("slab: a pointer into a released slab reads as foreign", "[slab]")
{
    // Pages that stay mapped after release, to look at the released header.
    struct Arena final : mm::PageSource {
        alignas(4096) uint8_t pages[4][4096];
        bool used[4] = {};
        void* allocate_pages(unsigned order) override
        {
            if (order != 0)
                return nullptr;
            for (int i = 0; i < 4; ++i) {
                if (!used[i]) {
                    used[i] = true;
                    return pages[i];
                }
            }
            return nullptr;
        }
        void free_pages(void* p, unsigned) override { used[(static_cast<uint8_t*>(p) - pages[0]) / 4096] = false; }
    };
    static Arena arena;
    SlabCache cache;
    init_or_fail(cache, config("released", 64), arena);
    void* p = cache.allocate();
    REQUIRE(cache.free(p).has_value());
    CHECK(cache.shrink() == 4096);
    auto r = cache.free(p);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == SlabError::ForeignPointer);
    CHECK(SlabCache::cache_of(p, 4096) == nullptr);
}

TEST_CASE("slab: cache_of finds the owning cache from any object", "[slab]")
{
    TestPageSource source;
    SlabCache a;
    SlabCache b;
    SlabCacheConfig ca = config("a", 48);
    SlabCacheConfig cb = config("b", 1000);
    ca.slab_order = cb.slab_order = 2; // one slab size for both, as a kmalloc layer would
    init_or_fail(a, ca, source);
    init_or_fail(b, cb, source);
    void* pa = a.allocate();
    void* pb = b.allocate();
    CHECK(SlabCache::cache_of(pa, 16384) == &a);
    CHECK(SlabCache::cache_of(pb, 16384) == &b);
    CHECK(SlabCache::cache_of(static_cast<uint8_t*>(pb) + 17, 16384) == &b);
    CHECK(SlabCache::cache_of(pa, 3000) == nullptr); // not a power of two
    CHECK(SlabCache::cache_of(nullptr, 16384) == nullptr);
    // The header found at a smaller alignment belongs to a cache with other slabs.
    SlabCache c32;
    SlabCacheConfig cc = config("c32", 64);
    cc.slab_order = 3;
    init_or_fail(c32, cc, source);
    void* pc = c32.allocate();
    CHECK(SlabCache::cache_of(pc, 32768) == &c32);
    CHECK(SlabCache::cache_of(pc, 16384) == nullptr);
    REQUIRE(c32.free(pc).has_value());
    c32.shrink();
    REQUIRE(a.free(pa).has_value());
    REQUIRE(b.free(pb).has_value());
    a.shrink();
    b.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: release_all refuses while objects are allocated", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("release", 32), source);
    void* p = cache.allocate();
    const SlabCacheStats before = cache.stats();
    auto r = cache.release_all();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() == SlabError::NotEmpty);
    CHECK(cache.stats() == before);
    REQUIRE(cache.free(p).has_value());
    REQUIRE(cache.release_all().has_value());
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: poisoning fills freed objects and catches a write after free", "[slab][debug]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("kmalloc-64", 64, 16, SlabDebug::On), source);
    ReportLog log;
    log.attach(cache);
    REQUIRE(cache.debug_enabled());
    REQUIRE(cache.stats().debug);

    // Fresh objects come poisoned with intact red zones around them.
    auto* p = static_cast<uint8_t*>(cache.allocate());
    for (size_t i = 0; i < 64; ++i)
        REQUIRE(p[i] == mm::kSlabPoisonByte);
    const size_t left = Access::object_offset(cache);
    for (size_t i = 1; i <= left; ++i)
        REQUIRE(p[-static_cast<ptrdiff_t>(i)] == mm::kSlabRedZoneByte);
    for (size_t i = 64; i < cache.slot_size() - left; ++i)
        REQUIRE(p[i] == mm::kSlabRedZoneByte);

    std::memset(p, 0x42, 64);
    REQUIRE(cache.free(p).has_value());
    // The whole object is poisoned: the free-list link lives in the red zone.
    for (size_t i = 0; i < 64; ++i)
        REQUIRE(p[i] == mm::kSlabPoisonByte);
    REQUIRE_INVARIANTS(cache);
    CHECK(log.reports.empty());

    // Write after free at offset 10.
    p[10] = 0x41;
    p[11] = 0x42;
    p[12] = 0x43;
    CHECK(cache.check_invariants().has(SlabViolation::PoisonDamaged));
    CHECK(cache.check_invariants().first_object == p);
    auto* q = static_cast<uint8_t*>(cache.allocate());
    REQUIRE(q == p); // LIFO: the damaged object is the next one out
    REQUIRE(log.reports.size() == 1);
    const SlabCorruptionReport& r = log.reports[0];
    CHECK(std::string(r.cache_name) == "kmalloc-64");
    CHECK(r.kind == SlabCorruption::Poison);
    CHECK(r.detected_at == SlabCheckPoint::Allocate);
    CHECK(r.object == p);
    CHECK(reinterpret_cast<uintptr_t>(r.slab) == slab_of(cache, p));
    CHECK(r.object_size == 64);
    CHECK(r.offset == 10);
    CHECK(r.expected == 0x6b);
    REQUIRE(r.found_count == 16);
    CHECK(r.found[0] == 0x41);
    CHECK(r.found[1] == 0x42);
    CHECK(r.found[2] == 0x43);
    for (size_t i = 3; i < 16; ++i)
        CHECK(r.found[i] == 0x6b);
    const std::string& text = log.texts[0];
    INFO(text);
    CHECK(text.find("\"kmalloc-64\"") != std::string::npos);
    CHECK(text.find(hex(p)) != std::string::npos);
    CHECK(text.find("offset +10") != std::string::npos);
    CHECK(text.find("expected 0x6b") != std::string::npos);
    CHECK(text.find("found 41 42 43 6b") != std::string::npos);
    CHECK(text.find("write after free") != std::string::npos);
    CHECK(cache.stats().corruptions == 1);
    // The object was handed out anyway (the kernel panics in the callback) in a clean state.
    for (size_t i = 0; i < 64; ++i)
        REQUIRE(q[i] == mm::kSlabPoisonByte);
    REQUIRE_INVARIANTS(cache);

    // Damage to the last byte: one found byte (the zone ends there).
    REQUIRE(cache.free(q).has_value());
    q[63] = 0;
    REQUIRE(cache.allocate() == q);
    REQUIRE(log.reports.size() == 2);
    CHECK(log.reports[1].offset == 63);
    CHECK(log.reports[1].found_count == 1);
    CHECK(log.reports[1].found[0] == 0);
    REQUIRE(cache.free(q).has_value());
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: red zones catch overflows by 1 and by 32 bytes and an underflow at free", "[slab][debug]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("rz-48", 48, 16, SlabDebug::On), source);
    ReportLog log;
    log.attach(cache);
    const size_t left = Access::object_offset(cache);
    const size_t right = cache.slot_size() - left - 48;
    REQUIRE(left == 16);
    REQUIRE(right == 16);

    SECTION("overflow by one byte")
    {
        auto* p = static_cast<uint8_t*>(cache.allocate());
        p[48] = 0x00;
        REQUIRE(cache.free(p).has_value());
        REQUIRE(log.reports.size() == 1);
        const auto& r = log.reports[0];
        CHECK(r.kind == SlabCorruption::RedZoneAfter);
        CHECK(r.detected_at == SlabCheckPoint::Free);
        CHECK(r.object == p);
        CHECK(r.offset == 48);
        CHECK(r.expected == 0xcc);
        CHECK(r.found_count == right);
        CHECK(r.found[0] == 0x00);
        CHECK(r.found[1] == 0xcc);
        INFO(log.texts[0]);
        CHECK(log.texts[0].find("red zone after the object") != std::string::npos);
        CHECK(log.texts[0].find("offset +48: expected 0xcc, found 00 cc") != std::string::npos);
        CHECK(log.texts[0].find("detected at free") != std::string::npos);
        // The zone was repaired; the cache is consistent.
        REQUIRE_INVARIANTS(cache);
    }
    SECTION("overflow by 32 bytes runs into the next object's red zone")
    {
        auto* a = static_cast<uint8_t*>(cache.allocate());
        auto* b = static_cast<uint8_t*>(cache.allocate());
        REQUIRE(b == a + cache.slot_size());
        std::memset(a + 48, 'X', 32);
        CHECK(cache.check_invariants().has(SlabViolation::RedZoneDamaged));
        REQUIRE(cache.free(a).has_value());
        REQUIRE(log.reports.size() == 1);
        CHECK(log.reports[0].kind == SlabCorruption::RedZoneAfter);
        CHECK(log.reports[0].object == a);
        CHECK(log.reports[0].offset == 48);
        CHECK(log.reports[0].found_count == 16);
        for (size_t i = 0; i < 16; ++i)
            CHECK(log.reports[0].found[i] == 'X');
        // The spill into b's left red zone shows when b is freed.
        REQUIRE(cache.free(b).has_value());
        REQUIRE(log.reports.size() == 2);
        CHECK(log.reports[1].kind == SlabCorruption::RedZoneBefore);
        CHECK(log.reports[1].object == b);
        CHECK(log.reports[1].offset == -16);
        CHECK(log.reports[1].found_count == 16);
        CHECK(log.texts[1].find("offset -16") != std::string::npos);
        REQUIRE_INVARIANTS(cache);
    }
    SECTION("underflow by one byte")
    {
        auto* p = static_cast<uint8_t*>(cache.allocate());
        p[-1] = 0x7f;
        REQUIRE(cache.free(p).has_value());
        REQUIRE(log.reports.size() == 1);
        CHECK(log.reports[0].kind == SlabCorruption::RedZoneBefore);
        CHECK(log.reports[0].offset == -1);
        CHECK(log.reports[0].found_count == 1);
        CHECK(log.reports[0].found[0] == 0x7f);
        REQUIRE_INVARIANTS(cache);
    }
    SECTION("the invariant checker sees damage to a free object's red zones")
    {
        auto* p = static_cast<uint8_t*>(cache.allocate());
        REQUIRE(cache.free(p).has_value());
        p[-2] = 0;
        CHECK(cache.check_invariants().has(SlabViolation::RedZoneDamaged));
        p[-2] = mm::kSlabRedZoneByte;
        REQUIRE_INVARIANTS(cache);
        p[48 + 15] = 0;
        CHECK(cache.check_invariants().has(SlabViolation::RedZoneDamaged));
        p[48 + 15] = mm::kSlabRedZoneByte;
        REQUIRE_INVARIANTS(cache);
    }
    SECTION("damage to a free object's red zone shows at its next allocation")
    {
        auto* p = static_cast<uint8_t*>(cache.allocate());
        REQUIRE(cache.free(p).has_value());
        p[50] = 1; // right red zone
        p[-3] = 2; // left red zone, beyond the link word
        REQUIRE(cache.allocate() == p);
        REQUIRE(log.reports.size() == 2);
        CHECK(log.reports[0].kind == SlabCorruption::RedZoneBefore);
        CHECK(log.reports[0].offset == -3);
        CHECK(log.reports[0].detected_at == SlabCheckPoint::Allocate);
        CHECK(log.reports[1].kind == SlabCorruption::RedZoneAfter);
        CHECK(log.reports[1].offset == 50);
        REQUIRE(cache.free(p).has_value());
        REQUIRE_INVARIANTS(cache);
    }
    CHECK(cache.stats().corruptions == log.reports.size());
    CHECK(cache.stats().active_objects == 0);
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: a clobbered free-list link is reported and the list rebuilt", "[slab][debug]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("links", 32, 8, SlabDebug::On), source);
    ReportLog log;
    log.attach(cache);
    std::vector<void*> objects;
    for (int i = 0; i < 6; ++i)
        objects.push_back(cache.allocate());
    REQUIRE(cache.free(objects[1]).has_value());
    REQUIRE(cache.free(objects[3]).has_value()); // list: 3 -> 1 -> rest of slab
    void** link = Access::link_of(cache, objects[3]);
    std::memset(link, 0x41, sizeof(void*));
    CHECK(cache.check_invariants().has(SlabViolation::FreeListCorrupt));

    void* p = cache.allocate();
    REQUIRE(log.reports.size() == 1);
    const auto& r = log.reports[0];
    CHECK(r.kind == SlabCorruption::FreeListLink);
    CHECK(r.object == objects[3]);
    CHECK(r.offset == -static_cast<int64_t>(Access::object_offset(cache)));
    CHECK(r.found_count == 8);
    CHECK(r.found[0] == 0x41);
    INFO(log.texts[0]);
    CHECK(log.texts[0].find("free-list link") != std::string::npos);
    CHECK(log.texts[0].find("found 41 41 41 41 41 41 41 41") != std::string::npos);
    // The rebuilt list starts with the lowest free object.
    CHECK(p == objects[1]);
    REQUIRE_INVARIANTS(cache);

    // A self-referencing link is caught the same way.
    REQUIRE(cache.free(p).has_value());
    *Access::link_of(cache, p) = p;
    REQUIRE(cache.allocate() == p);
    CHECK(log.reports.size() == 2);
    REQUIRE_INVARIANTS(cache);

    // So is a damaged list head in the slab header.
    void* slab = reinterpret_cast<void*>(slab_of(cache, p));
    Access::free_head(slab) = static_cast<uint8_t*>(p) + 1;
    void* q = cache.allocate();
    REQUIRE(log.reports.size() == 3);
    CHECK(log.reports[2].kind == SlabCorruption::FreeListLink);
    CHECK(log.reports[2].object == nullptr);
    CHECK(q != nullptr);
    REQUIRE_INVARIANTS(cache);

    // p and q are objects[1] and objects[3] again: all six are allocated.
    CHECK(q == objects[3]);
    for (void* o : objects)
        REQUIRE(cache.free(o).has_value());
    CHECK(cache.stats().active_objects == 0);
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: without a callback corruption is logged and counted", "[slab][debug]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("quiet", 40, 8, SlabDebug::On), source);
    auto* p = static_cast<uint8_t*>(cache.allocate());
    p[40] = 0;
    REQUIRE(cache.free(p).has_value());
    CHECK(cache.stats().corruptions == 1);
    REQUIRE_INVARIANTS(cache);
    cache.shrink();
}

TEST_CASE("slab: debug mode follows the build default unless forced", "[slab][debug]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("default", 64, 8, SlabDebug::Default), source);
    CHECK(cache.debug_enabled() == mm::kSlabDebugDefault);
    SlabCache off;
    init_or_fail(off, config("off", 64, 8, SlabDebug::Off), source);
    CHECK_FALSE(off.debug_enabled());
    CHECK(off.slot_size() == 64);
}

namespace {

// 64-byte objects in three slabs: slab 0 full, slab 1 partial (its first 4 objects free), slab 2
// current, for the checkers' corruption tests.
struct ThreeSlabs {
    explicit ThreeSlabs(const char* name)
    {
        init_or_fail(cache, config(name, 64), source);
        per_slab = cache.objects_per_slab();
        for (size_t i = 0; i < 3 * per_slab; ++i)
            objects.push_back(cache.allocate());
        for (size_t i = per_slab; i < per_slab + 4; ++i)
            REQUIRE(cache.free(objects[i]).has_value());
    }

    TestPageSource source;
    SlabCache cache;
    size_t per_slab = 0;
    std::vector<void*> objects;
};

} // namespace

// The fuzz harness's per-operation check: each corruption below is in the slab of the object
// passed (or in the counters), and must be caught without walking every slab.
TEST_CASE("slab: the local check finds corruption in the slab touched", "[slab]")
{
    ThreeSlabs three("local");
    SlabCache& cache = three.cache;
    const size_t per_slab = three.per_slab;
    std::vector<void*>& objects = three.objects;
    for (size_t i = 0; i < 3; ++i)
        REQUIRE(cache.check_slab_of(objects[i * per_slab + per_slab - 1]).ok());
    void* slab1 = reinterpret_cast<void*>(slab_of(cache, objects[per_slab]));
    void* inside = objects[per_slab + 5];
    auto expect = [&](SlabViolation v) {
        const SlabCheckReport r = cache.check_slab_of(inside);
        INFO("expected " << mm::to_string(v) << ", first " << mm::to_string(r.first));
        CHECK(r.has(v));
        CHECK(r.slabs <= 1);
        CHECK_FALSE(cache.check_invariants().ok()); // the whole walk agrees
    };

    SECTION("in-use count")
    {
        ++Access::in_use(slab1);
        expect(SlabViolation::CountMismatch);
        --Access::in_use(slab1);
    }
    SECTION("free list points at a live object")
    {
        void** link = Access::link_of(cache, Access::free_head(slab1));
        void* saved = *link;
        *link = objects[per_slab + 6];
        expect(SlabViolation::FreeListCorrupt);
        *link = saved;
    }
    SECTION("list links")
    {
        void* saved = Access::prev(slab1);
        Access::prev(slab1) = slab1;
        expect(SlabViolation::ListCorrupt);
        Access::prev(slab1) = saved;
    }
    SECTION("on the wrong list")
    {
        Access::tag_full(slab1);
        expect(SlabViolation::ListCorrupt);
        Access::tag_partial(slab1);
    }
    SECTION("header")
    {
        Access::magic(slab1) ^= 1;
        expect(SlabViolation::BadHeader);
        Access::magic(slab1) ^= 1;
    }
    SECTION("counters")
    {
        Access::active(cache) += 10 * per_slab;
        expect(SlabViolation::CountMismatch);
        Access::active(cache) -= 10 * per_slab;
    }
    REQUIRE(cache.check_slab_of(inside).ok());
    for (size_t i = 0; i < objects.size(); ++i) {
        if (i < per_slab || i >= per_slab + 4)
            REQUIRE(cache.free(objects[i]).has_value());
    }
    cache.shrink();
}

TEST_CASE("slab: the invariant checker finds corruption", "[slab]")
{
    // Slab 0 full, slab 1 partial, slab 2 current; plus an allocated object in slab 1.
    ThreeSlabs three("checked");
    TestPageSource& source = three.source;
    SlabCache& cache = three.cache;
    const size_t per_slab = three.per_slab;
    std::vector<void*>& objects = three.objects;
    REQUIRE_INVARIANTS(cache);
    const SlabCheckReport good = cache.check_invariants();
    CHECK(good.slabs == 3);
    CHECK(good.active_objects == 3 * per_slab - 4);
    CHECK(good.free_objects == 4);

    void* slab0 = reinterpret_cast<void*>(slab_of(cache, objects[0]));
    void* slab1 = reinterpret_cast<void*>(slab_of(cache, objects[per_slab]));

    auto expect = [&](SlabViolation v) {
        const SlabCheckReport r = cache.check_invariants();
        INFO("expected " << mm::to_string(v) << ", first " << mm::to_string(r.first));
        CHECK_FALSE(r.ok());
        CHECK(r.has(v));
    };

    SECTION("in-use count")
    {
        ++Access::in_use(slab1);
        expect(SlabViolation::CountMismatch);
        --Access::in_use(slab1);
    }
    SECTION("in-use count beyond capacity")
    {
        const uint32_t saved = Access::in_use(slab1);
        Access::in_use(slab1) = static_cast<uint32_t>(per_slab + 1);
        expect(SlabViolation::CountMismatch);
        Access::in_use(slab1) = saved;
    }
    SECTION("stray bitmap bit")
    {
        const size_t words = (per_slab + 63) / 64;
        const uint64_t bit = uint64_t{1} << (per_slab % 64 == 0 ? 63 : per_slab % 64);
        if (per_slab % 64 != 0) {
            Access::bitmap(slab1)[words - 1] |= bit;
            expect(SlabViolation::StrayBitmapBit);
            Access::bitmap(slab1)[words - 1] &= ~bit;
        }
    }
    SECTION("free list entry marked allocated")
    {
        Access::bitmap(slab1)[0] ^= 1; // object per_slab + 0 ... is free; mark its bit
        expect(SlabViolation::FreeListCorrupt);
        Access::bitmap(slab1)[0] ^= 1;
    }
    SECTION("free list cycle")
    {
        void* head = Access::free_head(slab1);
        void** link = Access::link_of(cache, head);
        void* saved = *link;
        *link = head;
        expect(SlabViolation::FreeListCorrupt);
        *link = saved;
    }
    SECTION("free list pointing outside the slab")
    {
        void* head = Access::free_head(slab1);
        void** link = Access::link_of(cache, head);
        void* saved = *link;
        *link = objects[0];
        expect(SlabViolation::FreeListCorrupt);
        *link = saved;
    }
    SECTION("free list too short")
    {
        void* head = Access::free_head(slab1);
        void** link = Access::link_of(cache, head);
        void* saved = *link;
        *link = nullptr;
        expect(SlabViolation::FreeListCorrupt);
        *link = saved;
    }
    SECTION("slab magic")
    {
        const uint64_t saved = Access::magic(slab0);
        Access::magic(slab0) = 0;
        expect(SlabViolation::BadHeader);
        Access::magic(slab0) = saved;
    }
    SECTION("slab owned by another cache")
    {
        SlabCache* saved = Access::owner(slab0);
        SlabCache other;
        Access::owner(slab0) = &other;
        expect(SlabViolation::BadHeader);
        Access::owner(slab0) = saved;
    }
    SECTION("misaligned list entry")
    {
        Access::set_full_head(cache, static_cast<uint8_t*>(slab0) + 64);
        expect(SlabViolation::BadHeader);
        Access::set_full_head(cache, slab0);
    }
    SECTION("current slab with a bad header")
    {
        void* current = Access::current(cache);
        const uint64_t saved = Access::magic(current);
        Access::magic(current) = 1;
        expect(SlabViolation::BadHeader);
        Access::magic(current) = saved;
    }
    SECTION("current slab also on a list")
    {
        void* current = Access::current(cache);
        Access::set_current(cache, slab0);
        expect(SlabViolation::ListCorrupt);
        Access::set_current(cache, current);
    }
    SECTION("list tag")
    {
        Access::tag_partial(slab0);
        expect(SlabViolation::ListCorrupt);
        Access::tag_full(slab0);
    }
    SECTION("partial slab with no object in use")
    {
        const uint32_t saved = Access::in_use(slab1);
        Access::in_use(slab1) = 0;
        expect(SlabViolation::WrongList);
        Access::in_use(slab1) = saved;
    }
    SECTION("partial slab that is full")
    {
        const uint32_t saved = Access::in_use(slab1);
        Access::in_use(slab1) = static_cast<uint32_t>(per_slab);
        expect(SlabViolation::WrongList);
        Access::in_use(slab1) = saved;
    }
    SECTION("allocation counter below the active count")
    {
        const uint64_t saved = Access::allocations(cache);
        Access::allocations(cache) = 0;
        expect(SlabViolation::CountMismatch);
        Access::allocations(cache) = saved;
    }
    SECTION("released slab counter")
    {
        ++Access::slabs_released(cache);
        expect(SlabViolation::CountMismatch);
        --Access::slabs_released(cache);
    }
    SECTION("list links")
    {
        void* saved = Access::prev(slab0);
        Access::prev(slab0) = slab1;
        expect(SlabViolation::ListCorrupt);
        Access::prev(slab0) = saved;
    }
    SECTION("list cycle")
    {
        void* saved = Access::next(slab0);
        Access::next(slab0) = slab0;
        expect(SlabViolation::ListCorrupt);
        Access::next(slab0) = saved;
    }
    SECTION("slab on the wrong list")
    {
        REQUIRE(Access::full_head(cache) == slab0);
        --Access::in_use(slab0);
        expect(SlabViolation::WrongList);
        ++Access::in_use(slab0);
    }
    SECTION("list counter")
    {
        ++Access::partial_count(cache);
        expect(SlabViolation::CountMismatch);
        --Access::partial_count(cache);
    }
    SECTION("active counter")
    {
        ++Access::active(cache);
        expect(SlabViolation::CountMismatch);
        --Access::active(cache);
    }
    REQUIRE_INVARIANTS(cache);
    for (void* p : objects) {
        if (slab_of(cache, p) != reinterpret_cast<uintptr_t>(slab1) ||
            static_cast<uint8_t*>(p) >= static_cast<uint8_t*>(objects[per_slab + 4]))
            REQUIRE(cache.free(p).has_value());
    }
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: the invariant checker checks the empty list", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    init_or_fail(cache, config("empty-list", 256), source);
    const size_t per_slab = cache.objects_per_slab();
    std::vector<void*> objects;
    for (size_t i = 0; i < 2 * per_slab; ++i)
        objects.push_back(cache.allocate());
    for (size_t i = 0; i < per_slab; ++i)
        REQUIRE(cache.free(objects[i]).has_value());
    REQUIRE(cache.stats().slabs_empty == 1);
    REQUIRE_INVARIANTS(cache);
    void* slab0 = reinterpret_cast<void*>(slab_of(cache, objects[0]));
    Access::in_use(slab0) = 1;
    const SlabCheckReport r = cache.check_invariants();
    CHECK(r.has(SlabViolation::WrongList));
    CHECK(r.first_slab == slab0);
    Access::in_use(slab0) = 0;
    REQUIRE_INVARIANTS(cache);
    for (size_t i = per_slab; i < 2 * per_slab; ++i)
        REQUIRE(cache.free(objects[i]).has_value());
    cache.shrink();
    CHECK(source.live_blocks() == 0);
}

TEST_CASE("slab: a missing name becomes slab and long names are truncated", "[slab]")
{
    TestPageSource source;
    SlabCache cache;
    SlabCacheConfig c = config(nullptr, 64);
    init_or_fail(cache, c, source);
    CHECK(std::string(cache.name()) == "slab");
    SlabCache long_name;
    init_or_fail(long_name, config("a-very-long-cache-name-that-does-not-fit-in-32", 64), source);
    CHECK(std::string(long_name.name()).size() == SlabCache::kNameMax - 1);
}

TEST_CASE("slab: corruption report text is complete and truncates safely", "[slab][debug]")
{
    SlabCorruptionReport r;
    r.cache_name = "task";
    r.slab = reinterpret_cast<const void*>(uintptr_t{0xffff800000200000});
    r.object = reinterpret_cast<const void*>(uintptr_t{0xffff800000200140});
    r.object_size = 320;
    r.kind = SlabCorruption::RedZoneAfter;
    r.detected_at = SlabCheckPoint::Free;
    r.offset = 320;
    r.expected = 0xcc;
    r.found_count = 3;
    r.found[0] = 0xde;
    r.found[1] = 0xad;
    r.found[2] = 0xcc;
    char buf[400];
    const size_t n = mm::format_report(r, buf, sizeof(buf));
    const std::string text(buf);
    CHECK(n == text.size());
    CHECK(text ==
          "Mana Pool: slab cache \"task\": red zone after the object overwritten (detected at free): object "
          "0xffff800000200140 in slab 0xffff800000200000 (320-byte object), first bad byte at offset +320: expected "
          "0xcc, found de ad cc");
    char small[16];
    CHECK(mm::format_report(r, small, sizeof(small)) == n);
    CHECK(std::strlen(small) == 15);
}

// ---- Randomized model ----

namespace {

struct ModelCache {
    SlabCache cache;
    size_t size = 0;
    size_t alignment = 0;
    std::vector<std::pair<uint8_t*, uint8_t>> live; // object, fill byte
};

struct Model {
    TestPageSource source;
    std::vector<std::unique_ptr<ModelCache>> caches;
    std::map<uintptr_t, size_t> ranges; // every live object, for overlap checks
    uint64_t failures = 0;              // counted without Catch in the hot loop
    std::string first_failure;

    void fail(const std::string& what)
    {
        if (failures++ == 0)
            first_failure = what;
    }

    void add(const char* name, size_t size, size_t alignment, SlabDebug debug, unsigned order = SlabCache::kAutoOrder)
    {
        auto mc = std::make_unique<ModelCache>();
        SlabCacheConfig c = config(name, size, alignment, debug);
        c.slab_order = order;
        REQUIRE(mc->cache.init(c, source).has_value());
        mc->size = size;
        mc->alignment = alignment;
        caches.push_back(std::move(mc));
    }

    void allocate(ModelCache& mc, uint8_t fill)
    {
        auto* p = static_cast<uint8_t*>(mc.cache.allocate());
        if (p == nullptr)
            return fail("allocation failed");
        const uintptr_t a = reinterpret_cast<uintptr_t>(p);
        if (a % mc.alignment != 0)
            fail("misaligned object");
        auto next = ranges.lower_bound(a);
        if (next != ranges.end() && next->first < a + mc.size)
            fail("overlaps the next object");
        if (next != ranges.begin() && std::prev(next)->first + std::prev(next)->second > a)
            fail("overlaps the previous object");
        ranges.emplace(a, mc.size);
        std::memset(p, fill, mc.size);
        mc.live.emplace_back(p, fill);
    }

    void release(ModelCache& mc, size_t index)
    {
        auto [p, fill] = mc.live[index];
        mc.live[index] = mc.live.back();
        mc.live.pop_back();
        // All bytes equal `fill`: the first, then each equal to its successor.
        if (p[0] != fill || (mc.size > 1 && std::memcmp(p, p + 1, mc.size - 1) != 0))
            fail("object contents changed while allocated");
        ranges.erase(reinterpret_cast<uintptr_t>(p));
        if (!mc.cache.free(p).has_value())
            fail("free of a live object rejected");
    }

    void check_all()
    {
        for (auto& mc : caches) {
            const SlabCheckReport r = mc->cache.check_invariants();
            if (!r.ok())
                fail(std::string("invariants of ") + mc->cache.name() + ": " + mm::to_string(r.first));
            if (r.active_objects != mc->live.size())
                fail("live count differs from the model");
        }
    }
};

} // namespace

TEST_CASE("slab: randomized model over a million operations in several caches", "[slab][model]")
{
    Model model;
    model.add("m-8", 8, 8, SlabDebug::Off);
    model.add("m-16", 16, 16, SlabDebug::Off);
    model.add("m-24", 24, 8, SlabDebug::Off);
    model.add("m-100", 100, 4, SlabDebug::Off);
    model.add("m-192-a64", 192, 64, SlabDebug::Off);
    model.add("m-1000", 1000, 8, SlabDebug::Off);
    model.add("m-2048", 2048, 16, SlabDebug::Off);
    model.add("m-3000-o0", 3000, 8, SlabDebug::Off, 0); // one object per slab
    model.add("m-48-dbg", 48, 16, SlabDebug::On);
    model.add("m-640-dbg", 640, 16, SlabDebug::On);
    model.add("m-13-dbg", 13, 1, SlabDebug::On);
    const size_t cache_count = model.caches.size();

    std::mt19937_64 rng(0x5eed51ab);
    constexpr uint64_t kOps = 1'100'000;
    constexpr uint64_t kPhase = 50'000;
    uint64_t allocations = 0;
    uint64_t frees = 0;
    for (uint64_t op = 0; op < kOps; ++op) {
        // Phases alternate between growth and decline so slabs fill, drain and go back.
        const uint64_t phase = op / kPhase;
        const unsigned alloc_percent = phase % 4 == 0 ? 70 : phase % 4 == 1 ? 52 : phase % 4 == 2 ? 35 : 50;
        ModelCache& mc = *model.caches[rng() % cache_count];
        if (mc.live.empty() || rng() % 100 < alloc_percent) {
            model.allocate(mc, static_cast<uint8_t>(rng()));
            ++allocations;
        } else {
            model.release(mc, rng() % mc.live.size());
            ++frees;
        }
        if (op % 100'000 == 99'999)
            model.check_all();
        if (op % 250'000 == 123'456) {
            for (auto& c : model.caches)
                c->cache.shrink();
        }
        if (model.failures > 0)
            break;
    }
    INFO(model.first_failure);
    REQUIRE(model.failures == 0);
    model.check_all();
    REQUIRE(model.failures == 0);

    // Everything back: the PageSource returns to its initial state.
    for (auto& mc : model.caches) {
        while (!mc->live.empty())
            model.release(*mc, mc->live.size() - 1);
        const SlabCacheStats s = mc->cache.stats();
        CHECK(s.active_objects == 0);
        CHECK(s.allocations == s.frees);
        CHECK(s.corruptions == 0);
        mc->cache.shrink();
        CHECK(mc->cache.stats().slabs_total == 0);
        CHECK(mc->cache.check_invariants().ok());
    }
    INFO(model.first_failure);
    REQUIRE(model.failures == 0);
    CHECK(model.ranges.empty());
    CHECK(model.source.live_blocks() == 0);
    CHECK(model.source.live_pages() == 0);
    CHECK(model.source.bad_frees() == 0);
    CHECK(allocations + frees >= 1'000'000);
}

TEST_CASE("slab: threads with private caches and one shared cache under a mutex", "[slab][threads]")
{
    TestPageSource source;
    SlabCache shared;
    init_or_fail(shared, config("shared-96", 96, 16, SlabDebug::On), source);
    std::mutex shared_lock;
    constexpr int kThreads = 4;
    constexpr int kOps = 60'000;
    std::vector<int> errors(kThreads, 0);

    auto worker = [&](int id) {
        SlabCache own;
        const size_t size = 32 + 48 * static_cast<size_t>(id);
        if (!own.init(config("private", size, 16, id % 2 ? SlabDebug::On : SlabDebug::Off), source).has_value()) {
            ++errors[id];
            return;
        }
        std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 1);
        std::vector<std::pair<uint8_t*, uint8_t>> mine;
        std::vector<std::pair<uint8_t*, uint8_t>> from_shared;
        for (int op = 0; op < kOps; ++op) {
            const bool use_shared = rng() % 3 == 0;
            auto& list = use_shared ? from_shared : mine;
            const size_t bytes = use_shared ? 96 : size;
            if (list.empty() || rng() % 100 < 55) {
                uint8_t* p;
                if (use_shared) {
                    std::lock_guard<std::mutex> lock(shared_lock);
                    p = static_cast<uint8_t*>(shared.allocate());
                } else {
                    p = static_cast<uint8_t*>(own.allocate());
                }
                if (p == nullptr) {
                    ++errors[id];
                    continue;
                }
                const uint8_t fill = static_cast<uint8_t>(id * 31 + op);
                std::memset(p, fill, bytes);
                list.emplace_back(p, fill);
            } else {
                const size_t i = rng() % list.size();
                auto [p, fill] = list[i];
                list[i] = list.back();
                list.pop_back();
                if (p[0] != fill || std::memcmp(p, p + 1, bytes - 1) != 0)
                    ++errors[id];
                bool ok;
                if (use_shared) {
                    std::lock_guard<std::mutex> lock(shared_lock);
                    ok = shared.free(p).has_value();
                } else {
                    ok = own.free(p).has_value();
                }
                if (!ok)
                    ++errors[id];
            }
        }
        if (!own.check_invariants().ok())
            ++errors[id];
        for (auto [p, fill] : mine)
            errors[id] += own.free(p).has_value() ? 0 : 1;
        {
            std::lock_guard<std::mutex> lock(shared_lock);
            for (auto [p, fill] : from_shared)
                errors[id] += shared.free(p).has_value() ? 0 : 1;
        }
        if (own.stats().corruptions != 0 || own.release_all().has_value() == false)
            ++errors[id];
    };

    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back(worker, i);
    for (auto& t : threads)
        t.join();
    for (int i = 0; i < kThreads; ++i) {
        INFO("thread " << i);
        CHECK(errors[i] == 0);
    }
    REQUIRE_INVARIANTS(shared);
    CHECK(shared.stats().active_objects == 0);
    CHECK(shared.stats().corruptions == 0);
    shared.shrink();
    CHECK(source.live_blocks() == 0);
    CHECK(source.bad_frees() == 0);
}
