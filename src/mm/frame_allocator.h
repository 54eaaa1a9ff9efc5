#pragma once
// mm::FrameAllocator: the generic core of the Mana Pool's physical frame allocator.
//
// Physical memory arrives as usable ranges (the loader's memory map) minus
// reserved ranges (kernel image, boot modules, Multiboot2 info, low memory...).
// Every piece that is left becomes a *zone*: one mm::BuddyAllocator over 4 KiB
// frames with blocks of order 0..10 (4 KiB .. 4 MiB), whose metadata is carved
// from the zone's own first frames. Like the buddy core this class has no
// globals, no locks and no arch headers: the kernel wrapper (mm/frames.h) adds
// the lock and the panics, and the host tests run this exact code.
//
// ## Addressing
// The allocator reaches memory through a linear phys->virt offset given by the
// caller (virt = phys + offset): the kernel passes the physmap base, host tests
// pass (host_buffer - fake_phys_base). The offset must be a multiple of the
// largest block (4 MiB), so that virtual and physical alignment agree. Memory
// of a zone must be reachable through the offset when the zone is added.
//
// ## Building
//   reserve(range)      remembered; subtracted from every later add_ranges
//   add_ranges(usable)  may be called repeatedly (low memory first, then - once
//                       the kernel has mapped it - high memory)
// Usable bounds are trimmed inwards to 4 KiB, reserved bounds widened outwards.
// Pieces are split at 4 GiB so that every zone lies entirely below or entirely
// above it (the Below4GiB limit then only has to pick zones). Ranges that
// overlap each other, a reserved range or an existing zone are handled: only
// memory not yet managed and not reserved becomes new zones. If the zone table
// (kMaxZones) cannot take every piece, the largest pieces win and the rest is
// reported as skipped; nothing is silently lost.
//
// ## Policy
// allocate() walks the zones from the highest physical address down, so on a
// machine with memory above 4 GiB the frames really come from there and the
// scarce low memory stays for what needs it (ZoneLimit::Below4GiB: page tables
// that must be reachable through the boot physmap, 32-bit DMA).
//
// ## Errors
// Like the buddy core: every error is detected before state changes; a failed
// allocation only bumps the failure counter.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "lib/span.h"
#include "lib/types.h"
#include "mm/buddy_allocator.h"
#include "mm/fragmentation.h" // fragmentation_index over FrameStats::free_blocks

namespace mm {

inline constexpr uint64_t kFrameSize = 4096;
inline constexpr unsigned kFrameOrders = 11; // orders 0..10
inline constexpr unsigned kFrameMaxOrder = kFrameOrders - 1;
inline constexpr uint64_t kFrameMaxBlock = kFrameSize << kFrameMaxOrder; // 4 MiB
inline constexpr uint64_t kLowMemoryLimit = 4ull << 30;                  // zones never straddle this

// A physical range [start, end).
struct PhysRange {
    PhysicalAddress start;
    PhysicalAddress end;

    constexpr uint64_t size() const { return end > start ? end.get() - start.get() : 0; }
    constexpr bool empty() const { return !(start < end); }
    constexpr bool contains(PhysicalAddress addr) const { return addr >= start && addr < end; }
    constexpr bool overlaps(const PhysRange& other) const { return start < other.end && other.start < end; }
    constexpr bool operator==(const PhysRange&) const = default;
};

constexpr PhysRange make_phys_range(uint64_t start, uint64_t end)
{
    return PhysRange{PhysicalAddress(start), PhysicalAddress(end)};
}

enum class FrameError : uint8_t {
    OutOfMemory,       // no zone (within the limit) has a free block of that order
    InvalidOrder,      // order >= kFrameOrders
    DoubleFree,        // frame-aligned address in free memory: freed twice, or never allocated
    ForeignAddress,    // not in any zone (reserved memory, zone metadata, a hole, beyond RAM)
    MisalignedAddress, // inside free memory and not even 4 KiB aligned
    InteriorAddress,   // inside an allocated block, not at its start
    SizeMismatch,      // free(addr, order): the block has another order
    InvalidRange,      // a range with start > end
    TooManyRanges,     // add_ranges: more than kMaxPending disjoint usable ranges in one call
    InvalidOffset,     // the phys->virt offset is not a multiple of kFrameMaxBlock
    TooManyReserved,   // the reserved table is full
    AlreadyManaged,    // reserve(): the range overlaps memory already handed to a zone
};

const char* to_string(FrameError error);

enum class Zero : bool { No, Yes };

enum class ZoneLimit : uint8_t {
    Any,       // highest zones first
    Below4GiB, // only zones below kLowMemoryLimit, highest of those first
};

struct FrameStats {
    uint64_t bytes_total = 0; // managed by zones (excludes metadata)
    uint64_t bytes_free = 0;
    uint64_t bytes_used = 0;
    uint64_t peak_bytes_used = 0;
    uint64_t bytes_total_below_4gib = 0;
    uint64_t bytes_free_below_4gib = 0;
    uint64_t metadata_bytes = 0;             // frames carved from zones for buddy metadata
    uint64_t skipped_bytes = 0;              // usable but unmanaged: reserved, trimmed, too small, no zone slot
    uint64_t free_blocks[kFrameOrders] = {}; // summed over zones, like /proc/buddyinfo
    int32_t fragmentation_index[kFrameOrders] = {};
    uint32_t zone_count = 0;
    uint32_t zone_count_below_4gib = 0;
    uint64_t allocations = 0;
    uint64_t frees = 0;
    uint64_t failed_allocations = 0;

    bool operator==(const FrameStats&) const = default;
};

struct FrameZoneInfo {
    PhysRange managed;  // the buddy's trimmed region
    PhysRange metadata; // the zone's first frames, holding its bitmaps and records
    uint64_t bytes_free = 0;
    uint64_t bytes_used = 0;
};

// What one add_ranges() call did.
struct FrameAddResult {
    uint32_t zones_added = 0;
    uint64_t bytes_managed = 0;  // new allocatable bytes
    uint64_t bytes_metadata = 0; // carved for metadata
    uint64_t bytes_skipped = 0;  // usable bytes given that did not become allocatable or metadata
    uint32_t pieces_dropped = 0; // pieces that found no free zone slot (their bytes are in bytes_skipped)
};

struct FrameCheckReport {
    uint64_t violations = 0;
    int first_bad_zone = -1;      // index in ascending-address order, or -1
    BuddyCheckReport zone_report; // the first failing zone's report
    bool counters_ok = true;      // allocator-level byte counters match the zones
    bool layout_ok = true;        // zones sorted, disjoint, split at 4 GiB, outside reserved ranges and metadata

    bool ok() const { return violations == 0; }
};

class FrameAllocator {
public:
    static constexpr size_t kMaxZones = 64;
    static constexpr size_t kMaxReserved = 64;
    static constexpr size_t kMaxPending = 256; // pieces considered by one add_ranges call

    explicit constexpr FrameAllocator(uint64_t phys_to_virt_offset = 0) : m_offset(phys_to_virt_offset) { }
    FrameAllocator(const FrameAllocator&) = delete;
    FrameAllocator& operator=(const FrameAllocator&) = delete;

    // Excluded from every later add_ranges. Bounds are widened outwards to 4 KiB.
    // Empty ranges are accepted and ignored.
    lib::Expected<void, FrameError> reserve(PhysRange range);
    // New zones from usable memory (see the header comment). Nothing changes on error.
    lib::Expected<FrameAddResult, FrameError> add_ranges(lib::Span<const PhysRange> usable);
    lib::Expected<FrameAddResult, FrameError> add_range(PhysRange usable)
    {
        return add_ranges(lib::Span<const PhysRange>(&usable, 1));
    }
    // reserve() every reserved range, then add_ranges(usable).
    lib::Expected<FrameAddResult, FrameError> init(lib::Span<const PhysRange> usable,
                                                   lib::Span<const PhysRange> reserved);

    // 2^order contiguous frames, naturally aligned to their size, optionally zeroed.
    lib::Expected<PhysicalAddress, FrameError> allocate(unsigned order, Zero zero = Zero::No,
                                                        ZoneLimit limit = ZoneLimit::Any);
    // Free by address (the order comes from the zone's records) or with the
    // order cross-checked.
    lib::Expected<void, FrameError> free(PhysicalAddress frame);
    lib::Expected<void, FrameError> free(PhysicalAddress frame, unsigned order);
    // Order of the allocated block starting at `frame` (same errors as free).
    lib::Expected<unsigned, FrameError> order_of(PhysicalAddress frame) const;

    // True when `addr` lies in some zone's allocatable memory (free or not).
    bool manages(PhysicalAddress addr) const { return find_zone(addr) >= 0; }

    void* to_virt(PhysicalAddress phys) const { return reinterpret_cast<void*>(phys.get() + m_offset); }
    PhysicalAddress to_phys(const void* virt) const
    {
        return PhysicalAddress(reinterpret_cast<uintptr_t>(virt) - m_offset);
    }
    uint64_t phys_to_virt_offset() const { return m_offset; }

    FrameStats stats() const;
    uint64_t bytes_free() const { return m_bytes_total - m_bytes_used; }
    uint64_t bytes_used() const { return m_bytes_used; }
    uint64_t bytes_total() const { return m_bytes_total; }
    size_t zone_count() const { return m_zone_count; }
    // Zone i in ascending address order.
    FrameZoneInfo zone(size_t i) const;
    lib::Span<const PhysRange> reserved_ranges() const
    {
        return lib::Span<const PhysRange>(m_reserved, m_reserved_count);
    }

    FrameCheckReport check_invariants() const;

private:
    friend struct FrameAllocatorTestAccess; // lets unit tests reach internals and corrupt state on purpose

    struct Zone {
        BuddyAllocator buddy;
        PhysRange span;    // metadata + managed
        PhysRange managed; // trimmed buddy region
    };

    static FrameError from_buddy(BuddyError error);
    // Index into m_sorted of the zone whose managed range holds addr, or -1.
    int find_zone(PhysicalAddress addr) const;
    bool zone_has_block(const BuddyAllocator& buddy, unsigned order) const;
    // Pieces of [start, end) not covered by a reserved range or an existing zone,
    // split at kLowMemoryLimit. Calls fn(PhysRange) in ascending order.
    template <typename Fn>
    void for_each_free_piece(PhysRange range, Fn&& fn) const;
    uint64_t metadata_bytes_for(PhysRange piece) const;
    lib::Expected<void, FrameError> add_zone(PhysRange piece, FrameAddResult& result);

    uint64_t m_offset = 0;
    Zone m_zones[kMaxZones];
    uint8_t m_sorted[kMaxZones] = {}; // zone indices by ascending address
    size_t m_zone_count = 0;
    size_t m_low_zone_count = 0; // m_sorted[0 .. m_low_zone_count) lie below 4 GiB
    PhysRange m_reserved[kMaxReserved] = {};
    size_t m_reserved_count = 0;
    // add_ranges scratch, kept here rather than on a boot stack (8 KiB together).
    PhysRange m_union[kMaxPending] = {};   // the call's usable ranges, merged and sorted
    PhysRange m_pending[kMaxPending] = {}; // the pieces that may become zones

    uint64_t m_bytes_total = 0;
    uint64_t m_bytes_used = 0;
    uint64_t m_peak_used = 0;
    uint64_t m_metadata_bytes = 0;
    uint64_t m_skipped_bytes = 0;
    uint64_t m_allocations = 0;
    uint64_t m_frees = 0;
    uint64_t m_failed_allocations = 0;
};

} // namespace mm
