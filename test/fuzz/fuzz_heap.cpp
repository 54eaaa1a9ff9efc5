// libFuzzer harness for mm::Heap (kmalloc's generic core: size-class slabs, medium buddy chunks,
// large page blocks, typed object caches) over a host PageSource like test/unit/test_heap.cpp's.
//
// The input picks debug checks, a page budget and watermarks, then drives allocate (every layer,
// fuzzed alignments, invalid ones too), allocate_zeroed, reallocate, free, frees of bad pointers,
// reallocs of bad pointers, typed-cache create/destroy and cross frees, fault injection, shrink and
// reclaim (at most kMaxOps operations per input, over a kWindow-byte source). The shadow model
// checks after every operation that:
//   * blocks are aligned, usable for the size asked, inside the window, disjoint, on the layer the
//     size and alignment imply, and keep their contents (reallocate keeps the common prefix);
//   * nullptr comes only from an invalid request, injection, the min watermark or a refused page
//     request, and is counted; zeroed memory is zero;
//   * a bad free or realloc (freed, interior, foreign pointers) is rejected (with the error its
//     position implies where that is unambiguous), both the same way, and changes nothing but
//     the invalid-free counter, no live block's contents included; no corruption report is ever
//     delivered;
//   * check_local() of the pointer it touched (its page run, owner slab or chunk and buddy, red
//     zones or poison there, the counters) is clean and the heap holds exactly the pages the
//     source gave it; at the end of the input, check_invariants() (the whole walk) is clean;
//   * freeing everything and shrinking gives every page back and leaves the source as it began.
// Pages the heap gave back are poisoned for ASan (but for the source buddy's free-list links).
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <vector>

#include "mm/heap.h"
#include "support/fuzz_check.h"

using mm::Heap;
using mm::HeapError;
using mm::HeapLayer;

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kWindow = 4 * 1024 * 1024;
constexpr unsigned kSourceMaxOrder = 9; // 2 MiB
constexpr unsigned kMaxOps = 16;

// Private buddy of 4 KiB .. 4 MiB pages with a page budget; pages not handed out are poisoned.
class FuzzPageSource final : public mm::PageSource {
public:
    FuzzPageSource()
    {
        m_memory = static_cast<uint8_t*>(std::aligned_alloc(kPage << kSourceMaxOrder, kWindow));
        m_meta.resize(mm::BuddyAllocator::metadata_bytes_needed(m_memory, kWindow, kPage, kPage << kSourceMaxOrder));
        auto init = m_buddy.init(m_memory, kWindow, kPage, kPage << kSourceMaxOrder, m_meta.data(), m_meta.size());
        FUZZ_CHECK(init.has_value(), "source buddy init failed");
        for (unsigned k = 0; k <= kSourceMaxOrder; ++k)
            m_initial[k] = m_buddy.free_blocks(k);
        poison(m_memory, kWindow);
    }
    ~FuzzPageSource()
    {
        ASAN_UNPOISON_MEMORY_REGION(m_memory, kWindow);
        std::free(m_memory);
    }
    FuzzPageSource(const FuzzPageSource&) = delete;
    FuzzPageSource& operator=(const FuzzPageSource&) = delete;

    void* allocate_pages(unsigned order) override
    {
        if (order > kSourceMaxOrder || m_used + (uint64_t{1} << order) > m_limit) {
            ++refusals;
            return nullptr;
        }
        auto block = m_buddy.allocate_order(order);
        if (!block) {
            ++refusals;
            return nullptr;
        }
        m_used += uint64_t{1} << order;
        m_live.emplace(*block, order);
        ASAN_UNPOISON_MEMORY_REGION(*block, kPage << order);
        std::memset(*block, 0x5e, kPage << order); // stale data: nothing may rely on zeroed pages
        return *block;
    }

    void free_pages(void* p, unsigned order) override
    {
        auto it = m_live.find(p);
        FUZZ_CHECK(it != m_live.end() && it->second == order, "heap returned pages %p (order %u) it never took", p,
                   order);
        m_live.erase(it);
        auto freed = m_buddy.free_sized(p, kPage << order);
        FUZZ_CHECK(freed.has_value(), "source free failed");
        m_used -= uint64_t{1} << order;
        poison(p, kPage << order);
    }

    static uint64_t free_pages_fn(void* context)
    {
        auto* self = static_cast<FuzzPageSource*>(context);
        return self->m_limit - std::min(self->m_limit, self->m_used);
    }

    bool at_initial_state() const
    {
        for (unsigned k = 0; k <= kSourceMaxOrder; ++k) {
            if (m_buddy.free_blocks(k) != m_initial[k])
                return false;
        }
        return m_used == 0 && m_live.empty() && m_buddy.check_invariants().ok();
    }

    uintptr_t base() const { return reinterpret_cast<uintptr_t>(m_memory); }
    uint64_t used_pages() const { return m_used; }
    void set_limit(uint64_t pages) { m_limit = pages; }

    uint64_t refusals = 0;

private:
    // Free pages are off limits except the first 16 bytes, where the buddy keeps its links.
    static void poison(void* p, size_t bytes)
    {
        ASAN_POISON_MEMORY_REGION(p, bytes);
        for (size_t off = 0; off < bytes; off += kPage)
            ASAN_UNPOISON_MEMORY_REGION(static_cast<uint8_t*>(p) + off, mm::BuddyAllocator::kFreeNodeBytes);
    }

    uint8_t* m_memory = nullptr;
    std::vector<uint8_t> m_meta;
    mm::BuddyAllocator m_buddy;
    uint64_t m_limit = kWindow / kPage;
    uint64_t m_used = 0;
    std::map<void*, unsigned> m_live;
    uint64_t m_initial[kSourceMaxOrder + 1] = {};
};

void on_corruption(void*, const mm::HeapCorruption& corruption)
{
    char text[512];
    mm::format_corruption(corruption, text, sizeof(text));
    FUZZ_CHECK(false, "corruption reported although the harness wrote only inside its blocks: %s", text);
}

struct Thing {
    uint64_t words[9];
};

struct Block {
    size_t filled; // bytes carrying the pattern
    size_t requested;
    uint8_t fill;
    bool typed;
};

class Harness {
public:
    // One source for the whole process (32 MiB, poisoned page by page, is costly to set up);
    // finish() proves it is back at its initial state after every input.
    explicit Harness(FuzzedDataProvider& in) : m_in(in), m_source(shared_source()) { }
    ~Harness()
    {
        if (m_heap != nullptr)
            m_heap->~Heap();
    }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;

    void run()
    {
        mm::HeapConfig config;
        config.window_base = m_source.base();
        config.window_bytes = kWindow;
        // The heap and its tags live in the same memory every input (fresh allocations cost page
        // faults); finish() proves each input left the heap empty.
        static uint8_t tags[kWindow / kPage];
        std::memset(tags, 0, sizeof(tags));
        config.tags = tags;
        config.tag_bytes = sizeof(tags);
        config.debug = m_in.ConsumeBool() ? mm::SlabDebug::On : mm::SlabDebug::Off;
        config.max_empty_chunks = m_in.ConsumeIntegralInRange<unsigned>(0, 2);
        config.max_empty_slabs = m_in.ConsumeIntegralInRange<unsigned>(0, 2);
        config.source_context = &m_source;
        config.source_free_pages = &FuzzPageSource::free_pages_fn;
        config.on_corruption = &on_corruption;
        m_source.set_limit(m_in.ConsumeIntegralInRange<uint64_t>(16, kWindow / kPage));
        alignas(Heap) static unsigned char storage[sizeof(Heap)];
        m_heap = new (storage) Heap(m_source, config);
        FUZZ_CHECK(m_heap->status().has_value(), "heap construction failed");
        auto attached = m_things.init(*m_heap, "fuzz-things");
        FUZZ_CHECK(attached.has_value(), "object cache attach failed");

        for (unsigned i = 0; i < kMaxOps && m_in.remaining_bytes() > 0; ++i)
            step();
        check_all();
        finish();
    }

private:
    static FuzzPageSource& shared_source()
    {
        static FuzzPageSource source;
        return source;
    }

    size_t pick_size()
    {
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 5)) {
        case 0: return m_in.ConsumeIntegralInRange<size_t>(0, 128);
        case 1:
        case 2: return m_in.ConsumeIntegralInRange<size_t>(0, 2048);
        case 3: return m_in.ConsumeIntegralInRange<size_t>(2049, 64 * 1024);
        case 4: return m_in.ConsumeIntegralInRange<size_t>(0, 80 * 1024);
        default: return m_in.ConsumeIntegralInRange<size_t>(64 * 1024, 512 * 1024);
        }
    }

    size_t pick_alignment()
    {
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 7)) {
        case 0: return size_t{1} << m_in.ConsumeIntegralInRange<unsigned>(0, 21);
        case 1: return m_in.ConsumeIntegralInRange<size_t>(0, 300); // mostly not powers of two
        default: return 0;
        }
    }

    struct Counters {
        uint64_t injected, watermark, source_failures, failed, refusals;
    };
    Counters counters() const
    {
        return {m_heap->injected_failures(), m_heap->watermark_refusals(), m_heap->source_failures(),
                m_heap->failed_allocations(), m_source.refusals};
    }
    // A stats snapshot into one of two static buffers (4 KiB each: as stack locals, ASan's frame
    // set-up and the zeroing cost more than the snapshot).
    mm::HeapStats& snapshot(unsigned which) const
    {
        static mm::HeapStats buffers[2];
        m_heap->stats(buffers[which]);
        return buffers[which];
    }
    // nullptr is fine only for a reason the heap can name.
    void check_null(const Counters& before, bool invalid, const char* what, size_t size)
    {
        const Counters after = counters();
        FUZZ_CHECK(invalid || after.injected > before.injected || after.watermark > before.watermark ||
                       after.source_failures > before.source_failures || after.refusals > before.refusals,
                   "%s(%zu) returned nullptr without a reason", what, size);
        FUZZ_CHECK(after.failed == before.failed + 1, "%s(%zu): failure not counted", what, size);
    }

    void add_block(void* p, size_t size, size_t alignment, bool zeroed, bool fresh = true)
    {
        const auto a = reinterpret_cast<uintptr_t>(p);
        const size_t align = alignment < 16 ? 16 : alignment;
        FUZZ_CHECK(a % align == 0, "block %#zx for size %zu not aligned to %zu", size_t(a), size, align);
        auto usable = m_heap->usable_size(p);
        FUZZ_CHECK(usable && *usable >= (size == 0 ? 1 : size), "block %#zx for size %zu align %zu: usable_size %s %zu",
                   size_t(a), size, alignment, usable ? "gives" : mm::to_string(usable.error()), usable ? *usable : 0);
        FUZZ_CHECK(a >= m_source.base() && a + *usable <= m_source.base() + kWindow, "block outside the window");
        auto layer = m_heap->layer_of(p);
        FUZZ_CHECK(layer.has_value() && *layer != HeapLayer::Object, "layer_of a fresh block");
        // A block resized in place keeps its layer; a fresh one goes where size and alignment say.
        FUZZ_CHECK(!fresh || (*layer == HeapLayer::Small) == (size <= 2048 && alignment <= 16),
                   "size %zu align %zu on layer %s", size, alignment, mm::to_string(*layer));
        check_disjoint(a, *usable);
        if (zeroed) {
            const auto* bytes = static_cast<const uint8_t*>(p);
            const size_t i = fuzz::first_mismatch(bytes, size, 0);
            FUZZ_CHECK(i == size, "allocate_zeroed byte %zu is %#x", i, bytes[i]);
        }
        const auto fill = static_cast<uint8_t>(++m_serial * 53 + 7);
        std::memset(p, fill, *usable);
        m_live[a] = Block{*usable, size, fill, false};
        m_touched = a;
    }

    void check_disjoint(uintptr_t a, size_t bytes) const
    {
        auto next = m_live.lower_bound(a);
        FUZZ_CHECK(next == m_live.end() || next->first >= a + bytes, "block %#zx overlaps a live block", size_t(a));
        if (next != m_live.begin()) {
            auto prev = std::prev(next);
            FUZZ_CHECK(prev->first + prev->second.filled <= a, "block %#zx overlaps a live block", size_t(a));
        }
    }

    void verify(uintptr_t a, const Block& block, size_t bytes) const
    {
        const auto* p = reinterpret_cast<const uint8_t*>(a);
        const size_t i = fuzz::first_mismatch(p, bytes, block.fill);
        FUZZ_CHECK(i == bytes, "block %#zx byte %zu changed to %#x", size_t(a), i, p[i]);
    }

    std::map<uintptr_t, Block>::iterator pick_live()
    {
        auto it = m_live.begin();
        std::advance(it, m_in.ConsumeIntegralInRange<size_t>(0, m_live.size() - 1));
        return it;
    }

    void allocate()
    {
        const size_t size = pick_size();
        const size_t alignment = pick_alignment();
        const Counters before = counters();
        void* p = m_heap->allocate(size, alignment);
        if (p == nullptr)
            check_null(before, alignment != 0 && (alignment & (alignment - 1)) != 0, "allocate", size);
        else
            add_block(p, size, alignment, false);
    }

    void allocate_zeroed()
    {
        const size_t count = m_in.ConsumeIntegralInRange<size_t>(0, 64);
        const size_t each = m_in.ConsumeBool() ? m_in.ConsumeIntegralInRange<size_t>(0, 4096) : SIZE_MAX / 3;
        const bool overflow = count != 0 && each > SIZE_MAX / count;
        const Counters before = counters();
        void* p = m_heap->allocate_zeroed(count, each);
        if (p == nullptr)
            check_null(before, overflow || count * each > (kPage << mm::kHeapMaxLargeOrder), "allocate_zeroed",
                       count * each);
        else
            add_block(p, count * each, 0, true);
    }

    void reallocate()
    {
        const bool from_null = m_live.empty() || m_in.ConsumeIntegralInRange<unsigned>(0, 7) == 0;
        auto it = from_null ? m_live.end() : pick_live();
        if (it != m_live.end() && it->second.typed)
            return;
        void* old = it == m_live.end() ? nullptr : reinterpret_cast<void*>(it->first);
        const size_t new_size = m_in.ConsumeIntegralInRange<unsigned>(0, 15) == 0 ? 0 : pick_size();
        const Block block = old != nullptr ? it->second : Block{};
        if (old != nullptr)
            verify(it->first, block, block.filled);
        const Counters before = counters();
        auto result = m_heap->reallocate(old, new_size);
        FUZZ_CHECK(result.has_value(), "reallocate of a live block: %s", mm::to_string(result.error()));
        if (*result == nullptr) {
            if (new_size == 0) { // frees (or, from nullptr, may allocate nothing)
                if (old != nullptr)
                    m_live.erase(it);
                m_touched = reinterpret_cast<uintptr_t>(old);
                return;
            }
            check_null(before, false, "reallocate", new_size);
            if (old != nullptr)
                verify(it->first, block, block.filled); // still valid and untouched
            return;
        }
        if (old != nullptr) {
            verify(reinterpret_cast<uintptr_t>(*result), block, std::min(block.filled, new_size));
            m_live.erase(it);
        }
        add_block(*result, new_size, 0, false, *result != old);
    }

    void release()
    {
        auto it = pick_live();
        verify(it->first, it->second, it->second.filled);
        void* p = reinterpret_cast<void*>(it->first);
        auto result = it->second.typed ? m_things.destroy(static_cast<Thing*>(p)) : m_heap->free(p);
        FUZZ_CHECK(result.has_value(), "free of a live block: %s", mm::to_string(result.error()));
        m_freed.push_back(it->first);
        m_touched = it->first;
        if (m_freed.size() > 256)
            m_freed.erase(m_freed.begin());
        m_live.erase(it);
    }

    const Block* containing(uintptr_t a, uintptr_t* start) const
    {
        auto next = m_live.upper_bound(a);
        if (next == m_live.begin())
            return nullptr;
        auto prev = std::prev(next);
        if (a - prev->first >= prev->second.filled)
            return nullptr;
        *start = prev->first;
        return &prev->second;
    }

    // free or reallocate of a pointer that is no live block: freed, interior, foreign.
    void bad_free()
    {
        uintptr_t a = 0;
        bool former_start = false;
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 3)) {
        case 0:
            if (m_live.empty())
                return;
            {
                auto it = pick_live();
                if (it->second.filled < 2)
                    return;
                a = it->first + m_in.ConsumeIntegralInRange<uintptr_t>(1, it->second.filled - 1);
            }
            break;
        case 1:
            if (m_freed.empty())
                return;
            a = m_freed[m_in.ConsumeIntegralInRange<size_t>(0, m_freed.size() - 1)];
            former_start = true;
            break;
        case 2: a = m_source.base() + m_in.ConsumeIntegralInRange<uintptr_t>(0, kWindow - 1); break;
        default:
            a = m_in.ConsumeBool() ? m_source.base() - 1 - m_in.ConsumeIntegralInRange<uintptr_t>(0, 1 << 20)
                                   : m_source.base() + kWindow + m_in.ConsumeIntegralInRange<uintptr_t>(0, 1 << 20);
            break;
        }
        if (m_live.count(a) != 0)
            return;
        m_touched = a;
        uintptr_t start = 0;
        const Block* inside = containing(a, &start);
        // Through realloc (any size, 0 included) it must be rejected exactly as by free.
        const bool through_realloc = m_in.ConsumeBool();
        const size_t new_size = through_realloc ? pick_size() : 0;
        mm::HeapStats& before = snapshot(1);
        lib::Expected<void, HeapError> result;
        if (through_realloc) {
            auto moved = m_heap->reallocate(reinterpret_cast<void*>(a), new_size);
            FUZZ_CHECK(!moved, "reallocate(%#zx, %zu) of no live block accepted, gave %p", size_t(a), new_size, *moved);
            result = lib::unexpected(moved.error());
        } else {
            result = m_heap->free(reinterpret_cast<void*>(a));
            FUZZ_CHECK(!result, "free(%#zx) of no live block accepted", size_t(a));
        }
        const HeapError e = result.error();
        const char* what = through_realloc ? "reallocate" : "free";
        if (a < m_source.base() || a >= m_source.base() + kWindow)
            FUZZ_CHECK(e == HeapError::ForeignPointer, "%s outside the window: %s", what, mm::to_string(e));
        else if (inside != nullptr && !inside->typed)
            FUZZ_CHECK(e == HeapError::InteriorPointer, "%s(%#zx) inside live block %#zx: %s", what, size_t(a),
                       size_t(start), mm::to_string(e));
        else if (former_start && inside == nullptr) // its pages may since serve a typed cache
            FUZZ_CHECK(e == HeapError::DoubleFree || e == HeapError::InteriorPointer || e == HeapError::WrongCache,
                       "double %s of %#zx: %s", what, size_t(a), mm::to_string(e));
        const mm::HeapStats& after = snapshot(0);
        FUZZ_CHECK(after.invalid_frees == before.invalid_frees + 1, "invalid %s not counted", what);
        before.invalid_frees = after.invalid_frees;
        FUZZ_CHECK(after == before, "rejected %s changed the heap", what);
        if (inside != nullptr)
            verify(start, *inside, inside->filled);
        if (through_realloc) { // and free agrees
            auto freed = m_heap->free(reinterpret_cast<void*>(a));
            FUZZ_CHECK(!freed && freed.error() == e, "reallocate(%#zx) said %s, free says %s", size_t(a),
                       mm::to_string(e), freed ? "accepted" : mm::to_string(freed.error()));
        }
    }

    void typed_op()
    {
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 2)) {
        case 0: {
            const Counters before = counters();
            Thing* t = m_things.create();
            if (t == nullptr) {
                check_null(before, false, "ObjectCache::create", sizeof(Thing));
                return;
            }
            const auto a = reinterpret_cast<uintptr_t>(t);
            FUZZ_CHECK(a % 16 == 0, "typed object misaligned");
            auto layer = m_heap->layer_of(t);
            FUZZ_CHECK(layer && *layer == HeapLayer::Object, "typed object not on the Object layer");
            check_disjoint(a, sizeof(Thing));
            const auto fill = static_cast<uint8_t>(++m_serial * 53 + 7);
            std::memset(t, fill, sizeof(Thing));
            m_live[a] = Block{sizeof(Thing), sizeof(Thing), fill, true};
            m_touched = a;
            return;
        }
        case 1: { // a typed object through the general heap
            std::vector<uintptr_t> typed;
            for (const auto& [a, b] : m_live)
                if (b.typed)
                    typed.push_back(a);
            if (typed.empty())
                return;
            const uintptr_t a = typed[m_in.ConsumeIntegralInRange<size_t>(0, typed.size() - 1)];
            mm::HeapStats& before = snapshot(1);
            auto result = m_heap->free(reinterpret_cast<void*>(a));
            FUZZ_CHECK(!result && result.error() == HeapError::WrongCache, "heap free of a typed object: %s",
                       result ? "accepted" : mm::to_string(result.error()));
            const mm::HeapStats& after = snapshot(0);
            before.invalid_frees = after.invalid_frees;
            FUZZ_CHECK(after == before, "rejected free changed the heap");
            return;
        }
        default: { // a general-heap block through the typed cache
            std::vector<uintptr_t> general;
            for (const auto& [a, b] : m_live)
                if (!b.typed)
                    general.push_back(a);
            if (general.empty())
                return;
            const uintptr_t a = general[m_in.ConsumeIntegralInRange<size_t>(0, general.size() - 1)];
            mm::HeapStats& before = snapshot(1);
            auto result = m_things.free(reinterpret_cast<void*>(a));
            FUZZ_CHECK(!result, "typed-cache free of a general heap block %#zx accepted", size_t(a));
            const mm::HeapStats& after = snapshot(0);
            before.invalid_frees = after.invalid_frees;
            FUZZ_CHECK(after == before, "rejected free changed the heap");
            return;
        }
        }
    }

    void step()
    {
        m_touched = 0;
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 15)) {
        case 0:
        case 1:
        case 2:
        case 3: allocate(); break;
        case 4: allocate_zeroed(); break;
        case 5:
        case 6: reallocate(); break;
        case 7:
        case 8:
        case 9:
            if (!m_live.empty())
                release();
            break;
        case 10: bad_free(); break;
        case 11: typed_op(); break;
        case 12: m_heap->shrink(); break;
        case 13:
            if (m_in.ConsumeBool())
                m_heap->fail_nth_allocation(m_in.ConsumeIntegralInRange<uint64_t>(0, 4));
            else
                m_heap->reclaim(m_in.ConsumeIntegralInRange<size_t>(0, 64));
            break;
        case 14: {
            const uint64_t low = m_in.ConsumeIntegralInRange<uint64_t>(0, 256);
            m_heap->set_watermarks(low, m_in.ConsumeIntegralInRange<uint64_t>(0, low));
            break;
        }
        default:
            for (const auto& [a, block] : m_live)
                verify(a, block, block.filled);
            break;
        }
        check_touched();
    }

    // After each operation: the pointer it touched (its run, owner and neighbourhood) and the
    // counters that need no walk.
    void check_touched() const
    {
        const auto report = m_heap->check_local(reinterpret_cast<const void*>(m_touched));
        FUZZ_CHECK(report.ok(), "heap check_local(%#zx): %llu violation(s), first %s at %#zx", size_t(m_touched),
                   static_cast<unsigned long long>(report.violations), mm::to_string(report.first),
                   size_t(report.first_address));
        FUZZ_CHECK(m_heap->pages_held() == m_source.used_pages(), "heap holds %llu pages, source gave %llu",
                   static_cast<unsigned long long>(m_heap->pages_held()),
                   static_cast<unsigned long long>(m_source.used_pages()));
        FUZZ_CHECK(m_heap->bytes_used() <= m_heap->pages_held() * kPage, "more bytes used than held");
    }

    // The whole walk, at the end of the input.
    void check_all() const
    {
        const auto report = m_heap->check_invariants();
        FUZZ_CHECK(report.ok(), "heap: %llu violation(s), first %s at %#zx",
                   static_cast<unsigned long long>(report.violations), mm::to_string(report.first),
                   size_t(report.first_address));
        FUZZ_CHECK(m_heap->pages_held() == m_source.used_pages(), "heap holds %llu pages, source gave %llu",
                   static_cast<unsigned long long>(m_heap->pages_held()),
                   static_cast<unsigned long long>(m_source.used_pages()));
    }

    void finish()
    {
        m_heap->fail_nth_allocation(0);
        while (!m_live.empty())
            release();
        auto detached = m_things.destroy_cache();
        FUZZ_CHECK(detached.has_value(), "detaching the empty object cache: %s", mm::to_string(detached.error()));
        m_heap->shrink();
        check_all();
        const mm::HeapStats s = m_heap->stats();
        FUZZ_CHECK(s.bytes_used == 0 && s.pages_held == 0 && s.chunks == 0 && s.large_blocks == 0,
                   "heap not empty after freeing everything and shrinking");
        FUZZ_CHECK(m_source.at_initial_state(), "page source not back at its initial state");
    }

    FuzzedDataProvider& m_in;
    FuzzPageSource& m_source;
    Heap* m_heap = nullptr;
    mm::ObjectCache<Thing> m_things;
    std::map<uintptr_t, Block> m_live;
    std::vector<uintptr_t> m_freed;
    unsigned m_serial = 0;
    uintptr_t m_touched = 0; // the block (or bad pointer) the last operation touched
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzedDataProvider in(data, size);
    Harness harness(in);
    harness.run();
    return 0;
}
