// mm::FrameAllocator. Zones, policy and error rules: see frame_allocator.h.
#include "mm/frame_allocator.h"

#include "lib/utility.h"

namespace mm {

namespace {

constexpr uint64_t kFrameMask = kFrameSize - 1;
constexpr uint64_t kLastFrame = ~kFrameMask; // highest frame-aligned address

constexpr uint64_t align_down_frame(uint64_t v) { return v & ~kFrameMask; }
// Saturates instead of wrapping for the last partial frame of the address space.
constexpr uint64_t align_up_frame(uint64_t v) { return v > kLastFrame ? kLastFrame : (v + kFrameMask) & ~kFrameMask; }

uint64_t overlap_bytes(const PhysRange& a, const PhysRange& b)
{
    const PhysicalAddress start = lib::max(a.start, b.start);
    const PhysicalAddress end = lib::min(a.end, b.end);
    return start < end ? end.get() - start.get() : 0;
}

} // namespace

const char* to_string(FrameError error)
{
    switch (error) {
    case FrameError::OutOfMemory: return "out of memory";
    case FrameError::InvalidOrder: return "invalid order";
    case FrameError::DoubleFree: return "double free (frame is not allocated)";
    case FrameError::ForeignAddress: return "address not managed by any zone";
    case FrameError::MisalignedAddress: return "misaligned address";
    case FrameError::InteriorAddress: return "address inside an allocated block";
    case FrameError::SizeMismatch: return "order does not match the block";
    case FrameError::InvalidRange: return "invalid range";
    case FrameError::TooManyRanges: return "too many usable ranges in one call";
    case FrameError::InvalidOffset: return "phys->virt offset not aligned to the largest block";
    case FrameError::TooManyReserved: return "reserved range table full";
    case FrameError::AlreadyManaged: return "range already managed by a zone";
    }
    return "unknown frame error";
}

FrameError FrameAllocator::from_buddy(BuddyError error)
{
    switch (error) {
    case BuddyError::OutOfMemory: return FrameError::OutOfMemory;
    case BuddyError::InvalidSize: return FrameError::InvalidOrder;
    case BuddyError::DoubleFree: return FrameError::DoubleFree;
    case BuddyError::ForeignPointer: return FrameError::ForeignAddress;
    case BuddyError::MisalignedPointer: return FrameError::MisalignedAddress;
    case BuddyError::InteriorPointer: return FrameError::InteriorAddress;
    case BuddyError::SizeMismatch: return FrameError::SizeMismatch;
    default: return FrameError::InvalidRange; // init errors; add_zone sizes metadata so they cannot happen
    }
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

lib::Expected<void, FrameError> FrameAllocator::reserve(PhysRange range)
{
    if (range.end < range.start)
        return lib::unexpected(FrameError::InvalidRange);
    if (range.empty())
        return {};
    const PhysRange widened{PhysicalAddress(align_down_frame(range.start.get())),
                            PhysicalAddress(align_up_frame(range.end.get()))};
    for (size_t i = 0; i < m_zone_count; ++i) {
        if (m_zones[i].span.overlaps(widened))
            return lib::unexpected(FrameError::AlreadyManaged);
    }
    if (m_reserved_count == kMaxReserved)
        return lib::unexpected(FrameError::TooManyReserved);
    m_reserved[m_reserved_count++] = widened;
    return {};
}

template <typename Fn>
void FrameAllocator::for_each_free_piece(PhysRange range, Fn&& fn) const
{
    // Split at 4 GiB first, then walk each half past the blockers in address order.
    const PhysicalAddress split(kLowMemoryLimit);
    const PhysRange halves[2] = {{range.start, lib::min(range.end, split)}, {lib::max(range.start, split), range.end}};
    for (const PhysRange& half : halves) {
        PhysicalAddress cursor = half.start;
        while (cursor < half.end) {
            // The lowest-starting blocker that still overlaps [cursor, end).
            const PhysRange* next = nullptr;
            const PhysRange rest{cursor, half.end};
            auto consider = [&](const PhysRange& blocker) {
                if (blocker.overlaps(rest) && (next == nullptr || blocker.start < next->start))
                    next = &blocker;
            };
            for (size_t i = 0; i < m_reserved_count; ++i)
                consider(m_reserved[i]);
            for (size_t i = 0; i < m_zone_count; ++i)
                consider(m_zones[i].span);
            if (next == nullptr) {
                fn(rest);
                break;
            }
            if (cursor < next->start)
                fn(PhysRange{cursor, next->start});
            cursor = lib::max(cursor, next->end);
        }
    }
}

uint64_t FrameAllocator::metadata_bytes_for(PhysRange piece) const
{
    const size_t bytes =
        BuddyAllocator::metadata_bytes_needed(to_virt(piece.start), piece.size(), kFrameSize, kFrameMaxBlock);
    return align_up_frame(bytes);
}

lib::Expected<void, FrameError> FrameAllocator::add_zone(PhysRange piece, FrameAddResult& result)
{
    const uint64_t meta = metadata_bytes_for(piece);
    if (meta == 0 || meta >= piece.size())
        return lib::unexpected(FrameError::InvalidRange); // too small to hold its own metadata and a frame
    const PhysRange managed{piece.start.offset(meta), piece.end};
    Zone& zone = m_zones[m_zone_count];
    auto status =
        zone.buddy.init(to_virt(managed.start), managed.size(), kFrameSize, kFrameMaxBlock, to_virt(piece.start), meta);
    if (!status)
        return lib::unexpected(from_buddy(status.error()));
    zone.span = piece;
    zone.managed = managed;
    ++m_zone_count;
    m_bytes_total += managed.size();
    m_metadata_bytes += meta;
    ++result.zones_added;
    result.bytes_managed += managed.size();
    result.bytes_metadata += meta;
    return {};
}

lib::Expected<FrameAddResult, FrameError> FrameAllocator::add_ranges(lib::Span<const PhysRange> usable)
{
    if (m_offset % kFrameMaxBlock != 0)
        return lib::unexpected(FrameError::InvalidOffset);

    // 1. The union of the given ranges, sorted (insertion with merging; adjacent
    //    ranges merge too, so a map that splits RAM in two entries gives one zone).
    size_t unions = 0;
    for (const PhysRange& r : usable) {
        if (r.end < r.start)
            return lib::unexpected(FrameError::InvalidRange);
        if (r.empty())
            continue;
        PhysRange merged = r;
        size_t out = 0;
        size_t insert_at = unions;
        bool placed = false;
        // Rebuild in place: drop every range that touches `merged`, growing it.
        for (size_t i = 0; i < unions; ++i) {
            const PhysRange& u = m_union[i];
            if (u.start <= merged.end && merged.start <= u.end) {
                merged.start = lib::min(merged.start, u.start);
                merged.end = lib::max(merged.end, u.end);
                continue;
            }
            if (!placed && merged.end < u.start) {
                insert_at = out;
                placed = true;
            }
            m_union[out++] = u;
        }
        if (!placed)
            insert_at = out;
        if (out == kMaxPending)
            return lib::unexpected(FrameError::TooManyRanges);
        for (size_t i = out; i > insert_at; --i)
            m_union[i] = m_union[i - 1];
        m_union[insert_at] = merged;
        unions = out + 1;
    }

    // 2. Pieces: each union trimmed inwards to frames, minus reserved ranges and
    //    existing zones, split at 4 GiB. Pieces too small for their own metadata
    //    are dropped here; if more pieces than kMaxPending remain, the smallest go.
    uint64_t given_bytes = 0;
    uint64_t already_managed = 0;
    size_t pending = 0;
    uint32_t dropped = 0;
    for (size_t u = 0; u < unions; ++u) {
        const PhysRange& r = m_union[u];
        given_bytes += r.size();
        for (size_t i = 0; i < m_zone_count; ++i)
            already_managed += overlap_bytes(r, m_zones[i].span);
        const PhysRange trimmed{PhysicalAddress(align_up_frame(r.start.get())),
                                PhysicalAddress(align_down_frame(r.end.get()))};
        if (trimmed.empty())
            continue;
        for_each_free_piece(trimmed, [&](PhysRange piece) {
            if (metadata_bytes_for(piece) >= piece.size())
                return;
            if (pending < kMaxPending) {
                m_pending[pending++] = piece;
                return;
            }
            ++dropped;
            size_t smallest = 0;
            for (size_t i = 1; i < pending; ++i) {
                if (m_pending[i].size() < m_pending[smallest].size())
                    smallest = i;
            }
            if (m_pending[smallest].size() < piece.size())
                m_pending[smallest] = piece;
        });
    }

    // 3. Only as many pieces as there are free zone slots: the largest win.
    const size_t slots = kMaxZones - m_zone_count;
    if (pending > slots) {
        for (size_t i = 0; i < slots; ++i) {
            size_t largest = i;
            for (size_t j = i + 1; j < pending; ++j) {
                if (m_pending[j].size() > m_pending[largest].size())
                    largest = j;
            }
            lib::swap(m_pending[i], m_pending[largest]);
        }
        dropped += static_cast<uint32_t>(pending - slots);
        pending = slots;
    }

    // 4. Zones. add_zone sizes the metadata itself, so it does not fail for a
    //    piece that passed step 2; if it ever did, the piece counts as skipped.
    FrameAddResult result;
    for (size_t i = 0; i < pending; ++i)
        (void)add_zone(m_pending[i], result);
    result.pieces_dropped = dropped;
    result.bytes_skipped = given_bytes - already_managed - result.bytes_managed - result.bytes_metadata;
    m_skipped_bytes += result.bytes_skipped;

    // Keep m_sorted in ascending address order (insertion sort: at most 64 zones).
    for (size_t i = 0; i < m_zone_count; ++i)
        m_sorted[i] = static_cast<uint8_t>(i);
    for (size_t i = 1; i < m_zone_count; ++i) {
        const uint8_t z = m_sorted[i];
        size_t j = i;
        while (j > 0 && m_zones[z].managed.start < m_zones[m_sorted[j - 1]].managed.start) {
            m_sorted[j] = m_sorted[j - 1];
            --j;
        }
        m_sorted[j] = z;
    }
    m_low_zone_count = 0;
    while (m_low_zone_count < m_zone_count && m_zones[m_sorted[m_low_zone_count]].span.end.get() <= kLowMemoryLimit)
        ++m_low_zone_count;
    return result;
}

lib::Expected<FrameAddResult, FrameError> FrameAllocator::init(lib::Span<const PhysRange> usable,
                                                               lib::Span<const PhysRange> reserved)
{
    if (m_offset % kFrameMaxBlock != 0)
        return lib::unexpected(FrameError::InvalidOffset);
    if (reserved.size() > kMaxReserved - m_reserved_count)
        return lib::unexpected(FrameError::TooManyReserved);
    for (const PhysRange& r : reserved) {
        if (r.end < r.start)
            return lib::unexpected(FrameError::InvalidRange);
        for (size_t i = 0; i < m_zone_count; ++i) {
            if (m_zones[i].span.overlaps(r))
                return lib::unexpected(FrameError::AlreadyManaged);
        }
    }
    // Validate the usable list too before reserving anything, so nothing changes on error.
    for (const PhysRange& r : usable) {
        if (r.end < r.start)
            return lib::unexpected(FrameError::InvalidRange);
    }
    const size_t reserved_before = m_reserved_count;
    for (const PhysRange& r : reserved)
        (void)reserve(r); // cannot fail: checked above
    auto result = add_ranges(usable);
    if (!result)
        m_reserved_count = reserved_before; // TooManyRanges: undo the reservations
    return result;
}

// ---------------------------------------------------------------------------
// Allocation and free
// ---------------------------------------------------------------------------

inline bool FrameAllocator::zone_has_block(const BuddyAllocator& buddy, unsigned order) const
{
    for (unsigned k = order; k < kFrameOrders; ++k) {
        if (buddy.free_blocks(k) != 0)
            return true;
    }
    return false;
}

lib::Expected<PhysicalAddress, FrameError> FrameAllocator::allocate(unsigned order, Zero zero, ZoneLimit limit)
{
    if (order >= kFrameOrders) [[unlikely]] {
        ++m_failed_allocations;
        return lib::unexpected(FrameError::InvalidOrder);
    }
    // Highest zones first; the low zones are the tail of the walk.
    size_t i = limit == ZoneLimit::Any ? m_zone_count : m_low_zone_count;
    while (i-- > 0) {
        BuddyAllocator& buddy = m_zones[m_sorted[i]].buddy;
        if (!zone_has_block(buddy, order))
            continue;
        auto block = buddy.allocate_order(order);
        if (!block) [[unlikely]]
            continue;
        const uint64_t size = kFrameSize << order;
        m_bytes_used += size;
        if (m_bytes_used > m_peak_used)
            m_peak_used = m_bytes_used;
        ++m_allocations;
        if (zero == Zero::Yes)
            __builtin_memset(*block, 0, size);
        return to_phys(*block);
    }
    ++m_failed_allocations;
    return lib::unexpected(FrameError::OutOfMemory);
}

int FrameAllocator::find_zone(PhysicalAddress addr) const
{
    // The last zone starting at or below addr, by binary search.
    size_t lo = 0;
    size_t hi = m_zone_count;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (m_zones[m_sorted[mid]].managed.start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    const size_t index = m_sorted[lo - 1];
    return m_zones[index].managed.contains(addr) ? static_cast<int>(index) : -1;
}

lib::Expected<void, FrameError> FrameAllocator::free(PhysicalAddress frame)
{
    const int z = find_zone(frame);
    if (z < 0) [[unlikely]]
        return lib::unexpected(FrameError::ForeignAddress);
    BuddyAllocator& buddy = m_zones[z].buddy;
    const uint64_t used_before = buddy.bytes_used();
    auto status = buddy.free(to_virt(frame));
    if (!status) [[unlikely]]
        return lib::unexpected(from_buddy(status.error()));
    m_bytes_used -= used_before - buddy.bytes_used();
    ++m_frees;
    return {};
}

lib::Expected<void, FrameError> FrameAllocator::free(PhysicalAddress frame, unsigned order)
{
    if (order >= kFrameOrders) [[unlikely]]
        return lib::unexpected(FrameError::InvalidOrder);
    const int z = find_zone(frame);
    if (z < 0) [[unlikely]]
        return lib::unexpected(FrameError::ForeignAddress);
    auto status = m_zones[z].buddy.free_sized(to_virt(frame), kFrameSize << order);
    if (!status) [[unlikely]]
        return lib::unexpected(from_buddy(status.error()));
    m_bytes_used -= kFrameSize << order;
    ++m_frees;
    return {};
}

lib::Expected<unsigned, FrameError> FrameAllocator::order_of(PhysicalAddress frame) const
{
    const int z = find_zone(frame);
    if (z < 0)
        return lib::unexpected(FrameError::ForeignAddress);
    auto order = m_zones[z].buddy.order_of(to_virt(frame));
    if (!order)
        return lib::unexpected(from_buddy(order.error()));
    return *order;
}

// ---------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------

FrameStats FrameAllocator::stats() const
{
    FrameStats s;
    s.bytes_total = m_bytes_total;
    s.bytes_used = m_bytes_used;
    s.bytes_free = m_bytes_total - m_bytes_used;
    s.peak_bytes_used = m_peak_used;
    s.metadata_bytes = m_metadata_bytes;
    s.skipped_bytes = m_skipped_bytes;
    s.zone_count = static_cast<uint32_t>(m_zone_count);
    s.zone_count_below_4gib = static_cast<uint32_t>(m_low_zone_count);
    s.allocations = m_allocations;
    s.frees = m_frees;
    s.failed_allocations = m_failed_allocations;
    for (size_t i = 0; i < m_zone_count; ++i) {
        const BuddyAllocator& buddy = m_zones[m_sorted[i]].buddy;
        for (unsigned k = 0; k < kFrameOrders; ++k)
            s.free_blocks[k] += buddy.free_blocks(k);
        if (i < m_low_zone_count) {
            s.bytes_total_below_4gib += buddy.bytes_total();
            s.bytes_free_below_4gib += buddy.bytes_free();
        }
    }
    for (unsigned k = 0; k < kFrameOrders; ++k)
        s.fragmentation_index[k] = fragmentation_index(s.free_blocks, kFrameOrders, k);
    return s;
}

FrameZoneInfo FrameAllocator::zone(size_t i) const
{
    if (i >= m_zone_count)
        return {};
    const Zone& z = m_zones[m_sorted[i]];
    return FrameZoneInfo{z.managed, PhysRange{z.span.start, z.managed.start}, z.buddy.bytes_free(),
                         z.buddy.bytes_used()};
}

FrameCheckReport FrameAllocator::check_invariants() const
{
    FrameCheckReport report;
    uint64_t total = 0;
    uint64_t used = 0;
    uint64_t metadata = 0;
    for (size_t i = 0; i < m_zone_count; ++i) {
        const Zone& z = m_zones[m_sorted[i]];
        const BuddyCheckReport zr = z.buddy.check_invariants();
        if (!zr.ok()) {
            report.violations += zr.violations;
            if (report.first_bad_zone < 0) {
                report.first_bad_zone = static_cast<int>(i);
                report.zone_report = zr;
            }
        }
        total += z.buddy.bytes_total();
        used += z.buddy.bytes_used();
        metadata += z.managed.start.get() - z.span.start.get();

        bool layout_ok = z.span.start < z.managed.start && z.managed.end == z.span.end &&
            z.span.start.is_aligned(kFrameSize) && z.span.end.is_aligned(kFrameSize) &&
            z.buddy.region_begin() == reinterpret_cast<uintptr_t>(to_virt(z.managed.start)) &&
            z.buddy.region_end() == reinterpret_cast<uintptr_t>(to_virt(z.managed.end));
        if (i + 1 < m_zone_count && !(z.span.end <= m_zones[m_sorted[i + 1]].span.start))
            layout_ok = false;
        const bool low = z.span.end.get() <= kLowMemoryLimit;
        if (low != (i < m_low_zone_count) || (!low && z.span.start.get() < kLowMemoryLimit))
            layout_ok = false;
        for (size_t r = 0; r < m_reserved_count; ++r) {
            if (z.span.overlaps(m_reserved[r]))
                layout_ok = false;
        }
        if (!layout_ok) {
            report.layout_ok = false;
            ++report.violations;
            if (report.first_bad_zone < 0)
                report.first_bad_zone = static_cast<int>(i);
        }
    }
    if (total != m_bytes_total || used != m_bytes_used || metadata != m_metadata_bytes || m_peak_used < m_bytes_used) {
        report.counters_ok = false;
        ++report.violations;
    }
    return report;
}

} // namespace mm
