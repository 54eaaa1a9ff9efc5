// libFuzzer harness for mm::SlabCache.
//
// Two caches with fuzzed geometry (object size, alignment, debug checks, slab order, empty-slab
// limit) share a page budget. Every slab is its own malloc'd block, so ASan flags any touch of a
// slab after the cache gave it back. The input drives allocations, frees, frees of bad pointers
// (interior, red zone, header, double, another cache's object, foreign memory, null), shrink,
// release_all and re-init (at most kMaxOps operations per input, over at most kMaxPages pages).
// After every operation the shadow model checks that:
//   * objects are aligned, lie in a slab of their own cache and overlap no live object;
//   * an allocation returns nullptr only when the page budget refused a slab;
//   * a bad pointer is rejected with the error its position implies and changes nothing;
//   * object contents survive, and no corruption report is ever delivered;
//   * check_slab_of() of the slab it touched (header, bitmap, free list, zones, list links,
//     counters) is clean; stats agree with the model and with the pages held;
//   * at the end of the input, check_invariants() (every slab of both caches) is clean;
//   * at the end everything frees, release_all succeeds and every page is back.
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "mm/slab_cache.h"
#include "support/fuzz_check.h"

using mm::SlabCache;
using mm::SlabError;

namespace mm {
// Reads the slot geometry the shadow model needs to say where objects start.
struct SlabCacheTestAccess {
    static uint64_t first_object_offset(const SlabCache& c) { return c.m_first_object_offset; }
    static uint64_t objects_span(const SlabCache& c) { return c.m_objects_span; }
};
} // namespace mm

namespace {

constexpr unsigned kCaches = 2;
constexpr unsigned kMaxOps = 32;
constexpr uint64_t kMaxPages = 16; // the shared page budget: slabs of up to 64 KiB

struct PageBlock {
    size_t bytes;
    unsigned owner;
};

// Slab memory given back is kept, poisoned, for the next slab of its order (across inputs): fresh
// aligned blocks from malloc cost more page faults than the operations. ASan still flags any
// touch of a slab after the cache gave it back.
struct SpareSlabs {
    std::vector<void*> by_order[SlabCache::kMaxSlabOrder + 1];

    void* take(unsigned order)
    {
        const size_t bytes = SlabCache::kPageBytes << order;
        void* p = nullptr;
        if (!by_order[order].empty()) {
            p = by_order[order].back();
            by_order[order].pop_back();
            ASAN_UNPOISON_MEMORY_REGION(p, bytes);
        } else if (posix_memalign(&p, bytes, bytes) == 0) {
            __lsan_ignore_object(p); // kept for good, by design
        } else {
            std::abort();
        }
        return p;
    }
    void give(void* p, unsigned order)
    {
        ASAN_POISON_MEMORY_REGION(p, SlabCache::kPageBytes << order);
        by_order[order].push_back(p);
    }
    static SpareSlabs& instance()
    {
        static SpareSlabs spares;
        return spares;
    }
};

// Shared page budget; one adapter per cache records which cache holds which slab.
struct PagePool {
    std::map<uintptr_t, PageBlock> live;
    uint64_t pages_left = 0;
    uint64_t refusals = 0;
};

class CachePages final : public mm::PageSource {
public:
    CachePages(PagePool& pool, unsigned owner) : m_pool(pool), m_owner(owner) { }

    void* allocate_pages(unsigned order) override
    {
        FUZZ_CHECK(order <= SlabCache::kMaxSlabOrder, "slab order %u requested", order);
        const uint64_t pages = uint64_t{1} << order;
        if (pages > m_pool.pages_left) {
            ++m_pool.refusals;
            return nullptr;
        }
        const size_t bytes = SlabCache::kPageBytes << order;
        void* p = SpareSlabs::instance().take(order);
        std::memset(p, 0x5e, bytes); // stale data: the cache must not rely on zeroed pages
        m_pool.pages_left -= pages;
        m_pool.live.emplace(reinterpret_cast<uintptr_t>(p), PageBlock{bytes, m_owner});
        ++held_blocks;
        held_bytes += bytes;
        return p;
    }

    void free_pages(void* p, unsigned order) override
    {
        auto it = m_pool.live.find(reinterpret_cast<uintptr_t>(p));
        FUZZ_CHECK(it != m_pool.live.end() && it->second.owner == m_owner, "cache %u returned pages it never took",
                   m_owner);
        FUZZ_CHECK(it->second.bytes == SlabCache::kPageBytes << order, "pages returned with another order");
        m_pool.pages_left += uint64_t{1} << order;
        held_bytes -= it->second.bytes;
        --held_blocks;
        m_pool.live.erase(it);
        SpareSlabs::instance().give(p, order);
    }

    uint64_t held_blocks = 0;
    uint64_t held_bytes = 0;

private:
    PagePool& m_pool;
    unsigned m_owner;
};

void on_report(void*, const mm::SlabCorruptionReport& report)
{
    char text[512];
    mm::format_report(report, text, sizeof(text));
    FUZZ_CHECK(false, "corruption reported although the harness wrote only inside objects: %s", text);
}

struct Object {
    unsigned cache;
    uint8_t fill;
};

class Harness {
public:
    explicit Harness(FuzzedDataProvider& in) : m_in(in), m_pages{{m_pool, 0}, {m_pool, 1}} { }
    ~Harness()
    {
        // Take back every slab still held when the input ended early (an unusable config).
        for (auto& [p, block] : m_pool.live)
            SpareSlabs::instance().give(reinterpret_cast<void*>(p),
                                        static_cast<unsigned>(std::countr_zero(block.bytes / SlabCache::kPageBytes)));
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;

    void run()
    {
        m_pool.pages_left = m_in.ConsumeIntegralInRange<uint64_t>(1, kMaxPages);
        for (unsigned c = 0; c < kCaches; ++c) {
            if (!configure(c))
                return;
        }
        for (unsigned i = 0; i < kMaxOps && m_in.remaining_bytes() > 0; ++i)
            step();
        check_all();
        finish();
    }

private:
    // Fuzzed config; invalid ones must be refused with InvalidConfig. False when a cache is unusable.
    bool configure(unsigned c)
    {
        mm::SlabCacheConfig config;
        config.name = c == 0 ? "fuzz-a" : "fuzz-b";
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 3)) {
        case 0: config.object_size = m_in.ConsumeIntegralInRange<size_t>(1, 64); break;
        case 1: config.object_size = m_in.ConsumeIntegralInRange<size_t>(1, 512); break;
        case 2: config.object_size = m_in.ConsumeIntegralInRange<size_t>(1, 4096); break;
        default: config.object_size = m_in.ConsumeIntegralInRange<size_t>(0, 64 * 1024); break;
        }
        const unsigned align_shift = m_in.ConsumeIntegralInRange<unsigned>(0, 13);
        config.alignment = size_t{1} << align_shift;
        if (m_in.ConsumeIntegralInRange<unsigned>(0, 15) == 0)
            config.alignment += m_in.ConsumeIntegralInRange<size_t>(1, 5); // not a power of two (mostly)
        config.debug = m_in.ConsumeBool() ? mm::SlabDebug::On : mm::SlabDebug::Off;
        config.slab_order = m_in.ConsumeBool() ? SlabCache::kAutoOrder : m_in.ConsumeIntegralInRange<unsigned>(0, 9);
        config.max_empty_slabs = m_in.ConsumeIntegralInRange<unsigned>(0, 3);

        const bool surely_invalid = config.object_size == 0 || (config.alignment & (config.alignment - 1)) != 0 ||
            config.alignment > SlabCache::kMaxAlignment ||
            (config.slab_order != SlabCache::kAutoOrder && config.slab_order > SlabCache::kMaxSlabOrder);
        auto result = m_cache[c].init(config, m_pages[c]);
        if (!result) {
            // Valid parameters may still leave no room for one slot in the forced slab order.
            FUZZ_CHECK(result.error() == SlabError::InvalidConfig, "init: %s", mm::to_string(result.error()));
            FUZZ_CHECK(surely_invalid || config.slab_order != SlabCache::kAutoOrder ||
                           config.object_size + 64 + config.alignment * 2 >
                               (SlabCache::kPageBytes << SlabCache::kMaxSlabOrder),
                       "auto-order init of %zu bytes aligned %zu refused", config.object_size, config.alignment);
            return false;
        }
        FUZZ_CHECK(!surely_invalid, "init accepted size %zu alignment %zu order %u", config.object_size,
                   config.alignment, config.slab_order);
        const SlabCache& cache = m_cache[c];
        FUZZ_CHECK(cache.object_size() >= config.object_size && cache.alignment() >= config.alignment &&
                       cache.objects_per_slab() >= 1 && cache.slot_size() >= cache.object_size(),
                   "geometry does not honour the config");
        FUZZ_CHECK(cache.objects_per_slab() * cache.slot_size() <= cache.slab_bytes(), "slots overflow the slab");
        m_cache[c].set_report_callback(&on_report, nullptr);
        return true;
    }

    bool owned_by(uintptr_t p, unsigned c) const
    {
        auto it = m_pool.live.upper_bound(p);
        if (it == m_pool.live.begin())
            return false;
        --it;
        return p - it->first < it->second.bytes && it->second.owner == c;
    }

    void allocate(unsigned c)
    {
        SlabCache& cache = m_cache[c];
        const uint64_t refusals = m_pool.refusals;
        void* p = cache.allocate();
        if (p == nullptr) {
            FUZZ_CHECK(m_pool.refusals > refusals, "cache %u returned nullptr without a refused page request", c);
            return;
        }
        const auto a = reinterpret_cast<uintptr_t>(p);
        const size_t size = cache.object_size();
        FUZZ_CHECK(a % cache.alignment() == 0, "object %#zx not aligned to %zu", size_t(a), cache.alignment());
        FUZZ_CHECK(owned_by(a, c) && owned_by(a + size - 1, c), "object %#zx not inside a slab of cache %u", size_t(a),
                   c);
        auto next = m_live.lower_bound(a);
        FUZZ_CHECK(next == m_live.end() || next->first >= a + size, "object %#zx overlaps a live object", size_t(a));
        if (next != m_live.begin()) {
            auto prev = std::prev(next);
            FUZZ_CHECK(prev->first + m_cache[prev->second.cache].object_size() <= a, "object %#zx overlaps", size_t(a));
        }
        const auto fill = static_cast<uint8_t>(++m_serial * 29 + 3);
        std::memset(p, fill, size);
        m_live.emplace(a, Object{c, fill});
        ++m_count[c];
        m_touched = a;
    }

    void verify(uintptr_t a, const Object& object) const
    {
        const auto* bytes = reinterpret_cast<const uint8_t*>(a);
        const size_t size = m_cache[object.cache].object_size();
        const size_t i = fuzz::first_mismatch(bytes, size, object.fill);
        FUZZ_CHECK(i == size, "object %#zx byte %zu changed to %#x", size_t(a), i, bytes[i]);
    }

    void release(std::map<uintptr_t, Object>::iterator it)
    {
        verify(it->first, it->second);
        const unsigned c = it->second.cache;
        auto result = m_cache[c].free(reinterpret_cast<void*>(it->first));
        FUZZ_CHECK(result.has_value(), "free of a live object: %s", mm::to_string(result.error()));
        m_freed.push_back(it->first);
        m_touched = it->first;
        --m_count[c];
        m_live.erase(it);
    }

    // The error free(a) through cache c must give; nullopt when a is a valid free or when
    // reading a's slab-aligned base would break free()'s precondition (unmapped memory).
    std::optional<SlabError> expected_error(unsigned c, uintptr_t a) const
    {
        const SlabCache& cache = m_cache[c];
        const uintptr_t base = a & ~(uintptr_t{cache.slab_bytes()} - 1);
        if (base == 0)
            return SlabError::ForeignPointer;
        if (base == reinterpret_cast<uintptr_t>(m_foreign))
            return SlabError::ForeignPointer;
        auto it = m_pool.live.upper_bound(base);
        if (it == m_pool.live.begin())
            return std::nullopt;
        --it;
        if (base - it->first >= it->second.bytes)
            return std::nullopt;
        if (base != it->first)
            return SlabError::ForeignPointer; // inside some slab's body: no header there
        if (it->second.owner != c)
            return SlabError::WrongCache;
        const uint64_t offset = a - base - mm::SlabCacheTestAccess::first_object_offset(cache);
        if (offset >= mm::SlabCacheTestAccess::objects_span(cache) || offset % cache.slot_size() != 0)
            return SlabError::NotObjectStart;
        if (m_live.count(a) != 0)
            return std::nullopt;
        return SlabError::DoubleFree;
    }

    void bad_free(unsigned c)
    {
        uintptr_t a = 0;
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 5)) {
        case 0:
            if (m_live.empty())
                return;
            {
                auto it = pick_live();
                const size_t size = m_cache[it->second.cache].object_size();
                a = it->first - 32 + m_in.ConsumeIntegralInRange<uintptr_t>(0, size + 64);
            }
            break;
        case 1:
            if (m_freed.empty())
                return;
            a = m_freed[m_in.ConsumeIntegralInRange<size_t>(0, m_freed.size() - 1)];
            break;
        case 2:
            if (m_pool.live.empty())
                return;
            {
                auto it = m_pool.live.begin();
                std::advance(it, m_in.ConsumeIntegralInRange<size_t>(0, m_pool.live.size() - 1));
                a = it->first + m_in.ConsumeIntegralInRange<uintptr_t>(0, it->second.bytes - 1);
            }
            break;
        case 3: a = reinterpret_cast<uintptr_t>(m_foreign) + m_in.ConsumeIntegralInRange<uintptr_t>(0, 4095); break;
        case 4: a = m_in.ConsumeIntegralInRange<uintptr_t>(0, 4095); break;
        default:
            if (m_live.empty())
                return;
            a = pick_live()->first; // through the other cache when it belongs to c's sibling
            if (m_live.at(a).cache == c)
                return;
            break;
        }
        const auto expected = expected_error(c, a);
        if (!expected)
            return;
        m_touched = a;
        const mm::SlabCacheStats before = m_cache[c].stats();
        const uint64_t blocks = m_pages[c].held_blocks;
        auto result = m_cache[c].free(reinterpret_cast<void*>(a));
        FUZZ_CHECK(!result && result.error() == *expected, "free(%#zx) through cache %u: %s, expected %s", size_t(a), c,
                   result ? "accepted" : mm::to_string(result.error()), mm::to_string(*expected));
        FUZZ_CHECK(m_cache[c].stats() == before && m_pages[c].held_blocks == blocks, "rejected free changed state");
    }

    std::map<uintptr_t, Object>::iterator pick_live()
    {
        auto it = m_live.begin();
        std::advance(it, m_in.ConsumeIntegralInRange<size_t>(0, m_live.size() - 1));
        return it;
    }

    void forget_freed_in_released_pages()
    {
        // Pointers whose pages went back are useless for double-free tests (and unsafe to read).
        std::vector<uintptr_t> kept;
        for (uintptr_t a : m_freed) {
            if (owned_by(a, 0) || owned_by(a, 1))
                kept.push_back(a);
        }
        if (kept.size() > 256)
            kept.erase(kept.begin(), kept.end() - 256);
        m_freed.swap(kept);
    }

    void step()
    {
        m_touched = 0;
        const unsigned c = m_in.ConsumeIntegralInRange<unsigned>(0, kCaches - 1);
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 9)) {
        case 0:
        case 1:
        case 2: allocate(c); break;
        case 3:
        case 4:
            if (!m_live.empty())
                release(pick_live());
            break;
        case 5: bad_free(c); break;
        case 6: {
            const uint64_t bytes = m_pages[c].held_bytes;
            const size_t released = m_cache[c].shrink();
            FUZZ_CHECK(released == bytes - m_pages[c].held_bytes, "shrink says %zu bytes, pages show %llu", released,
                       static_cast<unsigned long long>(bytes - m_pages[c].held_bytes));
            FUZZ_CHECK(m_cache[c].stats().slabs_empty == 0, "empty slabs left after shrink");
            break;
        }
        case 7: {
            const mm::SlabCacheStats before = m_cache[c].stats();
            auto result = m_cache[c].release_all();
            if (m_count[c] != 0) {
                FUZZ_CHECK(!result && result.error() == SlabError::NotEmpty, "release_all with live objects");
                FUZZ_CHECK(m_cache[c].stats() == before, "refused release_all changed state");
                break;
            }
            FUZZ_CHECK(result.has_value() && m_pages[c].held_blocks == 0, "release_all of an empty cache failed");
            // A refused re-init leaves the cache as it was, still usable.
            if (m_in.ConsumeBool())
                configure(c);
            break;
        }
        case 8:
            for (const auto& [a, object] : m_live)
                verify(a, object);
            break;
        default:
            if (!m_live.empty()) // the other cache's objects: WrongCache (or Foreign, by slab size)
                bad_free(1 - c);
            break;
        }
        forget_freed_in_released_pages();
        check_touched();
    }

    // After each operation: the slab it touched (when that slab is still held) and the counters.
    void check_touched() const
    {
        for (unsigned c = 0; c < kCaches; ++c) {
            check_counters(c);
            if (m_touched == 0 || !owned_by(m_touched, c))
                continue;
            const auto report = m_cache[c].check_slab_of(reinterpret_cast<const void*>(m_touched));
            FUZZ_CHECK(report.ok(), "cache %u, check_slab_of(%#zx): %llu violation(s), first %s (slab %p, object %p)",
                       c, size_t(m_touched), static_cast<unsigned long long>(report.violations),
                       mm::to_string(report.first), report.first_slab, report.first_object);
        }
    }

    void check_counters(unsigned c) const
    {
        const mm::SlabCacheStats s = m_cache[c].stats();
        FUZZ_CHECK(s.active_objects == m_count[c], "cache %u: %llu active, model %llu", c,
                   static_cast<unsigned long long>(s.active_objects), static_cast<unsigned long long>(m_count[c]));
        FUZZ_CHECK(s.slabs_total == m_pages[c].held_blocks && s.bytes_total == m_pages[c].held_bytes,
                   "cache %u: %llu slabs, pages show %llu", c, static_cast<unsigned long long>(s.slabs_total),
                   static_cast<unsigned long long>(m_pages[c].held_blocks));
        FUZZ_CHECK(s.corruptions == 0, "corruption counted");
    }

    void check_all() const
    {
        for (unsigned c = 0; c < kCaches; ++c) {
            const auto report = m_cache[c].check_invariants();
            FUZZ_CHECK(report.ok(), "cache %u: %llu violation(s), first %s (slab %p, object %p)", c,
                       static_cast<unsigned long long>(report.violations), mm::to_string(report.first),
                       report.first_slab, report.first_object);
            FUZZ_CHECK(report.active_objects == m_count[c], "cache %u: the walk found %llu active, model %llu", c,
                       static_cast<unsigned long long>(report.active_objects),
                       static_cast<unsigned long long>(m_count[c]));
            check_counters(c);
        }
    }

    void finish()
    {
        while (!m_live.empty())
            release(m_live.begin());
        for (unsigned c = 0; c < kCaches; ++c) {
            auto result = m_cache[c].release_all();
            FUZZ_CHECK(result.has_value(), "release_all after freeing everything: %s", mm::to_string(result.error()));
            FUZZ_CHECK(m_pages[c].held_blocks == 0, "cache %u kept %llu slabs", c,
                       static_cast<unsigned long long>(m_pages[c].held_blocks));
        }
    }

    FuzzedDataProvider& m_in;
    PagePool m_pool;
    CachePages m_pages[kCaches];
    SlabCache m_cache[kCaches];
    // A readable, maximally slab-aligned page that is no slab; one for the whole process.
    void* const m_foreign = [] {
        static void* page = [] {
            void* p = nullptr;
            if (posix_memalign(&p, SlabCache::kPageBytes << SlabCache::kMaxSlabOrder, SlabCache::kPageBytes) != 0)
                std::abort();
            std::memset(p, 0, SlabCache::kPageBytes);
            return p;
        }();
        return page;
    }();
    std::map<uintptr_t, Object> m_live;
    std::vector<uintptr_t> m_freed;
    uint64_t m_count[kCaches] = {};
    unsigned m_serial = 0;
    uintptr_t m_touched = 0; // the object (or bad pointer) the last operation touched
};

} // namespace

// Slabs are up to 1 MiB and 1 MiB aligned, so every one costs ASan about 2 MiB; a smaller
// quarantine (still many slabs deep) keeps the process well inside libFuzzer's RSS limit.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=48"; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzedDataProvider in(data, size);
    Harness harness(in);
    harness.run();
    return 0;
}
