// Host tests for mm::FrameAllocator, the generic core of the Mana Pool's frame allocator.
//
// Fake physical memory: one anonymous MAP_NORESERVE mapping, 4 MiB aligned, stands for
// physical 0..limit, and the allocator's phys->virt offset is its address. Only pages the
// allocator (or a test) touches become real, so a 6 or 16 GiB memory map with a few free-list
// heads and some metadata costs a few MiB of host memory.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "mm/frame_allocator.h"

using mm::FrameAddResult;
using mm::FrameAllocator;
using mm::FrameError;
using mm::FrameStats;
using mm::PhysRange;
using mm::Zero;
using mm::ZoneLimit;

namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t kFrame = mm::kFrameSize;

PhysRange R(uint64_t start, uint64_t end) { return mm::make_phys_range(start, end); }
PhysicalAddress P(uint64_t a) { return PhysicalAddress(a); }

// Physical 0..limit backed lazily by host memory.
class FakePhysMemory {
public:
    explicit FakePhysMemory(uint64_t phys_limit) : m_bytes(phys_limit + mm::kFrameMaxBlock)
    {
        void* raw = mmap(nullptr, m_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        REQUIRE(raw != MAP_FAILED);
        m_raw = raw;
        m_base = (reinterpret_cast<uintptr_t>(raw) + mm::kFrameMaxBlock - 1) & ~(mm::kFrameMaxBlock - 1);
    }
    ~FakePhysMemory() { munmap(m_raw, m_bytes); }
    FakePhysMemory(const FakePhysMemory&) = delete;
    FakePhysMemory& operator=(const FakePhysMemory&) = delete;

    uint64_t offset() const { return m_base; } // fake physical base is 0
    unsigned char* at(uint64_t phys) const { return reinterpret_cast<unsigned char*>(m_base + phys); }

private:
    size_t m_bytes;
    void* m_raw = nullptr;
    uintptr_t m_base = 0;
};

struct Layout {
    std::vector<PhysRange> usable;
    std::vector<PhysRange> reserved;
    uint64_t limit = 0; // highest physical address the fake memory must cover

    bool in_usable(uint64_t start, uint64_t end) const
    {
        return std::any_of(usable.begin(), usable.end(),
                           [&](const PhysRange& r) { return r.start.get() <= start && end <= r.end.get(); });
    }
    bool hits_reserved(uint64_t start, uint64_t end) const
    {
        return std::any_of(reserved.begin(), reserved.end(),
                           [&](const PhysRange& r) { return r.start.get() < end && start < r.end.get(); });
    }
};

// QEMU pc with -m 32M under SeaBIOS: 639 KiB low, the hole, RAM to 32 MiB - 128 KiB.
// Reserved like the kernel does: first MiB, image, an unaligned info blob, a module.
Layout qemu_32m()
{
    Layout l;
    l.usable = {R(0, 0x9fc00), R(0x100000, 0x1fe0000)};
    l.reserved = {R(0, 1 * MiB), R(0x100000, 0x350000), R(0x352010, 0x353400), R(0x400000, 0x480123)};
    l.limit = 32 * MiB;
    return l;
}

// 512 MiB, several usable entries including adjacent ones that should merge.
Layout qemu_512m()
{
    Layout l;
    l.usable = {R(0, 0x9fc00), R(0x100000, 0x8000000), R(0x8000000, 0x1ffe0000)};
    l.reserved = {R(0, 1 * MiB), R(0x100000, 0x300000)};
    l.limit = 512 * MiB;
    return l;
}

// QEMU q35 with -m 6G: 2 GiB below the PCI hole, 4 GiB from 4 GiB.
Layout qemu_6g()
{
    Layout l;
    l.usable = {R(0, 0x9fc00), R(0x100000, 0x7ffdf000), R(4 * GiB, 8 * GiB)};
    l.reserved = {R(0, 1 * MiB), R(0x100000, 0x380000)};
    l.limit = 8 * GiB;
    return l;
}

// Small but with a real range above 4 GiB: what the model tests churn through.
Layout sparse_high()
{
    Layout l;
    l.usable = {R(1 * MiB, 30 * MiB), R(4 * GiB, 4 * GiB + 32 * MiB)};
    l.reserved = {R(1 * MiB, 3 * MiB + 0x123), R(7 * MiB, 7 * MiB + 64 * KiB)};
    l.limit = 4 * GiB + 32 * MiB;
    return l;
}

struct Fixture {
    explicit Fixture(const Layout& layout) : layout(layout), mem(layout.limit), fa(new FrameAllocator(mem.offset()))
    {
        auto r = fa->init(lib::Span<const PhysRange>(this->layout.usable.data(), this->layout.usable.size()),
                          lib::Span<const PhysRange>(this->layout.reserved.data(), this->layout.reserved.size()));
        REQUIRE(r.has_value());
        result = *r;
        REQUIRE(fa->check_invariants().ok());
    }
    Layout layout;
    FakePhysMemory mem;
    std::unique_ptr<FrameAllocator> fa;
    FrameAddResult result;
};

lib::Span<const PhysRange> span_of(const std::vector<PhysRange>& v) { return {v.data(), v.size()}; }

// Per-order free counts: the buddyinfo the allocator must return to.
std::vector<uint64_t> buddyinfo(const FrameAllocator& fa)
{
    const FrameStats s = fa.stats();
    return std::vector<uint64_t>(s.free_blocks, s.free_blocks + mm::kFrameOrders);
}

uint64_t expected_metadata(const FrameAllocator& fa, PhysRange piece)
{
    const size_t bytes =
        mm::BuddyAllocator::metadata_bytes_needed(fa.to_virt(piece.start), piece.size(), kFrame, mm::kFrameMaxBlock);
    return (bytes + kFrame - 1) / kFrame * kFrame;
}

// Zone spans (metadata + managed) in address order.
std::vector<PhysRange> zone_spans(const FrameAllocator& fa)
{
    std::vector<PhysRange> spans;
    for (size_t i = 0; i < fa.zone_count(); ++i) {
        const auto z = fa.zone(i);
        CHECK(z.metadata.end == z.managed.start);
        spans.push_back(PhysRange{z.metadata.start, z.managed.end});
    }
    return spans;
}

} // namespace

TEST_CASE("frame: every error has a distinct name", "[frame]")
{
    std::vector<std::string> names;
    for (int e = 0; e <= static_cast<int>(FrameError::AlreadyManaged); ++e)
        names.emplace_back(mm::to_string(static_cast<FrameError>(e)));
    std::sort(names.begin(), names.end());
    CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
    CHECK(std::string(mm::to_string(static_cast<FrameError>(200))) == "unknown frame error");
}

TEST_CASE("frame: an empty allocator manages nothing", "[frame]")
{
    FrameAllocator fa(0);
    CHECK(fa.zone_count() == 0);
    CHECK(fa.allocate(0).error() == FrameError::OutOfMemory);
    CHECK(fa.allocate(0, Zero::No, ZoneLimit::Below4GiB).error() == FrameError::OutOfMemory);
    CHECK(fa.free(P(0x100000)).error() == FrameError::ForeignAddress);
    CHECK(fa.free(P(0x100000), 0).error() == FrameError::ForeignAddress);
    CHECK(fa.order_of(P(0)).error() == FrameError::ForeignAddress);
    CHECK_FALSE(fa.manages(P(0)));
    CHECK(fa.zone(0).managed.empty());
    const FrameStats s = fa.stats();
    CHECK(s.bytes_total == 0);
    CHECK(s.failed_allocations == 2);
    CHECK(s.fragmentation_index[0] == 0);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: QEMU-like 32 MiB map with the 640K hole", "[frame]")
{
    Fixture f(qemu_32m());
    FrameAllocator& fa = *f.fa;

    // First MiB, image, blob and module cut the RAM above 1 MiB into three pieces, widened
    // outwards to frames; the low 639 KiB are all reserved.
    const std::vector<PhysRange> expected = {R(0x350000, 0x352000), R(0x354000, 0x400000), R(0x481000, 0x1fe0000)};
    CHECK(zone_spans(fa) == expected);
    uint64_t managed = 0;
    uint64_t metadata = 0;
    for (const PhysRange& piece : expected) {
        metadata += expected_metadata(fa, piece);
        managed += piece.size() - expected_metadata(fa, piece);
    }
    const FrameStats s = fa.stats();
    CHECK(s.zone_count == 3);
    CHECK(s.zone_count_below_4gib == 3);
    CHECK(s.bytes_total == managed);
    CHECK(s.bytes_free == managed);
    CHECK(s.bytes_total_below_4gib == managed);
    CHECK(s.metadata_bytes == metadata);
    // One frame each for the two small pieces; the big one's 28 MiB arena (7 Ki frames) costs
    // 7 KiB of records + ~1.8 KiB of bitmaps: 3 frames.
    CHECK(metadata == 5 * kFrame);
    const uint64_t given = 0x9fc00 + (0x1fe0000 - 0x100000);
    CHECK(s.skipped_bytes == given - managed - metadata);
    CHECK(f.result.zones_added == 3);
    CHECK(f.result.bytes_skipped == s.skipped_bytes);
    CHECK(f.result.pieces_dropped == 0);
    CHECK(fa.reserved_ranges().size() == 4);
    CHECK(fa.reserved_ranges()[2] == R(0x352000, 0x354000));

    // Every frame can be had exactly once; each lies in usable RAM, outside the reserved ranges.
    const auto initial = buddyinfo(fa);
    std::vector<uint64_t> frames;
    for (;;) {
        auto frame = fa.allocate(0);
        if (!frame) {
            CHECK(frame.error() == FrameError::OutOfMemory);
            break;
        }
        const uint64_t a = frame->get();
        CHECK(a % kFrame == 0);
        CHECK(f.layout.in_usable(a, a + kFrame));
        CHECK_FALSE(f.layout.hits_reserved(a, a + kFrame));
        frames.push_back(a);
    }
    CHECK(frames.size() * kFrame == managed);
    std::sort(frames.begin(), frames.end());
    CHECK(std::adjacent_find(frames.begin(), frames.end()) == frames.end());
    CHECK(fa.stats().bytes_free == 0);
    CHECK(fa.check_invariants().ok());
    for (uint64_t a : frames)
        REQUIRE(fa.free(P(a)).has_value());
    CHECK(buddyinfo(fa) == initial);
    CHECK(fa.stats().bytes_used == 0);
    CHECK(fa.stats().peak_bytes_used == managed);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: 512 MiB map merges adjacent entries into one zone", "[frame]")
{
    Fixture f(qemu_512m());
    FrameAllocator& fa = *f.fa;
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(0x300000, 0x1ffe0000)});
    const FrameStats s = fa.stats();
    // ~509 MiB: 131 Ki frames cost 128 KiB of records + 32 KiB of bitmaps.
    CHECK(s.metadata_bytes == expected_metadata(fa, R(0x300000, 0x1ffe0000)));
    CHECK(s.metadata_bytes < 200 * KiB);
    // Greedy cut: the zone starts at 0x300000 + metadata; most of it is 4 MiB roots.
    CHECK(s.free_blocks[10] >= 120);
    // An order-10 (4 MiB) and an order-9 (2 MiB) block, naturally aligned.
    auto big = fa.allocate(10);
    REQUIRE(big.has_value());
    CHECK(big->is_aligned(4 * MiB));
    auto huge_page = fa.allocate(9);
    REQUIRE(huge_page.has_value());
    CHECK(huge_page->is_aligned(2 * MiB));
    CHECK(fa.order_of(*big).value() == 10);
    CHECK(fa.free(*big, 10).has_value());
    CHECK(fa.free(*huge_page).has_value());
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: 6 GiB map, zones split at 4 GiB, high memory preferred", "[frame]")
{
    Fixture f(qemu_6g());
    FrameAllocator& fa = *f.fa;
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(0x380000, 0x7ffdf000), R(4 * GiB, 8 * GiB)});
    const FrameStats s = fa.stats();
    CHECK(s.zone_count == 2);
    CHECK(s.zone_count_below_4gib == 1);
    CHECK(s.bytes_total_below_4gib == 0x7ffdf000 - 0x380000 - expected_metadata(fa, R(0x380000, 0x7ffdf000)));
    // The whole 4 GiB high zone, less its metadata (1 Mi frames: 1 MiB records + 256 KiB bitmaps).
    CHECK(s.bytes_total - s.bytes_total_below_4gib == 4 * GiB - expected_metadata(fa, R(4 * GiB, 8 * GiB)));
    CHECK(expected_metadata(fa, R(4 * GiB, 8 * GiB)) == 1 * MiB + 256 * KiB);

    // Highest zone first: 4 KiB and 2 MiB frames come from above 4 GiB.
    std::vector<PhysicalAddress> taken;
    for (unsigned i = 0; i < 64; ++i) {
        auto frame = fa.allocate(i % 2 == 0 ? 0 : 9);
        REQUIRE(frame.has_value());
        CHECK(frame->get() >= 4 * GiB);
        taken.push_back(*frame);
    }
    // Unless the caller needs memory below 4 GiB.
    auto low = fa.allocate(0, Zero::Yes, ZoneLimit::Below4GiB);
    REQUIRE(low.has_value());
    CHECK(low->get() < 4 * GiB);
    CHECK(low->get() >= 0x380000);
    taken.push_back(*low);
    for (PhysicalAddress a : taken)
        CHECK(fa.free(a).has_value());
    CHECK(fa.stats().bytes_used == 0);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: 16 GiB map with three high ranges", "[frame]")
{
    Layout l;
    l.usable = {R(0, 0x9fc00), R(0x100000, 0xbfee0000), R(4 * GiB, 12 * GiB), R(12 * GiB, 16 * GiB + 512 * MiB),
                R(16 * GiB + 768 * MiB, 17 * GiB)};
    l.reserved = {R(0, 1 * MiB), R(0x100000, 0x400000)};
    l.limit = 17 * GiB;
    const auto t0 = std::chrono::steady_clock::now();
    Fixture f(l);
    const auto t1 = std::chrono::steady_clock::now();
    FrameAllocator& fa = *f.fa;
    CHECK(zone_spans(fa) ==
          std::vector<PhysRange>{R(0x400000, 0xbfee0000), R(4 * GiB, 16 * GiB + 512 * MiB),
                                 R(16 * GiB + 768 * MiB, 17 * GiB)});
    const FrameStats s = fa.stats();
    const uint64_t ram = l.usable[1].size() + 12 * GiB + 512 * MiB + 256 * MiB;
    // Metadata is 1 byte of records + 2 bits of bitmaps per 4 KiB frame: ~0.03% of RAM.
    CHECK(s.metadata_bytes * 3000 < ram);
    CHECK(s.bytes_total + s.metadata_bytes == ram - 3 * MiB);
    // The highest zone is used first, then the next one down. The top zone (256 MiB) lost
    // 80 KiB of its first 4 MiB block to metadata, so it has 63 whole 4 MiB blocks.
    for (unsigned i = 0; i < 63; ++i) {
        auto frame = fa.allocate(10);
        REQUIRE(frame.has_value());
        CHECK(frame->get() >= 16 * GiB + 768 * MiB);
    }
    auto next = fa.allocate(10);
    REQUIRE(next.has_value());
    CHECK(next->get() >= 4 * GiB);
    CHECK(next->get() < 16 * GiB + 512 * MiB);
    CHECK(fa.check_invariants().ok());
    if (std::getenv("AETHELOS_FRAME_REPORT") != nullptr) {
        const double us = std::chrono::duration<double, std::micro>(t1 - t0).count();
        std::printf("16 GiB map: %u zones, metadata %llu KiB (%.0f ppm of RAM), init %.0f us on the host\n",
                    s.zone_count, static_cast<unsigned long long>(s.metadata_bytes / KiB),
                    static_cast<double>(s.metadata_bytes) * 1e6 / static_cast<double>(ram), us);
    }
}

TEST_CASE("frame: unaligned bounds are trimmed inwards, reserved bounds widened outwards", "[frame]")
{
    FakePhysMemory mem(160 * MiB);
    FrameAllocator fa(mem.offset());
    REQUIRE(fa.reserve(R(0x800001, 0x800002)).has_value()); // one byte reserves its whole frame
    const std::vector<PhysRange> usable = {R(0x100123, 0x7ff0fff), R(0x9000001, 0x9000fff)};
    auto r = fa.add_ranges(span_of(usable));
    REQUIRE(r.has_value());
    // The second range holds no whole frame.
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(0x101000, 0x800000), R(0x801000, 0x7ff0000)});
    CHECK(r->zones_added == 2);
    CHECK(r->bytes_skipped == (0x7ff0fff - 0x100123) + 0xffe - r->bytes_managed - r->bytes_metadata);
    // Frames never cross the trimmed bounds.
    for (;;) {
        auto frame = fa.allocate(0);
        if (!frame)
            break;
        CHECK(frame->get() >= 0x101000);
        CHECK(frame->get() + kFrame <= 0x7ff0000);
        CHECK(frame->get() != 0x800000);
    }
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: reserved ranges overlapping usable ranges and each other", "[frame]")
{
    FakePhysMemory mem(64 * MiB);
    FrameAllocator fa(mem.offset());
    const std::vector<PhysRange> reserved = {
        R(0, 2 * MiB), // covers the start of the usable range and beyond
        R(4 * MiB, 6 * MiB),
        R(5 * MiB, 7 * MiB),           // overlapping each other
        R(6 * MiB, 6 * MiB + 4 * KiB), // inside the previous two
        R(10 * MiB, 10 * MiB),         // empty: ignored
        R(20 * MiB, 30 * MiB),         // swallows the second usable range whole
        R(40 * MiB, 80 * MiB),         // runs past the end of RAM
    };
    const std::vector<PhysRange> usable = {R(1 * MiB, 16 * MiB), R(22 * MiB, 28 * MiB), R(32 * MiB, 48 * MiB)};
    auto r = fa.init(span_of(usable), span_of(reserved));
    REQUIRE(r.has_value());
    CHECK(fa.reserved_ranges().size() == 6);
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(2 * MiB, 4 * MiB), R(7 * MiB, 16 * MiB), R(32 * MiB, 40 * MiB)});
    CHECK(r->bytes_skipped == 15 * MiB + 6 * MiB + 16 * MiB - r->bytes_managed - r->bytes_metadata);
    // Nothing ever comes from a reserved range.
    Layout l{usable, reserved, 64 * MiB};
    std::vector<PhysicalAddress> taken;
    for (;;) {
        auto frame = fa.allocate(0);
        if (!frame)
            break;
        CHECK_FALSE(l.hits_reserved(frame->get(), frame->get() + kFrame));
        taken.push_back(*frame);
    }
    CHECK(taken.size() * kFrame == fa.stats().bytes_total);
    for (PhysicalAddress a : taken)
        CHECK(fa.free(a, 0).has_value());
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: overlapping and repeated usable ranges are managed once", "[frame]")
{
    FakePhysMemory mem(64 * MiB);
    FrameAllocator fa(mem.offset());
    const std::vector<PhysRange> usable = {R(8 * MiB, 16 * MiB), R(2 * MiB, 10 * MiB), R(16 * MiB, 20 * MiB),
                                           R(30 * MiB, 31 * MiB), R(3 * MiB, 4 * MiB)};
    auto r = fa.add_ranges(span_of(usable));
    REQUIRE(r.has_value());
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(2 * MiB, 20 * MiB), R(30 * MiB, 31 * MiB)});
    CHECK(r->bytes_skipped == 0);

    // Adding the same memory again adds nothing, and is not "skipped": it is managed.
    auto again = fa.add_range(R(2 * MiB, 20 * MiB));
    REQUIRE(again.has_value());
    CHECK(again->zones_added == 0);
    CHECK(again->bytes_managed == 0);
    CHECK(again->bytes_skipped == 0);

    // A range straddling existing zones only adds the new parts.
    auto wider = fa.add_range(R(1 * MiB, 32 * MiB));
    REQUIRE(wider.has_value());
    CHECK(wider->zones_added == 3);
    CHECK(zone_spans(fa) ==
          std::vector<PhysRange>{R(1 * MiB, 2 * MiB), R(2 * MiB, 20 * MiB), R(20 * MiB, 30 * MiB),
                                 R(30 * MiB, 31 * MiB), R(31 * MiB, 32 * MiB)});
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: incremental growth - low zones, then high zones", "[frame]")
{
    // The kernel's order: add memory below 4 GiB, take page-table frames from it to map
    // high memory, then add the high zones.
    FakePhysMemory mem(4 * GiB + 32 * MiB);
    FrameAllocator fa(mem.offset());
    REQUIRE(fa.reserve(R(1 * MiB, 3 * MiB)).has_value());
    REQUIRE(fa.add_range(R(1 * MiB, 30 * MiB)).has_value());
    CHECK(fa.zone_count() == 1);
    std::vector<PhysicalAddress> tables;
    for (int i = 0; i < 4; ++i) {
        auto t = fa.allocate(0, Zero::Yes, ZoneLimit::Below4GiB);
        REQUIRE(t.has_value());
        tables.push_back(*t);
    }
    const uint64_t low_free = fa.bytes_free();
    auto high = fa.add_range(R(4 * GiB, 4 * GiB + 32 * MiB));
    REQUIRE(high.has_value());
    CHECK(high->zones_added == 1);
    CHECK(fa.zone_count() == 2);
    CHECK(fa.stats().zone_count_below_4gib == 1);
    CHECK(fa.stats().bytes_free_below_4gib == low_free);
    auto frame = fa.allocate(0);
    REQUIRE(frame.has_value());
    CHECK(frame->get() >= 4 * GiB);
    CHECK(fa.free(*frame).has_value());
    // Reserving memory a zone already manages is refused; elsewhere it is still fine.
    CHECK(fa.reserve(R(4 * GiB + 8 * MiB, 4 * GiB + 9 * MiB)).error() == FrameError::AlreadyManaged);
    CHECK(fa.reserve(R(2 * MiB, 4 * MiB)).error() == FrameError::AlreadyManaged); // partly in a zone
    CHECK(fa.reserve(R(40 * MiB, 41 * MiB)).has_value());
    for (PhysicalAddress t : tables)
        CHECK(fa.free(t).has_value());
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: a range across 4 GiB becomes two zones", "[frame]")
{
    FakePhysMemory mem(5 * GiB);
    FrameAllocator fa(mem.offset());
    REQUIRE(fa.add_range(R(4 * GiB - 16 * MiB, 4 * GiB + 16 * MiB)).has_value());
    CHECK(zone_spans(fa) == std::vector<PhysRange>{R(4 * GiB - 16 * MiB, 4 * GiB), R(4 * GiB, 4 * GiB + 16 * MiB)});
    CHECK(fa.stats().zone_count_below_4gib == 1);
    // Below4GiB stays below even when the only free memory is above.
    std::vector<PhysicalAddress> low;
    for (;;) {
        auto f = fa.allocate(0, Zero::No, ZoneLimit::Below4GiB);
        if (!f) {
            CHECK(f.error() == FrameError::OutOfMemory);
            break;
        }
        CHECK(f->get() + kFrame <= 4 * GiB);
        low.push_back(*f);
    }
    CHECK(fa.stats().bytes_free_below_4gib == 0);
    CHECK(fa.stats().bytes_free > 0);
    auto any = fa.allocate(0);
    REQUIRE(any.has_value());
    CHECK(any->get() >= 4 * GiB);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: highest zone first, then down, precisely", "[frame]")
{
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    const FrameStats s = fa.stats();
    const uint64_t high_frames = (s.bytes_total - s.bytes_total_below_4gib) / kFrame;
    uint64_t n = 0;
    for (;; ++n) {
        auto frame = fa.allocate(0);
        REQUIRE(frame.has_value());
        if (frame->get() < 4 * GiB) {
            // The first low frame is from the highest low zone.
            CHECK(frame->get() >= 7 * MiB + 64 * KiB);
            break;
        }
    }
    CHECK(n == high_frames);
}

TEST_CASE("frame: every order is naturally aligned and zeroed on request", "[frame]")
{
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    const auto initial = buddyinfo(fa);
    // Dirty all free memory, then ask for zeroed blocks of each order.
    std::vector<PhysicalAddress> all;
    for (;;) {
        auto frame = fa.allocate(0);
        if (!frame)
            break;
        std::memset(fa.to_virt(*frame), 0xab, kFrame);
        all.push_back(*frame);
    }
    for (PhysicalAddress a : all)
        REQUIRE(fa.free(a).has_value());
    CHECK(buddyinfo(fa) == initial);
    std::vector<std::pair<PhysicalAddress, unsigned>> blocks;
    for (unsigned order = 0; order < mm::kFrameOrders; ++order) {
        for (auto limit : {ZoneLimit::Any, ZoneLimit::Below4GiB}) {
            auto block = fa.allocate(order, Zero::Yes, limit);
            REQUIRE(block.has_value());
            const uint64_t size = kFrame << order;
            CHECK(block->is_aligned(size));
            CHECK((reinterpret_cast<uintptr_t>(fa.to_virt(*block)) & (size - 1)) == 0);
            CHECK(fa.to_phys(fa.to_virt(*block)) == *block);
            const auto* bytes = static_cast<const unsigned char*>(fa.to_virt(*block));
            CHECK(std::all_of(bytes, bytes + size, [](unsigned char b) { return b == 0; }));
            CHECK(fa.order_of(*block).value() == order);
            blocks.emplace_back(*block, order);
        }
    }
    // Without Zero::Yes the old contents stay (nothing is zeroed needlessly).
    auto dirty = fa.allocate(0);
    REQUIRE(dirty.has_value());
    CHECK(static_cast<unsigned char*>(fa.to_virt(*dirty))[100] == 0xab); // (bytes 0..15 held free-list links)
    CHECK(fa.free(*dirty).has_value());
    for (auto [a, order] : blocks)
        CHECK(fa.free(a, order).has_value());
    CHECK(buddyinfo(fa) == initial);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: invalid requests and frees are reported and change nothing", "[frame]")
{
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    auto block = fa.allocate(2); // 16 KiB
    REQUIRE(block.has_value());
    auto single = fa.allocate(0);
    REQUIRE(single.has_value());
    const FrameStats before = fa.stats();
    const uint64_t a = block->get();

    CHECK(fa.allocate(mm::kFrameOrders).error() == FrameError::InvalidOrder);
    CHECK(fa.allocate(1000, Zero::Yes).error() == FrameError::InvalidOrder);
    CHECK(fa.stats().failed_allocations == before.failed_allocations + 2);

    CHECK(fa.free(P(a + kFrame)).error() == FrameError::InteriorAddress);
    CHECK(fa.free(P(a + 3 * kFrame + 8)).error() == FrameError::InteriorAddress);
    CHECK(fa.free(P(a), 0).error() == FrameError::SizeMismatch);
    CHECK(fa.free(P(a), 3).error() == FrameError::SizeMismatch);
    CHECK(fa.free(P(a), mm::kFrameOrders).error() == FrameError::InvalidOrder);
    CHECK(fa.order_of(P(a + kFrame)).error() == FrameError::InteriorAddress);

    // Free memory: a frame never handed out, and an unaligned address inside one.
    const uint64_t free_frame = a + 4 * kFrame == single->get() ? a + 5 * kFrame : a + 4 * kFrame;
    REQUIRE(fa.manages(P(free_frame)));
    CHECK(fa.free(P(free_frame)).error() == FrameError::DoubleFree);
    CHECK(fa.free(P(free_frame + 0x10)).error() == FrameError::MisalignedAddress);
    CHECK(fa.free(P(free_frame), 0).error() == FrameError::DoubleFree);
    CHECK(fa.order_of(P(free_frame)).error() == FrameError::DoubleFree);

    // Not managed at all: reserved memory, a zone's metadata, a hole, beyond RAM, address 0.
    const auto zone0 = fa.zone(0);
    for (uint64_t foreign : {uint64_t{0}, 1 * MiB, 2 * MiB, 7 * MiB, zone0.metadata.start.get(), 31 * MiB, 2 * GiB,
                             4 * GiB + 64 * MiB, ~uint64_t{0} & ~(kFrame - 1)}) {
        INFO("address " << std::hex << foreign);
        CHECK_FALSE(fa.manages(P(foreign)));
        CHECK(fa.free(P(foreign)).error() == FrameError::ForeignAddress);
        CHECK(fa.free(P(foreign), 0).error() == FrameError::ForeignAddress);
        CHECK(fa.order_of(P(foreign)).error() == FrameError::ForeignAddress);
    }

    FrameStats after = fa.stats();
    after.failed_allocations = before.failed_allocations;
    CHECK(after == before);
    CHECK(fa.check_invariants().ok());

    // Double free of a real block after a good free.
    CHECK(fa.free(*block, 2).has_value());
    CHECK(fa.free(*block, 2).error() == FrameError::DoubleFree);
    CHECK(fa.free(*block).error() == FrameError::DoubleFree);
    CHECK(fa.free(*single).has_value());
    CHECK(fa.free(*single).error() == FrameError::DoubleFree);
    CHECK(fa.stats().bytes_used == 0);
    CHECK(fa.stats().frees == 2);
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: building errors change nothing", "[frame]")
{
    FakePhysMemory mem(64 * MiB);

    SECTION("offset not aligned to the largest block")
    {
        FrameAllocator fa(mem.offset() + 2 * MiB);
        CHECK(fa.add_range(R(1 * MiB, 8 * MiB)).error() == FrameError::InvalidOffset);
        const std::vector<PhysRange> none;
        CHECK(fa.init(span_of(none), span_of(none)).error() == FrameError::InvalidOffset);
        CHECK(fa.zone_count() == 0);
    }
    SECTION("ranges ending before they start")
    {
        FrameAllocator fa(mem.offset());
        CHECK(fa.reserve(R(8 * MiB, 4 * MiB)).error() == FrameError::InvalidRange);
        const std::vector<PhysRange> bad = {R(1 * MiB, 8 * MiB), R(12 * MiB, 10 * MiB)};
        CHECK(fa.add_ranges(span_of(bad)).error() == FrameError::InvalidRange);
        const std::vector<PhysRange> good = {R(1 * MiB, 8 * MiB)};
        CHECK(fa.init(span_of(bad), span_of(good)).error() == FrameError::InvalidRange);
        CHECK(fa.init(span_of(good), span_of(bad)).error() == FrameError::InvalidRange);
        CHECK(fa.zone_count() == 0);
        CHECK(fa.reserved_ranges().empty());
        CHECK(fa.reserve(R(8 * MiB, 8 * MiB)).has_value()); // empty: accepted, ignored
        CHECK(fa.reserved_ranges().empty());
    }
    SECTION("reserved table full")
    {
        FrameAllocator fa(mem.offset());
        for (size_t i = 0; i < FrameAllocator::kMaxReserved; ++i)
            REQUIRE(fa.reserve(R(i * 64 * KiB, i * 64 * KiB + 4 * KiB)).has_value());
        CHECK(fa.reserve(R(60 * MiB, 61 * MiB)).error() == FrameError::TooManyReserved);
        FrameAllocator fb(mem.offset());
        const std::vector<PhysRange> usable = {R(1 * MiB, 8 * MiB)};
        std::vector<PhysRange> many(FrameAllocator::kMaxReserved + 1, R(0, kFrame));
        CHECK(fb.init(span_of(usable), span_of(many)).error() == FrameError::TooManyReserved);
        CHECK(fb.reserved_ranges().empty());
        CHECK(fb.zone_count() == 0);
    }
    SECTION("init refuses reserving inside existing zones")
    {
        FrameAllocator fa(mem.offset());
        REQUIRE(fa.add_range(R(1 * MiB, 8 * MiB)).has_value());
        const std::vector<PhysRange> usable = {R(16 * MiB, 20 * MiB)};
        const std::vector<PhysRange> reserved = {R(30 * MiB, 31 * MiB), R(2 * MiB, 3 * MiB)};
        CHECK(fa.init(span_of(usable), span_of(reserved)).error() == FrameError::AlreadyManaged);
        CHECK(fa.zone_count() == 1);
        CHECK(fa.reserved_ranges().empty());
    }
    SECTION("too many disjoint ranges in one call")
    {
        FrameAllocator fa(mem.offset());
        std::vector<PhysRange> usable;
        for (uint64_t i = 0; i <= FrameAllocator::kMaxPending; ++i)
            usable.push_back(R(i * 128 * KiB, i * 128 * KiB + 64 * KiB));
        CHECK(fa.add_ranges(span_of(usable)).error() == FrameError::TooManyRanges);
        const std::vector<PhysRange> reserved = {R(60 * MiB, 61 * MiB)};
        CHECK(fa.init(span_of(usable), span_of(reserved)).error() == FrameError::TooManyRanges);
        CHECK(fa.reserved_ranges().empty());
        CHECK(fa.zone_count() == 0);
        usable.pop_back(); // exactly kMaxPending is fine
        auto r = fa.add_ranges(span_of(usable));
        REQUIRE(r.has_value());
        CHECK(r->zones_added == FrameAllocator::kMaxZones);
        CHECK(r->pieces_dropped == FrameAllocator::kMaxPending - FrameAllocator::kMaxZones);
    }
}

TEST_CASE("frame: a full zone table keeps the largest pieces", "[frame]")
{
    FakePhysMemory mem(64 * MiB);
    FrameAllocator fa(mem.offset());
    // 250 ranges of 64 KiB; 60 reserved frames cut 60 of them in two smaller pieces: 310 pieces.
    std::vector<PhysRange> usable;
    std::vector<PhysRange> reserved;
    for (uint64_t i = 0; i < 250; ++i) {
        const uint64_t base = 8 * MiB + i * 128 * KiB;
        usable.push_back(R(base, base + 64 * KiB));
        if (i % 4 == 0 && reserved.size() < 60)
            reserved.push_back(R(base + 32 * KiB, base + 36 * KiB));
    }
    // Plus a few tiny ranges that cannot hold their own metadata and one frame.
    usable.push_back(R(1 * MiB, 1 * MiB + 4 * KiB));
    usable.push_back(R(2 * MiB, 2 * MiB + 8 * KiB));
    auto r = fa.init(span_of(usable), span_of(reserved));
    REQUIRE(r.has_value());
    CHECK(fa.zone_count() == FrameAllocator::kMaxZones);
    CHECK(r->zones_added == FrameAllocator::kMaxZones);
    // 120 + 190 pieces, plus the 8 KiB range (one frame of metadata, one managed); the 4 KiB one is no piece.
    CHECK(r->pieces_dropped == 311 - FrameAllocator::kMaxZones);
    for (const PhysRange& span : zone_spans(fa))
        CHECK(span.size() == 64 * KiB);
    const uint64_t given = 250 * 64 * KiB + 12 * KiB;
    CHECK(r->bytes_skipped == given - r->bytes_managed - r->bytes_metadata);
    CHECK(fa.stats().skipped_bytes == r->bytes_skipped);
    CHECK(fa.check_invariants().ok());
    // More memory cannot be added: no slots left, all of it is reported as skipped.
    auto more = fa.add_range(R(40 * MiB, 48 * MiB));
    REQUIRE(more.has_value());
    CHECK(more->zones_added == 0);
    CHECK(more->pieces_dropped == 1);
    CHECK(more->bytes_skipped == 8 * MiB);
}

TEST_CASE("frame: more pieces than the pending table holds", "[frame]")
{
    FakePhysMemory mem(64 * MiB);
    FrameAllocator fa(mem.offset());
    // 200 ranges, 60 of them cut in three by two reserved frames each... over kMaxPending pieces.
    std::vector<PhysRange> usable;
    std::vector<PhysRange> reserved;
    for (uint64_t i = 0; i < 200; ++i) {
        const uint64_t base = 8 * MiB + i * 256 * KiB;
        usable.push_back(R(base, base + (i < 30 ? 192 : 64) * KiB));
        if (i < 32) {
            reserved.push_back(R(base + 24 * KiB, base + 28 * KiB));
            reserved.push_back(R(base + 52 * KiB, base + 56 * KiB));
        }
    }
    auto r = fa.init(span_of(usable), span_of(reserved));
    REQUIRE(r.has_value());
    // 32 ranges give 3 pieces, 168 give 1: 264 > kMaxPending; the 30 large tails (136 KiB) survive.
    CHECK(r->pieces_dropped == 264 - FrameAllocator::kMaxZones);
    const auto spans = zone_spans(fa);
    CHECK(std::count_if(spans.begin(), spans.end(), [](const PhysRange& s) { return s.size() == 136 * KiB; }) == 30);
    CHECK(std::all_of(spans.begin(), spans.end(), [](const PhysRange& s) { return s.size() >= 64 * KiB; }));
    CHECK(fa.check_invariants().ok());
}

TEST_CASE("frame: statistics sum the zones like buddyinfo", "[frame]")
{
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    const FrameStats s0 = fa.stats();
    uint64_t free_bytes = 0;
    for (unsigned k = 0; k < mm::kFrameOrders; ++k)
        free_bytes += s0.free_blocks[k] * (kFrame << k);
    CHECK(free_bytes == s0.bytes_free);
    uint64_t zone_free = 0;
    for (size_t i = 0; i < fa.zone_count(); ++i)
        zone_free += fa.zone(i).bytes_free;
    CHECK(zone_free == s0.bytes_free);
    CHECK(s0.fragmentation_index[10] == -1000);

    auto a = fa.allocate(3);
    auto b = fa.allocate(0, Zero::No, ZoneLimit::Below4GiB);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    const FrameStats s1 = fa.stats();
    CHECK(s1.bytes_used == 9 * kFrame);
    CHECK(s1.bytes_free == s0.bytes_free - 9 * kFrame);
    CHECK(s1.bytes_free_below_4gib == s0.bytes_free_below_4gib - kFrame);
    CHECK(s1.allocations == 2);
    CHECK(s1.peak_bytes_used == 9 * kFrame);
    CHECK(fa.free(*a).has_value());
    const FrameStats s2 = fa.stats();
    CHECK(s2.frees == 1);
    CHECK(s2.peak_bytes_used == 9 * kFrame);
    CHECK(s2.bytes_used == kFrame);
    CHECK(fa.free(*b).has_value());
    CHECK(buddyinfo(fa) == std::vector<uint64_t>(s0.free_blocks, s0.free_blocks + mm::kFrameOrders));
}

TEST_CASE("frame: fragmentation index follows Linux", "[frame]")
{
    // Nothing free: 0. A suitable block: -1000. Else 1000 - (1000 + free_pages*1000/requested) / blocks.
    uint64_t none[mm::kFrameOrders] = {};
    CHECK(mm::fragmentation_index(none, mm::kFrameOrders, 3) == 0);
    uint64_t scattered[mm::kFrameOrders] = {8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(mm::fragmentation_index(scattered, mm::kFrameOrders, 0) == -1000);
    // 8 single pages, want order 3 (8 pages): 1000 - (1000 + 1000) / 8 = 750.
    CHECK(mm::fragmentation_index(scattered, mm::kFrameOrders, 3) == 750);
    // 2 blocks of 4 pages, want 8: 1000 - (1000 + 1000) / 2 = 0.
    uint64_t pairs[mm::kFrameOrders] = {0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0};
    CHECK(mm::fragmentation_index(pairs, mm::kFrameOrders, 3) == 0);
    CHECK(mm::fragmentation_index(pairs, mm::kFrameOrders, mm::kFrameOrders) == 0);
    // And the allocator reports it: exhaust everything but scattered single frames.
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    std::vector<PhysicalAddress> all;
    for (;;) {
        auto frame = fa.allocate(0);
        if (!frame)
            break;
        all.push_back(*frame);
    }
    for (size_t i = 0; i < all.size(); i += 16)
        REQUIRE(fa.free(all[i]).has_value());
    const FrameStats s = fa.stats();
    const uint64_t n = (all.size() + 15) / 16;
    CHECK(s.free_blocks[0] == n);
    CHECK(s.fragmentation_index[0] == -1000);
    for (unsigned k = 1; k < mm::kFrameOrders; ++k)
        CHECK(s.fragmentation_index[k] == static_cast<int32_t>(1000 - (1000 + n * 1000 / (1u << k)) / n));
    CHECK(fa.allocate(1).error() == FrameError::OutOfMemory);
}

namespace mm {
struct FrameAllocatorTestAccess {
    static FrameError from_buddy(BuddyError e) { return FrameAllocator::from_buddy(e); }
    static lib::Expected<void, FrameError> add_zone(FrameAllocator& fa, PhysRange piece, FrameAddResult& result)
    {
        return fa.add_zone(piece, result);
    }
    static uint64_t& bytes_used(FrameAllocator& fa) { return fa.m_bytes_used; }
    static uint8_t* sorted(FrameAllocator& fa) { return fa.m_sorted; }
    static size_t& low_zone_count(FrameAllocator& fa) { return fa.m_low_zone_count; }
    static void force_reserved(FrameAllocator& fa, PhysRange r) { fa.m_reserved[fa.m_reserved_count++] = r; }
};
} // namespace mm

using FrameAccess = mm::FrameAllocatorTestAccess;

TEST_CASE("frame: buddy errors map onto frame errors", "[frame]")
{
    using mm::BuddyError;
    CHECK(FrameAccess::from_buddy(BuddyError::OutOfMemory) == FrameError::OutOfMemory);
    CHECK(FrameAccess::from_buddy(BuddyError::InvalidSize) == FrameError::InvalidOrder);
    CHECK(FrameAccess::from_buddy(BuddyError::DoubleFree) == FrameError::DoubleFree);
    CHECK(FrameAccess::from_buddy(BuddyError::ForeignPointer) == FrameError::ForeignAddress);
    CHECK(FrameAccess::from_buddy(BuddyError::MisalignedPointer) == FrameError::MisalignedAddress);
    CHECK(FrameAccess::from_buddy(BuddyError::InteriorPointer) == FrameError::InteriorAddress);
    CHECK(FrameAccess::from_buddy(BuddyError::SizeMismatch) == FrameError::SizeMismatch);
    for (BuddyError e : {BuddyError::InvalidConfig, BuddyError::RegionTooSmall, BuddyError::MetadataTooSmall,
                         BuddyError::MetadataOverlap})
        CHECK(FrameAccess::from_buddy(e) == FrameError::InvalidRange);
}

TEST_CASE("frame: a piece too small for its metadata never becomes a zone", "[frame]")
{
    FakePhysMemory mem(8 * MiB);
    FrameAllocator fa(mem.offset());
    FrameAddResult result;
    CHECK(FrameAccess::add_zone(fa, R(1 * MiB, 1 * MiB + kFrame), result).error() == FrameError::InvalidRange);
    CHECK(FrameAccess::add_zone(fa, R(1 * MiB, 1 * MiB), result).error() == FrameError::InvalidRange);
    CHECK(fa.zone_count() == 0);
    CHECK(result.zones_added == 0);
    // Through the public API: empty and frame-less ranges are skipped, not errors.
    const std::vector<PhysRange> usable = {R(2 * MiB, 2 * MiB), R(3 * MiB, 3 * MiB + 100),
                                           R(4 * MiB, 4 * MiB + kFrame)};
    auto r = fa.add_ranges(span_of(usable));
    REQUIRE(r.has_value());
    CHECK(r->zones_added == 0);
    CHECK(r->bytes_skipped == 100 + kFrame);
}

TEST_CASE("frame: the invariant checker finds corruption", "[frame]")
{
    Fixture f(sparse_high());
    FrameAllocator& fa = *f.fa;
    REQUIRE(fa.zone_count() == 3);

    SECTION("a free block's links overwritten after it was freed")
    {
        auto frame = fa.allocate(0);
        REQUIRE(frame.has_value());
        auto keep = fa.allocate(0); // so the freed frame cannot merge away from its list position
        REQUIRE(keep.has_value());
        REQUIRE(fa.free(*frame).has_value());
        std::memset(fa.to_virt(*frame), 0x6b, 16); // use after free
        const auto report = fa.check_invariants();
        CHECK_FALSE(report.ok());
        CHECK(report.first_bad_zone == 2);
        CHECK_FALSE(report.zone_report.ok());
        CHECK(report.counters_ok);
        CHECK(report.layout_ok);
    }
    SECTION("byte counters")
    {
        FrameAccess::bytes_used(fa) += kFrame;
        const auto report = fa.check_invariants();
        CHECK_FALSE(report.ok());
        CHECK_FALSE(report.counters_ok);
        CHECK(report.layout_ok);
        CHECK(report.first_bad_zone == -1);
    }
    SECTION("zone order")
    {
        std::swap(FrameAccess::sorted(fa)[0], FrameAccess::sorted(fa)[1]);
        const auto report = fa.check_invariants();
        CHECK_FALSE(report.ok());
        CHECK_FALSE(report.layout_ok);
        CHECK(report.first_bad_zone == 0);
    }
    SECTION("low zone count")
    {
        FrameAccess::low_zone_count(fa) = 3; // claims the high zone is below 4 GiB
        const auto report = fa.check_invariants();
        CHECK_FALSE(report.layout_ok);
        CHECK(report.first_bad_zone == 2);
    }
    SECTION("a reserved range inside a zone")
    {
        FrameAccess::force_reserved(fa, R(4 * GiB + 8 * MiB, 4 * GiB + 8 * MiB + kFrame));
        const auto report = fa.check_invariants();
        CHECK_FALSE(report.layout_ok);
        CHECK(report.violations == 1);
        CHECK(report.first_bad_zone == 2);
    }
}

namespace {

// A model of what the allocator must have handed out: start -> order.
struct Model {
    std::map<uint64_t, unsigned> blocks;

    bool overlaps(uint64_t start, uint64_t end) const
    {
        auto it = blocks.lower_bound(start);
        if (it != blocks.end() && it->first < end)
            return true;
        if (it != blocks.begin()) {
            --it;
            if (it->first + (kFrame << it->second) > start)
                return true;
        }
        return false;
    }
};

uint64_t tag_for(uint64_t addr, unsigned order) { return addr * 0x9e3779b97f4a7c15ull ^ order; }

void run_model(const Layout& layout, uint64_t ops, uint32_t seed)
{
    Fixture f(layout);
    FrameAllocator& fa = *f.fa;
    const auto initial = buddyinfo(fa);
    const FrameStats s0 = fa.stats();
    std::mt19937_64 rng(seed);
    Model model;
    std::vector<uint64_t> live; // for random picks
    uint64_t used = 0;
    uint64_t ooms = 0;
    uint64_t errors_checked = 0;
    // Order mix: mostly small, some 2 MiB and 4 MiB.
    const unsigned weights[mm::kFrameOrders] = {40, 14, 10, 8, 6, 5, 4, 3, 3, 4, 3};
    std::discrete_distribution<unsigned> pick_order(std::begin(weights), std::end(weights));

    for (uint64_t op = 0; op < ops; ++op) {
        // Drift between filling up and draining so both exhaustion and coalescing happen.
        const bool fill_phase = (op / 20000) % 2 == 0;
        const bool do_alloc = live.empty() || (rng() % 100) < (fill_phase ? 65u : 35u);
        if (do_alloc) {
            const unsigned order = pick_order(rng);
            const ZoneLimit limit = rng() % 8 == 0 ? ZoneLimit::Below4GiB : ZoneLimit::Any;
            const Zero zero = rng() % 16 == 0 ? Zero::Yes : Zero::No;
            auto block = fa.allocate(order, zero, limit);
            if (!block) {
                REQUIRE(block.error() == FrameError::OutOfMemory);
                ++ooms;
                continue;
            }
            const uint64_t a = block->get();
            const uint64_t size = kFrame << order;
            REQUIRE(a % size == 0);
            REQUIRE(f.layout.in_usable(a, a + size));
            REQUIRE_FALSE(f.layout.hits_reserved(a, a + size));
            REQUIRE_FALSE(model.overlaps(a, a + size));
            if (limit == ZoneLimit::Below4GiB)
                REQUIRE(a + size <= 4 * GiB);
            auto* words = static_cast<uint64_t*>(fa.to_virt(*block));
            if (zero == Zero::Yes) {
                REQUIRE(words[0] == 0);
                REQUIRE(words[size / 8 - 1] == 0);
            }
            words[0] = tag_for(a, order);
            words[size / 8 - 1] = ~tag_for(a, order);
            model.blocks[a] = order;
            live.push_back(a);
            used += size;
        } else {
            const size_t i = rng() % live.size();
            const uint64_t a = live[i];
            const unsigned order = model.blocks.at(a);
            const uint64_t size = kFrame << order;
            const auto* words = static_cast<const uint64_t*>(fa.to_virt(P(a)));
            REQUIRE(words[0] == tag_for(a, order));
            REQUIRE(words[size / 8 - 1] == ~tag_for(a, order));
            // Now and then an invalid free first; it must change nothing.
            if (rng() % 64 == 0) {
                if (order > 0)
                    REQUIRE(fa.free(P(a + kFrame)).error() == FrameError::InteriorAddress);
                REQUIRE(fa.free(P(a), order == 0 ? 1 : 0).error() == FrameError::SizeMismatch);
                ++errors_checked;
            }
            const bool sized = rng() % 2 == 0;
            REQUIRE((sized ? fa.free(P(a), order) : fa.free(P(a))).has_value());
            if (rng() % 64 == 0)
                REQUIRE(fa.free(P(a)).error() == FrameError::DoubleFree);
            model.blocks.erase(a);
            live[i] = live.back();
            live.pop_back();
            used -= size;
        }
        REQUIRE(fa.bytes_used() == used);
        if (op % 25000 == 0) {
            const auto report = fa.check_invariants();
            REQUIRE(report.ok());
        }
    }
    CHECK(ooms > 0);
    CHECK(errors_checked > 0);
    for (uint64_t a : live)
        REQUIRE(fa.free(P(a)).has_value());
    CHECK(buddyinfo(fa) == initial);
    const FrameStats s = fa.stats();
    CHECK(s.bytes_used == 0);
    CHECK(s.bytes_free == s0.bytes_free);
    CHECK(s.allocations == s.frees);
    CHECK(fa.check_invariants().ok());
}

} // namespace

TEST_CASE("frame: randomized model, sparse map with memory above 4 GiB", "[frame][model]")
{
    run_model(sparse_high(), 250000, 0x5eed1234);
}

TEST_CASE("frame: randomized model, QEMU-like 32 MiB map", "[frame][model]") { run_model(qemu_32m(), 200000, 0xa7e1); }

TEST_CASE("frame: order-0 and order-9 allocate+free pair cost", "[.][frame-bench]")
{
    Fixture f(qemu_6g());
    FrameAllocator& fa = *f.fa;
    for (unsigned order : {0u, 9u}) {
        constexpr int kRounds = 1000000;
        uint64_t best = ~uint64_t{0};
        for (int rep = 0; rep < 5; ++rep) {
            const uint64_t t0 = __rdtsc();
            for (int i = 0; i < kRounds; ++i) {
                auto a = fa.allocate(order);
                (void)fa.free(*a, order);
            }
            best = std::min<uint64_t>(best, (__rdtsc() - t0) / kRounds);
        }
        // A churned state: 1000 frames live, pairs in between.
        std::vector<PhysicalAddress> live;
        for (int i = 0; i < 1000; ++i)
            live.push_back(*fa.allocate(order));
        const uint64_t t0 = __rdtsc();
        for (int i = 0; i < kRounds; ++i) {
            auto a = fa.allocate(order);
            (void)fa.free(live[i % 1000]);
            live[i % 1000] = *a;
        }
        const uint64_t churn = (__rdtsc() - t0) / kRounds;
        for (PhysicalAddress a : live)
            (void)fa.free(a);
        std::printf("frame pair order %u: %llu TSC ticks (hot), %llu (churn)\n", order,
                    static_cast<unsigned long long>(best), static_cast<unsigned long long>(churn));
    }
}
