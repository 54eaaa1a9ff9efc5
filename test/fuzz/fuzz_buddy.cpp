// libFuzzer harness for mm::BuddyAllocator (the Mana Pool's buddy core).
//
// The input picks a geometry (min block, order count, region size and base offset), then a
// sequence of operations: allocate by size or order, free / free_sized of live blocks, frees of
// bad pointers (foreign, interior, misaligned, double), and size queries. A shadow model holds the
// live blocks and checks after every operation that:
//   * a block is naturally aligned, inside the trimmed region, of the order its size asks for,
//     and overlaps no other live block;
//   * an allocation fails only when no naturally aligned free run of that order exists;
//   * every bad pointer is rejected with the error its position implies, changing nothing;
//   * block contents (a per-block pattern) survive all other operations;
//   * after each operation, check_local() of the block it touched (that block, its buddy, the
//     list heads and counters) is clean and the byte counter matches the model;
//   * at the end of the input, check_invariants() (the whole walk) is clean and agrees with the
//     model's block and byte counts, and freeing everything returns the allocator to exactly its
//     state after init.
// An input runs at most kMaxOps operations over at most kMaxRegion bytes, so one execution stays
// well under a millisecond and a long run reaches tens of millions of inputs.
// Memory the allocator must not touch is poisoned for ASan: everything outside the trimmed
// region, and in free blocks all but the 16-byte free-list link at each min-block boundary.
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "mm/buddy_allocator.h"
#include "support/fuzz_check.h"

using mm::BuddyAllocator;
using mm::BuddyError;

namespace {

constexpr size_t kMaxRegion = 16 * 1024;
constexpr unsigned kMaxOps = 48;

struct Block {
    size_t size;
    unsigned order;
    uint8_t fill;
};

class Harness {
public:
    explicit Harness(FuzzedDataProvider& in) : m_in(in) { }
    ~Harness() { ASAN_UNPOISON_MEMORY_REGION(m_backing, kBackingBytes); }
    Harness(const Harness&) = delete;
    Harness& operator=(const Harness&) = delete;

    void run()
    {
        if (!setup())
            return;
        for (unsigned i = 0; i < kMaxOps && m_in.remaining_bytes() > 0; ++i)
            step();
        check_all();
        free_everything();
    }

private:
    static constexpr size_t kBackingBytes = 4096 + kMaxRegion + 1;

    // One region buffer for the whole process: a fresh one per input cost more page faults
    // than the operations themselves. Poisoned as a whole at every setup.
    static void* shared_backing()
    {
        static void* backing = std::aligned_alloc(4096, (kBackingBytes + 4095) & ~size_t{4095});
        return backing;
    }

    bool setup()
    {
        const unsigned min_shift = m_in.ConsumeIntegralInRange<unsigned>(4, 9);
        const unsigned orders = m_in.ConsumeIntegralInRange<unsigned>(1, 12);
        const size_t offset = m_in.ConsumeIntegralInRange<size_t>(0, 4095);
        const size_t size = m_in.ConsumeIntegralInRange<size_t>(0, kMaxRegion);
        m_min = size_t{1} << min_shift;
        m_max = m_min << (orders - 1);

        m_backing_bytes = offset + size + 1;
        m_backing = shared_backing();
        auto* region = static_cast<uint8_t*>(m_backing) + offset;

        const size_t needed = BuddyAllocator::metadata_bytes_needed(region, size, m_min, m_max);
        const size_t any_base = BuddyAllocator::metadata_bytes_needed(size, m_min, m_max);
        FUZZ_CHECK(needed <= any_base || needed == 0, "exact metadata %zu > worst case %zu", needed, any_base);
        // Exactly the bytes asked for, on the heap, so ASan sees any metadata overrun.
        m_meta.assign(needed == 0 ? 64 : needed, 0xa5);
        auto init = m_buddy.init(region, size, m_min, m_max, m_meta.data(), m_meta.size());
        if (needed == 0) {
            FUZZ_CHECK(!init && init.error() == BuddyError::RegionTooSmall, "init over %zu bytes at +%zu: %s", size,
                       offset, init ? "succeeded" : mm::to_string(init.error()));
            return false;
        }
        FUZZ_CHECK(init.has_value(), "init failed: %s", mm::to_string(init.error()));

        const uintptr_t lo = reinterpret_cast<uintptr_t>(region);
        m_begin = m_buddy.region_begin();
        m_end = m_buddy.region_end();
        FUZZ_CHECK(m_begin >= lo && m_end <= lo + size && m_begin < m_end, "trimmed region outside the given one");
        FUZZ_CHECK(m_begin % m_min == 0 && m_end % m_min == 0, "trimmed region not min-block aligned");
        FUZZ_CHECK((m_begin - lo) < m_min && (lo + size - m_end) < m_min, "trimmed more than needed");
        FUZZ_CHECK(m_buddy.bytes_used() == 0 && m_buddy.bytes_total() == m_end - m_begin, "fresh counters wrong");

        // Nothing outside the trimmed region may be touched, nor free memory beyond the links.
        ASAN_POISON_MEMORY_REGION(m_backing, kBackingBytes);
        poison_free(m_begin, m_end - m_begin);
        for (unsigned k = 0; k < m_buddy.order_count(); ++k)
            m_initial_free[k] = m_buddy.free_blocks(k);
        check_all();
        return true;
    }

    void poison_free(uintptr_t start, size_t bytes)
    {
        ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(start), bytes);
        for (uintptr_t p = start; p < start + bytes; p += m_min)
            ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(p), BuddyAllocator::kFreeNodeBytes);
    }

    size_t pick_size()
    {
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 3)) {
        case 0: return m_in.ConsumeIntegralInRange<size_t>(0, m_max + m_max / 4); // includes 0 and oversize
        case 1: return m_in.ConsumeIntegralInRange<size_t>(1, m_min);
        case 2: return m_buddy.block_size(m_in.ConsumeIntegralInRange<unsigned>(0, m_buddy.order_count() - 1));
        default: return m_in.ConsumeIntegralInRange<size_t>(1, 4 * m_min);
        }
    }

    // Whether a naturally aligned, wholly free block of `order` lies inside the region.
    bool free_run_exists(unsigned order) const
    {
        const uintptr_t bs = m_buddy.block_size(order);
        uintptr_t gap = m_begin;
        auto fits = [&](uintptr_t from, uintptr_t to) {
            const uintptr_t start = (from + bs - 1) & ~(bs - 1);
            return start >= from && start + bs <= to && start + bs > start;
        };
        for (const auto& [addr, block] : m_live) {
            if (fits(gap, addr))
                return true;
            gap = addr + block.size;
        }
        return fits(gap, m_end);
    }

    void on_allocated(lib::Expected<void*, BuddyError> result, size_t size, unsigned order, bool valid,
                      uint64_t failed_before)
    {
        if (!valid) {
            FUZZ_CHECK(!result && result.error() == BuddyError::InvalidSize,
                       "size %zu / order %u: expected InvalidSize", size, order);
            FUZZ_CHECK(m_buddy.stats().failed_allocations == failed_before + 1, "failed allocation not counted");
            return;
        }
        if (!result) {
            FUZZ_CHECK(result.error() == BuddyError::OutOfMemory, "order %u: %s", order, mm::to_string(result.error()));
            FUZZ_CHECK(!free_run_exists(order), "order %u failed although a free aligned run exists", order);
            FUZZ_CHECK(m_buddy.stats().failed_allocations == failed_before + 1, "failed allocation not counted");
            return;
        }
        const auto p = reinterpret_cast<uintptr_t>(*result);
        const size_t bs = m_buddy.block_size(order);
        FUZZ_CHECK(p % bs == 0, "block %#zx of %zu bytes not naturally aligned", size_t(p), bs);
        FUZZ_CHECK(p >= m_begin && p + bs <= m_end, "block %#zx+%zu outside the region", size_t(p), bs);
        auto next = m_live.lower_bound(p);
        FUZZ_CHECK(next == m_live.end() || next->first >= p + bs, "block %#zx overlaps a live block", size_t(p));
        if (next != m_live.begin()) {
            auto prev = std::prev(next);
            FUZZ_CHECK(prev->first + prev->second.size <= p, "block %#zx overlaps a live block", size_t(p));
        }
        auto queried = m_buddy.block_size_of(*result);
        FUZZ_CHECK(queried && *queried == bs, "block_size_of disagrees");
        ASAN_UNPOISON_MEMORY_REGION(*result, bs);
        const auto fill = static_cast<uint8_t>(++m_serial * 37 + 11);
        std::memset(*result, fill, bs);
        m_live.emplace(p, Block{bs, order, fill});
        m_used += bs;
        m_touched = p;
    }

    void verify_contents(uintptr_t p, const Block& block) const
    {
        const auto* bytes = reinterpret_cast<const uint8_t*>(p);
        const size_t i = fuzz::first_mismatch(bytes, block.size, block.fill);
        FUZZ_CHECK(i == block.size, "block %#zx byte %zu is %#x, wrote %#x", size_t(p), i, bytes[i], block.fill);
    }

    std::map<uintptr_t, Block>::iterator pick_live()
    {
        auto it = m_live.begin();
        std::advance(it, m_in.ConsumeIntegralInRange<size_t>(0, m_live.size() - 1));
        return it;
    }

    void release(std::map<uintptr_t, Block>::iterator it, bool sized)
    {
        const uintptr_t p = it->first;
        const Block block = it->second;
        verify_contents(p, block);
        size_t size = block.size;
        bool size_ok = true;
        if (sized) {
            size = m_in.ConsumeIntegralInRange<size_t>(0, 2 * block.size);
            auto order = m_buddy.order_for_size(size);
            size_ok = order && *order == block.order;
        }
        const auto before = m_buddy.stats();
        auto result =
            sized ? m_buddy.free_sized(reinterpret_cast<void*>(p), size) : m_buddy.free(reinterpret_cast<void*>(p));
        if (!size_ok) {
            FUZZ_CHECK(!result && result.error() == BuddyError::SizeMismatch, "free_sized(%zu) of a %zu block: %s",
                       size, block.size, result ? "accepted" : mm::to_string(result.error()));
            FUZZ_CHECK(m_buddy.stats() == before, "rejected free changed state");
            verify_contents(p, block);
            return;
        }
        FUZZ_CHECK(result.has_value(), "free of live block %#zx: %s", size_t(p), mm::to_string(result.error()));
        m_live.erase(it);
        m_used -= block.size;
        m_freed.push_back(p);
        m_touched = p;
        poison_free(p, block.size);
    }

    BuddyError expected_error(uintptr_t a) const
    {
        if (a < m_begin || a >= m_end)
            return BuddyError::ForeignPointer;
        auto next = m_live.upper_bound(a);
        if (next != m_live.begin()) {
            auto prev = std::prev(next);
            if (a < prev->first + prev->second.size)
                return BuddyError::InteriorPointer; // the start itself is never asked for
        }
        return a % m_min != 0 ? BuddyError::MisalignedPointer : BuddyError::DoubleFree;
    }

    void bad_free()
    {
        const uintptr_t lo = reinterpret_cast<uintptr_t>(m_backing);
        uintptr_t a = 0;
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 3)) {
        case 0: a = lo - 64 + m_in.ConsumeIntegralInRange<uintptr_t>(0, m_backing_bytes + 128); break;
        case 1:
            if (m_live.empty())
                return;
            {
                auto it = pick_live();
                a = it->first + m_in.ConsumeIntegralInRange<uintptr_t>(1, it->second.size - 1 + (it->second.size == 1));
            }
            break;
        case 2:
            if (m_freed.empty())
                return;
            a = m_freed[m_in.ConsumeIntegralInRange<size_t>(0, m_freed.size() - 1)];
            break;
        default: a = m_in.ConsumeBool() ? 0 : UINTPTR_MAX - m_in.ConsumeIntegralInRange<uintptr_t>(0, 4096); break;
        }
        if (m_live.count(a) != 0)
            return; // a valid free; not what this operation tests
        const BuddyError expected = expected_error(a);
        m_touched = a;
        const auto before = m_buddy.stats();
        auto* ptr = reinterpret_cast<void*>(a);
        lib::Expected<void, BuddyError> result;
        if (m_in.ConsumeBool())
            result = m_buddy.free(ptr);
        else
            result = m_buddy.free_sized(ptr, m_in.ConsumeIntegralInRange<size_t>(0, m_max));
        FUZZ_CHECK(!result && result.error() == expected, "bad free of %#zx (region %#zx..%#zx): %s, expected %s",
                   size_t(a), size_t(m_begin), size_t(m_end), result ? "accepted" : mm::to_string(result.error()),
                   mm::to_string(expected));
        FUZZ_CHECK(m_buddy.stats() == before, "rejected free changed state");
        auto order = m_buddy.order_of(ptr);
        FUZZ_CHECK(!order && order.error() == expected, "order_of(%#zx) disagrees with free", size_t(a));
    }

    void step()
    {
        m_touched = 0;
        const uint64_t failed_before = m_buddy.stats().failed_allocations;
        switch (m_in.ConsumeIntegralInRange<unsigned>(0, 8)) {
        case 0:
        case 1: {
            const size_t size = pick_size();
            auto order = m_buddy.order_for_size(size);
            on_allocated(m_buddy.allocate(size), size, order ? *order : 0, order.has_value(), failed_before);
            break;
        }
        case 2: {
            const unsigned order = m_in.ConsumeIntegralInRange<unsigned>(0, m_buddy.order_count() + 1);
            on_allocated(m_buddy.allocate_order(order), 0, order, order < m_buddy.order_count(), failed_before);
            break;
        }
        case 3:
        case 4:
            if (!m_live.empty())
                release(pick_live(), false);
            break;
        case 5:
            if (!m_live.empty())
                release(pick_live(), true);
            break;
        case 6: bad_free(); break;
        case 7:
            for (const auto& [p, block] : m_live)
                verify_contents(p, block);
            break;
        default:
            if (!m_live.empty()) {
                auto it = pick_live();
                m_touched = it->first;
                auto order = m_buddy.order_of(reinterpret_cast<void*>(it->first));
                FUZZ_CHECK(order && *order == it->second.order, "order_of a live block disagrees");
            }
            break;
        }
        check_touched();
    }

    // After each operation: the block it touched, its buddy, the list heads and the counters.
    void check_touched() const
    {
        const auto report = m_buddy.check_local(reinterpret_cast<const void*>(m_touched));
        FUZZ_CHECK(report.ok(), "check_local(%#zx): %llu violation(s), first %s at order %u, %#zx", size_t(m_touched),
                   static_cast<unsigned long long>(report.violations), mm::to_string(report.first), report.first_order,
                   size_t(report.first_address));
        FUZZ_CHECK(m_buddy.bytes_used() == m_used, "byte counter %llu, model %zu",
                   static_cast<unsigned long long>(m_buddy.bytes_used()), m_used);
    }

    void check_all() const
    {
        const auto report = m_buddy.check_invariants();
        FUZZ_CHECK(report.ok(), "check_invariants: %llu violation(s), first %s at order %u, %#zx",
                   static_cast<unsigned long long>(report.violations), mm::to_string(report.first), report.first_order,
                   size_t(report.first_address));
        FUZZ_CHECK(report.allocated_blocks == m_live.size() && report.allocated_bytes == m_used,
                   "walk found %llu blocks / %llu bytes, model %zu / %zu",
                   static_cast<unsigned long long>(report.allocated_blocks),
                   static_cast<unsigned long long>(report.allocated_bytes), m_live.size(), m_used);
        FUZZ_CHECK(m_buddy.bytes_used() == m_used && report.free_bytes == m_buddy.bytes_free(), "byte counters wrong");
    }

    void free_everything()
    {
        while (!m_live.empty())
            release(m_live.begin(), false);
        check_all();
        for (unsigned k = 0; k < m_buddy.order_count(); ++k)
            FUZZ_CHECK(m_buddy.free_blocks(k) == m_initial_free[k],
                       "order %u: %llu free blocks after freeing all, %llu after init", k,
                       static_cast<unsigned long long>(m_buddy.free_blocks(k)),
                       static_cast<unsigned long long>(m_initial_free[k]));
    }

    FuzzedDataProvider& m_in;
    BuddyAllocator m_buddy;
    void* m_backing = nullptr;
    size_t m_backing_bytes = 0;
    std::vector<uint8_t> m_meta;
    size_t m_min = 0;
    size_t m_max = 0;
    uintptr_t m_begin = 0;
    uintptr_t m_end = 0;
    std::map<uintptr_t, Block> m_live;
    std::vector<uintptr_t> m_freed;
    size_t m_used = 0;
    unsigned m_serial = 0;
    uintptr_t m_touched = 0; // the block (or bad pointer) the last operation touched
    uint64_t m_initial_free[mm::kBuddyMaxOrders] = {};
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    FuzzedDataProvider in(data, size);
    Harness harness(in);
    harness.run();
    return 0;
}
