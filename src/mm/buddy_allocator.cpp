// mm::BuddyAllocator. Geometry, bit layout and error rules: see buddy_allocator.h.
#include "mm/buddy_allocator.h"

#include <bit>

#include "mm/fragmentation.h"

namespace mm {

namespace {

constexpr uint64_t kEvenBits = 0x5555555555555555ull; // bit 2j of each buddy pair (2j, 2j+1)

void note_violation(BuddyCheckReport& report, BuddyViolation violation, unsigned order, uintptr_t address)
{
    report.kinds |= uint32_t{1} << static_cast<unsigned>(violation);
    if (report.violations++ == 0) {
        report.first = violation;
        report.first_order = order;
        report.first_address = address;
    }
}

} // namespace

const char* to_string(BuddyError error)
{
    switch (error) {
    case BuddyError::OutOfMemory: return "out of memory";
    case BuddyError::InvalidSize: return "invalid size";
    case BuddyError::DoubleFree: return "double free (block is not allocated)";
    case BuddyError::ForeignPointer: return "pointer outside the allocator's region";
    case BuddyError::MisalignedPointer: return "misaligned pointer";
    case BuddyError::InteriorPointer: return "pointer into the middle of a block";
    case BuddyError::SizeMismatch: return "size does not match the block";
    case BuddyError::InvalidConfig: return "invalid configuration";
    case BuddyError::RegionTooSmall: return "region too small";
    case BuddyError::MetadataTooSmall: return "metadata buffer too small";
    case BuddyError::MetadataOverlap: return "metadata buffer overlaps the region";
    }
    return "unknown buddy error";
}

const char* to_string(BuddyViolation violation)
{
    switch (violation) {
    case BuddyViolation::None: return "none";
    case BuddyViolation::ListCorrupt: return "free list links corrupt";
    case BuddyViolation::NodeOutOfRange: return "free block outside the region";
    case BuddyViolation::NodeMisaligned: return "free block misaligned";
    case BuddyViolation::NodeNotMarked: return "listed free block not marked free";
    case BuddyViolation::CountMismatch: return "free list, bitmap and counter disagree";
    case BuddyViolation::MaskMismatch: return "non-empty order mask wrong";
    case BuddyViolation::UnmergedBuddies: return "free buddies not merged";
    case BuddyViolation::StrayBit: return "free bit beyond the arena";
    case BuddyViolation::BadAllocRecord: return "bad allocation record";
    case BuddyViolation::UncoveredMemory: return "memory neither free nor allocated";
    case BuddyViolation::Overlap: return "overlapping blocks";
    case BuddyViolation::BytesMismatch: return "byte counters wrong";
    }
    return "unknown violation";
}

// ---------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------

bool BuddyAllocator::valid_config(size_t min_block, size_t max_block)
{
    if (!std::has_single_bit(min_block) || !std::has_single_bit(max_block))
        return false;
    if (min_block < kMinBlockSize || max_block < min_block)
        return false;
    return static_cast<unsigned>(std::countr_zero(max_block) - std::countr_zero(min_block)) < kMaxOrders;
}

size_t BuddyAllocator::bitmap_words_for(size_t arena_blocks, unsigned order_count)
{
    size_t words = 0;
    for (unsigned k = 0; k < order_count; ++k)
        words += ((arena_blocks >> k) + 63) / 64;
    return words;
}

lib::Expected<BuddyAllocator::Layout, BuddyError> BuddyAllocator::compute_layout(uintptr_t base, size_t size,
                                                                                 size_t min_block, size_t max_block)
{
    if (!valid_config(min_block, max_block) || size > UINTPTR_MAX - base)
        return lib::unexpected(BuddyError::InvalidConfig);
    // Trim inwards to min_block boundaries without overflowing near the top.
    const size_t head_pad = (0 - base) & (min_block - 1);
    if (head_pad >= size)
        return lib::unexpected(BuddyError::RegionTooSmall);
    Layout layout{};
    layout.start = base + head_pad;
    layout.end = (base + size) & ~static_cast<uintptr_t>(min_block - 1);
    if (layout.start >= layout.end)
        return lib::unexpected(BuddyError::RegionTooSmall);
    layout.arena_base = layout.start & ~static_cast<uintptr_t>(max_block - 1);
    const uintptr_t span = layout.end - layout.arena_base;
    const size_t roots = span / max_block + (span % max_block != 0);
    layout.min_shift = static_cast<unsigned>(std::countr_zero(min_block));
    layout.order_count = static_cast<unsigned>(std::countr_zero(max_block)) - layout.min_shift + 1;
    layout.arena_blocks = roots << (layout.order_count - 1);
    layout.bitmap_words = bitmap_words_for(layout.arena_blocks, layout.order_count);
    return layout;
}

size_t BuddyAllocator::metadata_bytes_needed(size_t region_size, size_t min_block, size_t max_block)
{
    if (!valid_config(min_block, max_block))
        return 0;
    // An unaligned region touches at most one root more than its size needs.
    const size_t roots = region_size / max_block + (region_size % max_block != 0) + 1;
    const unsigned order_count = static_cast<unsigned>(std::countr_zero(max_block) - std::countr_zero(min_block)) + 1;
    const size_t arena_blocks = roots << (order_count - 1);
    return (alignof(uint64_t) - 1) + bitmap_words_for(arena_blocks, order_count) * sizeof(uint64_t) + arena_blocks;
}

size_t BuddyAllocator::metadata_bytes_needed(const void* region, size_t region_size, size_t min_block, size_t max_block)
{
    const auto layout = compute_layout(reinterpret_cast<uintptr_t>(region), region_size, min_block, max_block);
    if (!layout)
        return 0;
    return (alignof(uint64_t) - 1) + layout->bitmap_words * sizeof(uint64_t) + layout->arena_blocks;
}

lib::Expected<void, BuddyError> BuddyAllocator::init(void* region, size_t region_size, size_t min_block,
                                                     size_t max_block, void* metadata, size_t metadata_bytes)
{
    const auto layout = compute_layout(reinterpret_cast<uintptr_t>(region), region_size, min_block, max_block);
    if (!layout)
        return lib::unexpected(layout.error());

    const uintptr_t meta = reinterpret_cast<uintptr_t>(metadata);
    const size_t pad = (0 - meta) & (alignof(uint64_t) - 1);
    const size_t bitmap_bytes = layout->bitmap_words * sizeof(uint64_t);
    const size_t used = bitmap_bytes + layout->arena_blocks;
    if (metadata == nullptr || metadata_bytes < pad || metadata_bytes - pad < used)
        return lib::unexpected(BuddyError::MetadataTooSmall);
    if (meta < layout->end && layout->start < meta + pad + used)
        return lib::unexpected(BuddyError::MetadataOverlap);

    // Validated: from here on nothing fails.
    m_arena_base = layout->arena_base;
    m_start = layout->start;
    m_end = layout->end;
    m_min_block = min_block;
    m_max_block = max_block;
    m_arena_blocks = layout->arena_blocks;
    m_min_shift = layout->min_shift;
    m_order_count = layout->order_count;
    m_nonempty = 0;
    m_bits = reinterpret_cast<uint64_t*>(meta + pad);
    m_alloc_order = reinterpret_cast<uint8_t*>(meta + pad + bitmap_bytes);
    __builtin_memset(m_bits, 0, used);

    size_t word = 0;
    for (unsigned k = 0; k < kMaxOrders; ++k) {
        m_heads[k] = nullptr;
        m_free_count[k] = 0;
        m_word_offset[k] = word;
        if (k < m_order_count)
            word += ((m_arena_blocks >> k) + 63) / 64;
    }
    m_bytes_used = 0;
    m_peak_used = 0;
    m_allocations = 0;
    m_frees = 0;
    m_failed_allocations = 0;

    // Greedy cut from the low end: at each offset the largest block that is
    // aligned there and still fits. Offsets are relative to the max-aligned arena
    // base, so offset alignment is absolute alignment.
    const unsigned top = m_order_count - 1;
    const uintptr_t end = m_end - m_arena_base;
    for (uintptr_t offset = m_start - m_arena_base; offset < end;) {
        unsigned k = top;
        if (offset != 0) {
            const unsigned aligned = static_cast<unsigned>(std::countr_zero(offset)) - m_min_shift;
            k = aligned < top ? aligned : top;
        }
        while (block_size(k) > end - offset)
            --k;
        push_free(k, offset);
        offset += block_size(k);
    }
    return {};
}

// ---------------------------------------------------------------------------
// Free lists and bitmaps
// ---------------------------------------------------------------------------

inline void BuddyAllocator::push_free(unsigned order, uintptr_t offset)
{
    FreeNode* node = node_at(offset);
    FreeNode* head = m_heads[order];
    node->next = head;
    node->prev = nullptr;
    if (head != nullptr)
        head->prev = node;
    m_heads[order] = node;
    m_nonempty |= uint64_t{1} << order;
    ++m_free_count[order];
    const size_t index = index_of(offset, order);
    bit_word(order, index) |= uint64_t{1} << (index & 63);
}

inline void BuddyAllocator::unlink_free(unsigned order, FreeNode* node, uintptr_t offset)
{
    FreeNode* next = node->next;
    FreeNode* prev = node->prev;
    if (prev != nullptr) {
        prev->next = next;
    } else {
        m_heads[order] = next;
        if (next == nullptr)
            m_nonempty &= ~(uint64_t{1} << order);
    }
    if (next != nullptr)
        next->prev = prev;
    --m_free_count[order];
    const size_t index = index_of(offset, order);
    bit_word(order, index) &= ~(uint64_t{1} << (index & 63));
}

// ---------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------

lib::Expected<void*, BuddyError> BuddyAllocator::fail_allocation(BuddyError error)
{
    ++m_failed_allocations;
    return lib::unexpected(error);
}

inline lib::Expected<void*, BuddyError> BuddyAllocator::take(unsigned order)
{
    // Orders >= `order` with a non-empty list; the lowest one wastes least.
    const uint64_t candidates = m_nonempty & (~uint64_t{0} << order);
    if (candidates == 0) [[unlikely]]
        return fail_allocation(BuddyError::OutOfMemory);
    unsigned k = static_cast<unsigned>(std::countr_zero(candidates));
    FreeNode* node = m_heads[k];
    const uintptr_t offset = reinterpret_cast<uintptr_t>(node) - m_arena_base;
    unlink_free(k, node, offset);
    // Split down: keep the low half, free the high half at each order.
    while (k > order) {
        --k;
        push_free(k, offset + block_size(k));
    }
    m_alloc_order[offset >> m_min_shift] = static_cast<uint8_t>(order + 1);
    const size_t size = block_size(order);
    m_bytes_used += size;
    if (m_bytes_used > m_peak_used)
        m_peak_used = m_bytes_used;
    ++m_allocations;
    return static_cast<void*>(node);
}

lib::Expected<void*, BuddyError> BuddyAllocator::allocate(size_t size)
{
    // size - 1 wraps for 0, so one compare rejects 0 and oversize requests.
    if (size - 1 >= m_max_block) [[unlikely]]
        return fail_allocation(initialized() ? BuddyError::InvalidSize : BuddyError::OutOfMemory);
    const unsigned order = size <= m_min_block ? 0 : static_cast<unsigned>(std::bit_width(size - 1)) - m_min_shift;
    return take(order);
}

lib::Expected<void*, BuddyError> BuddyAllocator::allocate_order(unsigned order)
{
    if (order >= m_order_count) [[unlikely]]
        return fail_allocation(initialized() ? BuddyError::InvalidSize : BuddyError::OutOfMemory);
    return take(order);
}

lib::Expected<unsigned, BuddyError> BuddyAllocator::order_for_size(size_t size) const
{
    if (size - 1 >= m_max_block)
        return lib::unexpected(BuddyError::InvalidSize);
    if (size <= m_min_block)
        return 0u;
    return static_cast<unsigned>(std::bit_width(size - 1)) - m_min_shift;
}

// ---------------------------------------------------------------------------
// Free
// ---------------------------------------------------------------------------

// Fast path: in range, min-block aligned, and an allocation record there.
inline lib::Expected<unsigned, BuddyError> BuddyAllocator::lookup_allocated(uintptr_t addr) const
{
    if (addr - m_start < m_end - m_start) [[likely]] {
        const uintptr_t offset = addr - m_arena_base;
        if ((offset & (m_min_block - 1)) == 0) [[likely]] {
            const uint8_t record = m_alloc_order[offset >> m_min_shift];
            if (record != 0) [[likely]]
                return static_cast<unsigned>(record - 1);
        }
    }
    return lib::unexpected(classify_bad_pointer(addr));
}

// Slow path, read-only: say why addr is not the start of an allocated block.
BuddyError BuddyAllocator::classify_bad_pointer(uintptr_t addr) const
{
    if (addr - m_start >= m_end - m_start)
        return BuddyError::ForeignPointer;
    const uintptr_t offset = addr - m_arena_base;
    // An allocated block of order k containing addr starts at
    // align_down(offset, block_size(k)). Records outside the region are always 0.
    // (At a block start the fast path would have succeeded, so any hit here is
    // interior.)
    for (unsigned k = 0; k < m_order_count; ++k) {
        const uintptr_t head = offset & ~static_cast<uintptr_t>(block_size(k) - 1);
        if (m_alloc_order[head >> m_min_shift] == k + 1)
            return BuddyError::InteriorPointer;
    }
    // Not inside any allocated block, so inside free memory.
    return (offset & (m_min_block - 1)) != 0 ? BuddyError::MisalignedPointer : BuddyError::DoubleFree;
}

inline void BuddyAllocator::release(uintptr_t offset, unsigned order)
{
    const size_t size = block_size(order);
    m_alloc_order[offset >> m_min_shift] = 0;
    m_bytes_used -= size;
    ++m_frees;
    // Merge while the buddy is free at the same order. Reserved arena space
    // outside the region never has a free bit, so merges stop at the bounds.
    unsigned k = order;
    const unsigned top = m_order_count - 1;
    while (k < top) {
        const uintptr_t buddy = offset ^ block_size(k);
        if (!test_free_bit(k, index_of(buddy, k)))
            break;
        unlink_free(k, node_at(buddy), buddy);
        offset &= ~static_cast<uintptr_t>(block_size(k));
        ++k;
    }
    push_free(k, offset);
}

lib::Expected<void, BuddyError> BuddyAllocator::free(void* ptr)
{
    const uintptr_t addr = reinterpret_cast<uintptr_t>(ptr);
    const auto order = lookup_allocated(addr);
    if (!order) [[unlikely]]
        return lib::unexpected(order.error());
    release(addr - m_arena_base, *order);
    return {};
}

lib::Expected<void, BuddyError> BuddyAllocator::free_sized(void* ptr, size_t size)
{
    const uintptr_t addr = reinterpret_cast<uintptr_t>(ptr);
    const auto order = lookup_allocated(addr);
    if (!order) [[unlikely]]
        return lib::unexpected(order.error());
    const auto expected = order_for_size(size);
    if (!expected || *expected != *order) [[unlikely]]
        return lib::unexpected(BuddyError::SizeMismatch);
    release(addr - m_arena_base, *order);
    return {};
}

lib::Expected<unsigned, BuddyError> BuddyAllocator::order_of(const void* ptr) const
{
    return lookup_allocated(reinterpret_cast<uintptr_t>(ptr));
}

lib::Expected<size_t, BuddyError> BuddyAllocator::block_size_of(const void* ptr) const
{
    const auto order = lookup_allocated(reinterpret_cast<uintptr_t>(ptr));
    if (!order)
        return lib::unexpected(order.error());
    return block_size(*order);
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

// Linux's indexes over this allocator's buddyinfo ("pages" are min blocks here): mm/fragmentation.h.
int BuddyAllocator::fragmentation_index(unsigned order) const
{
    return mm::fragmentation_index(m_free_count, m_order_count, order);
}

int BuddyAllocator::unusable_free_index(unsigned order) const
{
    return mm::unusable_free_index(m_free_count, m_order_count, order);
}

BuddyStats BuddyAllocator::stats() const
{
    BuddyStats s;
    s.min_block = m_min_block;
    s.max_block = m_max_block;
    s.order_count = m_order_count;
    for (unsigned k = 0; k < m_order_count; ++k) {
        s.free_blocks[k] = m_free_count[k];
        s.fragmentation_index[k] = fragmentation_index(k);
        s.unusable_index[k] = unusable_free_index(k);
    }
    s.bytes_total = bytes_total();
    s.bytes_free = bytes_free();
    s.bytes_used = m_bytes_used;
    s.peak_bytes_used = m_peak_used;
    s.allocations = m_allocations;
    s.frees = m_frees;
    s.failed_allocations = m_failed_allocations;
    return s;
}

// ---------------------------------------------------------------------------
// Invariant checker
// ---------------------------------------------------------------------------

BuddyCheckReport BuddyAllocator::check_invariants() const
{
    BuddyCheckReport report;
    auto note = [&report](BuddyViolation violation, unsigned order, uintptr_t address) {
        note_violation(report, violation, order, address);
    };
    if (!initialized())
        return report;

    const uintptr_t start = m_start - m_arena_base;
    const uintptr_t end = m_end - m_arena_base;
    auto address_of = [this](size_t index, unsigned order) { return m_arena_base + (index << (m_min_shift + order)); };
    uint64_t population[kMaxOrders] = {};

    // 1. Per order: bitmap population, missed merges, and the free list itself.
    for (unsigned k = 0; k < m_order_count; ++k) {
        const size_t blocks = m_arena_blocks >> k;
        const size_t words = (blocks + 63) / 64;
        const uint64_t* bits = m_bits + m_word_offset[k];
        for (size_t w = 0; w < words; ++w) {
            uint64_t word = bits[w];
            const size_t valid = blocks - w * 64;
            if (valid < 64) {
                const uint64_t stray = word & (~uint64_t{0} << valid);
                if (stray != 0)
                    note(BuddyViolation::StrayBit, k, address_of(w * 64 + std::countr_zero(stray), k));
                word &= ~stray;
            }
            population[k] += static_cast<uint64_t>(std::popcount(word));
            const uint64_t pairs = word & (word >> 1) & kEvenBits;
            if (k + 1 < m_order_count && pairs != 0)
                note(BuddyViolation::UnmergedBuddies, k, address_of(w * 64 + std::countr_zero(pairs), k));
        }

        const size_t size = block_size(k);
        uint64_t length = 0;
        const FreeNode* prev = nullptr;
        for (const FreeNode* node = m_heads[k]; node != nullptr; node = node->next) {
            const uintptr_t addr = reinterpret_cast<uintptr_t>(node);
            if (length == blocks) { // more entries than blocks exist: a cycle or a duplicate
                note(BuddyViolation::ListCorrupt, k, addr);
                break;
            }
            if (addr - m_start >= m_end - m_start || m_end - addr < size) {
                note(BuddyViolation::NodeOutOfRange, k, addr);
                break; // its links cannot be trusted (or even read)
            }
            ++length;
            if (node->prev != prev)
                note(BuddyViolation::ListCorrupt, k, addr);
            const uintptr_t offset = addr - m_arena_base;
            if ((offset & (size - 1)) != 0)
                note(BuddyViolation::NodeMisaligned, k, addr);
            else if (!test_free_bit(k, index_of(offset, k)))
                note(BuddyViolation::NodeNotMarked, k, addr);
            prev = node;
        }
        if (length != population[k] || length != m_free_count[k])
            note(BuddyViolation::CountMismatch, k, 0);
        if (((m_nonempty >> k) & 1) != (m_heads[k] != nullptr ? 1u : 0u))
            note(BuddyViolation::MaskMismatch, k, 0);
    }
    if ((m_nonempty >> m_order_count) != 0)
        note(BuddyViolation::MaskMismatch, m_order_count, 0);

    // 2. Walk the region block by block: every min block must be covered by
    // exactly one free or allocated block. Anything hidden inside another block
    // is caught by comparing what the walk saw with the totals.
    uint64_t seen_free[kMaxOrders] = {};
    for (uintptr_t p = start; p < end;) {
        const uint8_t record = m_alloc_order[p >> m_min_shift];
        if (record != 0) {
            const unsigned k = record - 1u;
            if (k >= m_order_count || (p & (block_size(k) - 1)) != 0 || end - p < block_size(k)) {
                note(BuddyViolation::BadAllocRecord, k, m_arena_base + p);
                p += m_min_block;
                continue;
            }
            ++report.allocated_blocks;
            report.allocated_bytes += block_size(k);
            p += block_size(k);
            continue;
        }
        unsigned k = 0;
        while (k < m_order_count && (p & (block_size(k) - 1)) == 0 && !test_free_bit(k, index_of(p, k)))
            ++k;
        if (k == m_order_count || (p & (block_size(k) - 1)) != 0) {
            note(BuddyViolation::UncoveredMemory, 0, m_arena_base + p);
            p += m_min_block;
            continue;
        }
        if (end - p < block_size(k)) {
            note(BuddyViolation::NodeOutOfRange, k, m_arena_base + p);
            break;
        }
        ++seen_free[k];
        ++report.free_blocks;
        report.free_bytes += block_size(k);
        p += block_size(k);
    }
    for (unsigned k = 0; k < m_order_count; ++k) {
        if (seen_free[k] != population[k])
            note(BuddyViolation::Overlap, k, 0);
    }
    uint64_t records = 0;
    for (size_t i = 0; i < m_arena_blocks; ++i)
        records += m_alloc_order[i] != 0;
    if (records != report.allocated_blocks)
        note(BuddyViolation::Overlap, 0, 0);

    if (report.allocated_bytes != m_bytes_used || report.free_bytes != bytes_free() || m_peak_used < m_bytes_used)
        note(BuddyViolation::BytesMismatch, 0, 0);
    return report;
}

BuddyCheckReport BuddyAllocator::check_local(const void* ptr) const
{
    BuddyCheckReport report;
    if (!initialized())
        return report;
    uint64_t free_bytes = 0;
    for (unsigned k = 0; k < m_order_count; ++k) {
        const FreeNode* head = m_heads[k];
        free_bytes += m_free_count[k] * block_size(k);
        if (((m_nonempty >> k) & 1) != (head != nullptr ? 1u : 0u))
            note_violation(report, BuddyViolation::MaskMismatch, k, 0);
        if ((head == nullptr) != (m_free_count[k] == 0))
            note_violation(report, BuddyViolation::CountMismatch, k, 0);
        if (head == nullptr)
            continue;
        if (!node_in_region(head, k))
            note_violation(report, BuddyViolation::NodeOutOfRange, k, reinterpret_cast<uintptr_t>(head));
        else if (head->prev != nullptr)
            note_violation(report, BuddyViolation::ListCorrupt, k, reinterpret_cast<uintptr_t>(head));
    }
    if ((m_nonempty >> m_order_count) != 0)
        note_violation(report, BuddyViolation::MaskMismatch, m_order_count, 0);
    if (free_bytes != bytes_free() || m_peak_used < m_bytes_used)
        note_violation(report, BuddyViolation::BytesMismatch, 0, 0);

    const auto addr = reinterpret_cast<uintptr_t>(ptr);
    if (addr - m_start >= m_end - m_start)
        return report;
    const uintptr_t offset = (addr - m_arena_base) & ~static_cast<uintptr_t>(m_min_block - 1);
    check_block_at(offset, report);
    return report;
}

// The block covering arena offset `offset` (a min-block start), then its buddy's block.
void BuddyAllocator::check_block_at(uintptr_t offset, BuddyCheckReport& report) const
{
    const uintptr_t start = m_start - m_arena_base;
    const uintptr_t end = m_end - m_arena_base;
    // Checks the block covering `at`; returns its buddy's offset, or `end` when there is none.
    auto check_one = [&](uintptr_t at) -> uintptr_t {
        uintptr_t base = 0;
        unsigned order = m_order_count;
        bool allocated = false;
        for (unsigned k = 0; k < m_order_count && order == m_order_count; ++k) {
            base = at & ~static_cast<uintptr_t>(block_size(k) - 1);
            if (base < start)
                break;
            const uint8_t record = m_alloc_order[base >> m_min_shift];
            if (record != 0) {
                const unsigned r = record - 1u;
                if (r >= m_order_count || end - base < block_size(r)) {
                    note_violation(report, BuddyViolation::BadAllocRecord, r, m_arena_base + base);
                    return end;
                }
                if (at - base < block_size(r)) {
                    order = r;
                    allocated = true;
                }
            } else if (test_free_bit(k, index_of(base, k))) {
                order = k;
            }
        }
        if (order == m_order_count) {
            note_violation(report, BuddyViolation::UncoveredMemory, 0, m_arena_base + at);
            return end;
        }
        const uintptr_t address = m_arena_base + base;
        if (!allocated) {
            if (end - base < block_size(order)) {
                note_violation(report, BuddyViolation::NodeOutOfRange, order, address);
                return end;
            }
            const FreeNode* node = node_at(base);
            const bool prev_ok = node->prev == nullptr ? m_heads[order] == node
                                                       : node_in_region(node->prev, order) && node->prev->next == node;
            const bool next_ok =
                node->next == nullptr || (node_in_region(node->next, order) && node->next->prev == node);
            if (!prev_ok || !next_ok)
                note_violation(report, BuddyViolation::ListCorrupt, order, address);
        }
        // No larger free block may claim this one.
        for (unsigned j = order + 1; j < m_order_count; ++j) {
            const uintptr_t outer = base & ~static_cast<uintptr_t>(block_size(j) - 1);
            if (outer < start)
                break;
            if (test_free_bit(j, index_of(outer, j)))
                note_violation(report, BuddyViolation::Overlap, j, m_arena_base + outer);
        }
        if (order + 1 >= m_order_count)
            return end;
        // The buddy shares this block's parent, so it lies in the arena (if not in the region).
        const uintptr_t buddy = base ^ block_size(order);
        if (!allocated && test_free_bit(order, index_of(buddy, order)))
            note_violation(report, BuddyViolation::UnmergedBuddies, order, address);
        return buddy < start || buddy >= end ? end : buddy;
    };
    const uintptr_t buddy = check_one(offset);
    if (buddy != end)
        check_one(buddy);
}

} // namespace mm
