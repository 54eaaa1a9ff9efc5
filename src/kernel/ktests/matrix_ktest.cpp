// In-kernel tests for the boot matrix (test/cmake/matrix.cmake): whatever the firmware, memory
// size and CPU model, the Mana Pool's totals must follow from the firmware's memory map alone.
//
// matrix.memory_totals_match_the_map recomputes, independently of mm/, what init_frames
// (mm/frames.cpp) must have built from BootInfo: usable RAM, adjacent entries merged and split at
// 4 GiB; above 4 GiB trimmed inwards to the physmap's 2 MiB granule; trimmed inwards to frames;
// minus the reserved ranges widened to frames (the first MiB, the kernel image, boot modules, the
// Multiboot2 info, the framebuffer). Every remaining piece must be exactly one zone (its first
// frames the buddy metadata), or be too small to hold its own metadata; and the allocator's, the
// statistics snapshot's and the map's byte counts must agree to the byte:
//   usable = zone bytes + metadata + reserved/trimmed (skipped) + high RAM left unmapped.
// matrix.frames_come_from_above_4gib checks, when the map has usable RAM above 4 GiB, that frames
// and large heap blocks really come from there.
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/paging.h"
#include "diag/ktest.h"
#include "kernel/boot_info.h"
#include "kernel/stats.h"
#include "lib/log.h"
#include "mm/buddy_allocator.h"
#include "mm/frame_allocator.h"
#include "mm/frames.h"
#include "mm/kmalloc.h"

namespace {

using kernel::BootInfo;

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kFourGiB = 4 * kGiB;

struct Range {
    uint64_t start = 0;
    uint64_t end = 0;
    uint64_t size() const { return end > start ? end - start : 0; }
};

constexpr uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
uint64_t overlap(const Range& a, const Range& b)
{
    const uint64_t s = max_u64(a.start, b.start);
    const uint64_t e = min_u64(a.end, b.end);
    return s < e ? e - s : 0;
}

// What the map says the allocator must hold, recomputed without mm/. Static: several KiB.
struct MapModel {
    static constexpr size_t kMaxRanges = 2 * BootInfo::kMaxMemoryRegions;
    static constexpr size_t kMaxReserved = 4 + BootInfo::kMaxModules;
    static constexpr size_t kMaxPieces = 2 * kMaxRanges + kMaxReserved;

    Range ranges[kMaxRanges]; // usable, merged, split at 4 GiB, high part 2 MiB-trimmed
    size_t range_count = 0;
    Range reserved[kMaxReserved]; // widened to frames
    const char* reserved_what[kMaxReserved] = {};
    size_t reserved_count = 0;
    Range pieces[kMaxPieces]; // what may become zones, ascending
    size_t piece_count = 0;

    uint64_t usable = 0;        // sum of Available entries
    uint64_t high_unmapped = 0; // above 4 GiB, outside the 2 MiB-trimmed part
    uint64_t high_mapped = 0;
    bool overflow = false;

    void add_reserved(uint64_t start, uint64_t end, const char* what)
    {
        if (end <= start)
            return;
        if (reserved_count == kMaxReserved) {
            overflow = true;
            return;
        }
        reserved[reserved_count] = {align_down(start, mm::kFrameSize), align_up(end, mm::kFrameSize)};
        reserved_what[reserved_count++] = what;
    }
    void add_range(Range r)
    {
        if (r.size() == 0)
            return;
        if (range_count == kMaxRanges) {
            overflow = true;
            return;
        }
        ranges[range_count++] = r;
    }
    // r minus every reserved range, in ascending order.
    void subtract_reserved(Range r)
    {
        uint64_t cursor = r.start;
        while (cursor < r.end) {
            const Range* next = nullptr;
            for (size_t i = 0; i < reserved_count; ++i) {
                const Range& b = reserved[i];
                if (b.start < r.end && cursor < b.end && (next == nullptr || b.start < next->start))
                    next = &b;
            }
            const uint64_t piece_end = next == nullptr ? r.end : max_u64(cursor, next->start);
            if (cursor < piece_end) {
                if (piece_count == kMaxPieces)
                    overflow = true;
                else
                    pieces[piece_count++] = {cursor, piece_end};
            }
            if (next == nullptr)
                break;
            cursor = max_u64(cursor, next->end);
        }
    }
};

MapModel g_model;
kernel::stats::Snapshot g_snapshot;

void compute_model(MapModel& x)
{
    x = MapModel{};
    const BootInfo& info = kernel::boot_info();

    // Usable RAM, adjacent entries merged (the parser guarantees a sorted, disjoint map).
    Range merged[BootInfo::kMaxMemoryRegions];
    size_t merged_count = 0;
    for (const kernel::MemoryRegion& r : info.usable_regions()) {
        x.usable += r.length;
        if (merged_count > 0 && merged[merged_count - 1].end == r.base.get())
            merged[merged_count - 1].end = r.end().get();
        else
            merged[merged_count++] = {r.base.get(), r.end().get()};
    }
    // Split at 4 GiB; the part above is mapped into the physmap in 2 MiB units.
    for (size_t i = 0; i < merged_count; ++i) {
        const Range& m = merged[i];
        x.add_range({m.start, min_u64(m.end, kFourGiB)});
        const Range high{max_u64(m.start, kFourGiB), m.end};
        if (high.size() == 0)
            continue;
        const Range mapped{align_up(high.start, arch::kPhysMapGranule),
                           align_down(min_u64(high.end, arch::kPhysMapMaxBytes), arch::kPhysMapGranule)};
        const uint64_t kept = mapped.start < mapped.end ? mapped.size() : 0;
        x.high_unmapped += high.size() - kept;
        x.high_mapped += kept;
        if (kept > 0)
            x.add_range(mapped);
    }

    // The reserved ranges init_frames documents, recomputed from their sources.
    x.add_reserved(0, kMiB, "the first MiB");
    x.add_reserved(reinterpret_cast<uint64_t>(__kernel_phys_start), reinterpret_cast<uint64_t>(__kernel_phys_end),
                   "the kernel image");
    for (const kernel::BootModule& module : info.boot_modules())
        x.add_reserved(module.start.get(), module.end.get(), "a boot module");
    x.add_reserved(info.info_phys_start.get(), info.info_phys_end.get(), "the Multiboot2 information");
    if (info.has_framebuffer)
        x.add_reserved(info.framebuffer.phys_addr.get(),
                       info.framebuffer.phys_addr.get() + info.framebuffer.size_bytes(), "the framebuffer");

    // Each range trimmed inwards to frames, minus the reserved ranges.
    for (size_t i = 0; i < x.range_count; ++i) {
        const Range trimmed{align_up(x.ranges[i].start, mm::kFrameSize), align_down(x.ranges[i].end, mm::kFrameSize)};
        if (trimmed.start < trimmed.end)
            x.subtract_reserved(trimmed);
    }
}

// The buddy metadata the allocator carves from the front of a piece (0: the piece is too small).
uint64_t metadata_for(const Range& piece)
{
    const size_t bytes = mm::BuddyAllocator::metadata_bytes_needed(mm::frame_to_virt(PhysicalAddress(piece.start)),
                                                                   piece.size(), mm::kFrameSize, mm::kFrameMaxBlock);
    const uint64_t meta = align_up(bytes, mm::kFrameSize);
    return meta == 0 || meta >= piece.size() ? 0 : meta;
}

bool map_has_high_ram()
{
    compute_model(g_model);
    return g_model.high_mapped > 0;
}

} // namespace

KTEST(matrix, memory_totals_match_the_map)
{
    KASSERT(mm::frames_ready());
    MapModel& x = g_model;
    compute_model(x);
    KASSERT(!x.overflow);
    KEXPECT_EQ(x.usable, kernel::boot_info().usable_bytes());

    // The allocator reserved exactly the documented ranges.
    const lib::Span<const mm::PhysRange> reserved = mm::frames_reserved_ranges();
    KEXPECT_EQ(reserved.size(), x.reserved_count);
    for (size_t i = 0; i < x.reserved_count; ++i) {
        bool found = false;
        for (const mm::PhysRange& r : reserved)
            found |= r.start.get() == x.reserved[i].start && r.end.get() == x.reserved[i].end;
        if (!found)
            ktest_ctx.failf(__FILE__, __LINE__, "{} [{:#x}, {:#x}) is not among the allocator's reserved ranges",
                            x.reserved_what[i], x.reserved[i].start, x.reserved[i].end);
    }

    // Each piece is exactly one zone (metadata first), unless too small for its own metadata.
    const size_t zones = mm::frames_zone_count();
    if (x.piece_count > mm::FrameAllocator::kMaxZones) {
        // Then the allocator keeps the largest pieces only; this model does not follow that rule.
        ktest_ctx.failf(__FILE__, __LINE__, "{} usable pieces, more than the {} zone slots: not modelled",
                        x.piece_count, mm::FrameAllocator::kMaxZones);
        return;
    }
    size_t z = 0;
    uint64_t expected_managed = 0, expected_metadata = 0, too_small = 0;
    for (size_t i = 0; i < x.piece_count; ++i) {
        const Range& piece = x.pieces[i];
        const uint64_t meta = metadata_for(piece);
        if (meta == 0) {
            too_small += piece.size();
            continue;
        }
        expected_managed += piece.size() - meta;
        expected_metadata += meta;
        if (z >= zones) {
            ktest_ctx.failf(__FILE__, __LINE__, "no zone for usable piece [{:#x}, {:#x})", piece.start, piece.end);
            continue;
        }
        const mm::FrameZoneInfo zone = mm::frames_zone(z++);
        if (zone.metadata.start.get() != piece.start || zone.metadata.end.get() != piece.start + meta ||
            zone.managed.start.get() != piece.start + meta || zone.managed.end.get() != piece.end)
            ktest_ctx.failf(__FILE__, __LINE__,
                            "zone {}: metadata [{:#x}, {:#x}) managed [{:#x}, {:#x}), the map gives [{:#x}, {:#x}) "
                            "with {} KiB metadata",
                            z - 1, zone.metadata.start, zone.metadata.end, zone.managed.start, zone.managed.end,
                            piece.start, piece.end, meta / kKiB);
    }
    KEXPECT_EQ(z, zones);

    // The counts agree to the byte: the allocator, its init report, the statistics snapshot.
    const mm::FrameStats s = mm::frames_stats();
    kernel::stats::take_snapshot(g_snapshot);
    const mm::FramesInitReport& report = mm::frames_init_report();
    uint64_t zone_spans = 0;
    for (size_t i = 0; i < zones; ++i) {
        const mm::FrameZoneInfo zi = mm::frames_zone(i);
        zone_spans += zi.metadata.size() + zi.managed.size();
    }
    KEXPECT_EQ(s.bytes_total, expected_managed);
    KEXPECT_EQ(s.metadata_bytes, expected_metadata);
    KEXPECT_EQ(g_snapshot.memory.frames_total_bytes, expected_managed);
    KEXPECT_EQ(g_snapshot.memory.frames_used_bytes + g_snapshot.memory.frames_free_bytes, expected_managed);
    KEXPECT_EQ(report.high_bytes_unmapped, x.high_unmapped);
    KEXPECT_EQ(report.high_bytes_mapped, x.high_mapped);
    KEXPECT_EQ(x.usable, zone_spans + s.skipped_bytes + report.high_bytes_unmapped);
    KEXPECT_EQ(s.skipped_bytes + report.high_bytes_unmapped, x.usable - expected_managed - expected_metadata);
    uint64_t expected_below = 0;
    for (size_t i = 0; i < zones; ++i) {
        const mm::FrameZoneInfo zi = mm::frames_zone(i);
        if (zi.managed.end.get() <= kFourGiB)
            expected_below += zi.managed.size();
    }
    KEXPECT_EQ(s.bytes_total_below_4gib, expected_below);

    // The breakdown, for the matrix log (reserved bytes counted where they overlap usable RAM).
    lib::log::print(
        "    map: {} KiB usable = {} KiB in {} zones + {} KiB metadata + {} KiB reserved or trimmed + {} KiB "
        "high RAM unmapped; {} MiB of it above 4 GiB\n",
        x.usable / kKiB, expected_managed / kKiB, zones, expected_metadata / kKiB, s.skipped_bytes / kKiB,
        report.high_bytes_unmapped / kKiB, (s.bytes_total - s.bytes_total_below_4gib) / kMiB);
    for (size_t i = 0; i < x.reserved_count; ++i) {
        uint64_t in_ram = 0;
        for (size_t r = 0; r < x.range_count; ++r)
            in_ram += overlap(x.reserved[i], x.ranges[r]);
        lib::log::print("    reserved: {} [{:#x}, {:#x}), {} KiB of it usable RAM\n", x.reserved_what[i],
                        x.reserved[i].start, x.reserved[i].end, in_ram / kKiB);
    }
    if (too_small > 0)
        lib::log::print("    {} KiB in pieces too small for a zone\n", too_small / kKiB);
}

KTEST(matrix, frames_come_from_above_4gib)
{
    const bool high = map_has_high_ram();
    if (!high) {
        const mm::FrameStats s = mm::frames_stats();
        // Nothing above 4 GiB in the map: no zone may be there either.
        KEXPECT_EQ(s.zone_count, s.zone_count_below_4gib);
        KEXPECT_EQ(s.bytes_total, s.bytes_total_below_4gib);
        lib::log::print("    (the map has no usable RAM above 4 GiB: only checked that no zone lies there)\n");
        return;
    }
    (void)mm::heap_shrink(); // cached heap pages would blur the before/after comparison
    const mm::FrameStats before = mm::frames_stats();
    KASSERT(before.zone_count > before.zone_count_below_4gib);
    const uint64_t high_free = before.bytes_free - before.bytes_free_below_4gib;
    KASSERT(high_free >= 64 * kMiB);

    // Frames of every order, while the high zones have room for them all: each one above 4 GiB,
    // writable through the extended physmap at both ends, then freed.
    static PhysicalAddress taken[mm::kFrameOrders * 4];
    static unsigned orders[mm::kFrameOrders * 4];
    size_t n = 0;
    for (unsigned order = 0; order < mm::kFrameOrders; ++order) {
        for (int i = 0; i < 4; ++i) {
            auto frame = mm::frames_allocate(order);
            KASSERT(frame.has_value());
            const uint64_t a = frame->get();
            const uint64_t size = mm::kFrameSize << order;
            if (a < kFourGiB)
                ktest_ctx.failf(__FILE__, __LINE__, "order {} frame {:#x} came from below 4 GiB", order, a);
            KEXPECT(arch::physmap_maps(*frame) && arch::physmap_maps(PhysicalAddress(a + size - 8)));
            auto* first = static_cast<volatile uint64_t*>(mm::frame_to_virt(*frame));
            auto* last = static_cast<volatile uint64_t*>(mm::frame_to_virt(PhysicalAddress(a + size - 8)));
            *first = a ^ 0x4a11e1f0ull;
            *last = ~a;
            KEXPECT(*first == (a ^ 0x4a11e1f0ull) && *last == ~a);
            taken[n] = *frame;
            orders[n++] = order;
        }
    }
    for (size_t i = 0; i < n; ++i)
        mm::frames_free(taken[i], orders[i]);

    // The kernel heap's pages come from the same policy: a large block lives above 4 GiB too.
    void* block = mm::kmalloc(2 * kMiB);
    KASSERT(block != nullptr);
    const uint64_t phys = mm::virt_to_frame(block).get();
    if (phys < kFourGiB)
        ktest_ctx.failf(__FILE__, __LINE__, "a 2 MiB heap block at {:#x}, below 4 GiB", phys);
    static_cast<volatile uint8_t*>(block)[2 * kMiB - 1] = 0x5a;
    mm::kfree(block);

    (void)mm::heap_shrink();
    const mm::FrameStats after = mm::frames_stats();
    KEXPECT_EQ(after.bytes_free, before.bytes_free);
    lib::log::print("    ({} MiB free above 4 GiB; {} blocks of orders 0..{} and a 2 MiB heap block came from there)\n",
                    high_free / kMiB, n, mm::kFrameMaxOrder);
}
