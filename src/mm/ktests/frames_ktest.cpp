// In-kernel tests of the Mana Pool's frame allocator over the real memory map: where frames
// come from, zeroing, churn and leak checks, large orders, the physmap above 4 GiB.
#include <initializer_list>
#include <new>

#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/paging.h"
#include "diag/ktest.h"
#include "kernel/boot_info.h"
#include "lib/log.h"
#include "mm/frame_allocator.h"
#include "mm/frames.h"

namespace {

using mm::FrameStats;
using mm::PhysRange;

constexpr uint64_t kGiB = 1ull << 30;

// [start, end) lies in Available RAM (possibly over several adjacent map entries).
bool in_usable_ram(uint64_t start, uint64_t end)
{
    const kernel::BootInfo& info = kernel::boot_info();
    uint64_t cursor = start;
    while (cursor < end) {
        const kernel::MemoryRegion* r = info.region_containing(PhysicalAddress(cursor));
        if (r == nullptr || !r->is_usable())
            return false;
        cursor = r->end().get();
    }
    return true;
}

bool overlaps(uint64_t start, uint64_t end, uint64_t r_start, uint64_t r_end) { return start < r_end && r_start < end; }

// Overlaps a reserved range, or (independently of the allocator's own list) the kernel image,
// the first MiB, the Multiboot2 blob or a module.
bool hits_reserved(uint64_t start, uint64_t end)
{
    for (const PhysRange& r : mm::frames_reserved_ranges()) {
        if (overlaps(start, end, r.start.get(), r.end.get()))
            return true;
    }
    const kernel::BootInfo& info = kernel::boot_info();
    if (overlaps(start, end, reinterpret_cast<uint64_t>(__kernel_phys_start),
                 reinterpret_cast<uint64_t>(__kernel_phys_end)))
        return true;
    if (overlaps(start, end, 0, 1ull << 20))
        return true;
    if (overlaps(start, end, info.info_phys_start.get(), info.info_phys_end.get()))
        return true;
    for (const kernel::BootModule& m : info.boot_modules()) {
        if (overlaps(start, end, m.start.get(), m.end.get()))
            return true;
    }
    return false;
}

bool same_free_state(const FrameStats& a, const FrameStats& b)
{
    if (a.bytes_free != b.bytes_free || a.bytes_used != b.bytes_used || a.bytes_total != b.bytes_total)
        return false;
    for (unsigned k = 0; k < mm::kFrameOrders; ++k) {
        if (a.free_blocks[k] != b.free_blocks[k])
            return false;
    }
    return true;
}

// xorshift64: deterministic churn.
uint64_t next_random(uint64_t& state)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

} // namespace

KTEST(frames, built_from_the_memory_map)
{
    KASSERT(mm::frames_ready());
    const FrameStats s = mm::frames_stats();
    KEXPECT(s.zone_count > 0);
    KEXPECT(s.bytes_total > 0);
    // The pool holds most of the usable RAM: what is missing is the first MiB, the image, boot
    // data, metadata (~0.03%) and allocations made since boot.
    const uint64_t usable = kernel::boot_info().usable_bytes();
    KEXPECT(s.bytes_total + s.metadata_bytes + s.skipped_bytes <= usable);
    KEXPECT(s.bytes_total > usable / 2);
    for (size_t i = 0; i < mm::frames_zone_count(); ++i) {
        const mm::FrameZoneInfo z = mm::frames_zone(i);
        if (!in_usable_ram(z.metadata.start.get(), z.managed.end.get()))
            ktest_ctx.failf(__FILE__, __LINE__, "zone {} [{:#x}, {:#x}) is not all usable RAM", i, z.metadata.start,
                            z.managed.end);
        if (hits_reserved(z.metadata.start.get(), z.managed.end.get()))
            ktest_ctx.failf(__FILE__, __LINE__, "zone {} [{:#x}, {:#x}) overlaps reserved memory", i, z.metadata.start,
                            z.managed.end);
        KEXPECT(arch::physmap_maps(z.managed.start));
        KEXPECT(arch::physmap_maps(PhysicalAddress(z.managed.end.get() - mm::kFrameSize)));
    }
    KEXPECT(mm::frames_reserved_ranges().size() >= 3); // first MiB, image, Multiboot2 info
    KEXPECT(mm::frames_check_invariants().ok());
    const mm::FramesInitReport& report = mm::frames_init_report();
    lib::log::print("    ({} zones, {} KiB metadata for {} MiB; init took {} cycles; physmap +{} MiB in {} x 1 GiB + "
                    "{} x 2 MiB pages)\n",
                    s.zone_count, s.metadata_bytes >> 10, s.bytes_total >> 20, report.cycles,
                    report.high_bytes_mapped >> 20, report.physmap_1gib_pages, report.physmap_2mib_pages);
}

KTEST(frames, frames_lie_in_usable_ram_outside_reserved)
{
    static PhysicalAddress taken[512];
    static unsigned orders[512];
    size_t n = 0;
    for (unsigned order = 0; order < mm::kFrameOrders; ++order) {
        const unsigned count = order < 4 ? 64 : 8;
        for (unsigned i = 0; i < count && n < 512; ++i) {
            auto frame = mm::frames_allocate(order);
            if (!frame)
                break; // a small machine may not have many 4 MiB blocks
            const uint64_t a = frame->get();
            const uint64_t size = mm::kFrameSize << order;
            KEXPECT(a % size == 0);
            if (!in_usable_ram(a, a + size))
                ktest_ctx.failf(__FILE__, __LINE__, "frame {:#x} order {} is not in usable RAM", a, order);
            if (hits_reserved(a, a + size))
                ktest_ctx.failf(__FILE__, __LINE__, "frame {:#x} order {} overlaps reserved memory", a, order);
            taken[n] = *frame;
            orders[n] = order;
            ++n;
        }
    }
    KEXPECT(n > 256);
    for (size_t i = 0; i < n; ++i)
        mm::frames_free(taken[i], orders[i]);
}

KTEST(frames, zeroed_frames_are_zero)
{
    static PhysicalAddress held[512];
    for (unsigned order : {0u, 3u, 9u}) {
        const uint64_t size = mm::kFrameSize << order;
        // Dirty a block and give it back, then take zeroed blocks until it comes back (the
        // smaller free lists run dry first, and the dirty block's merged remains sit at the
        // head of theirs). Every zeroed block must read as zero.
        auto dirty = mm::frames_allocate(order);
        KASSERT(dirty.has_value());
        __builtin_memset(mm::frame_to_virt(*dirty), 0x5a, size);
        mm::frames_free(*dirty);
        size_t n = 0;
        bool found = false;
        bool zero = true;
        while (!found && n < 512) {
            auto clean = mm::frames_allocate(order, mm::Zero::Yes);
            if (!clean)
                break;
            held[n++] = *clean;
            const auto* words = static_cast<const volatile uint64_t*>(mm::frame_to_virt(*clean));
            found = *clean == *dirty;
            // The dirty block in full, the others at both ends.
            for (uint64_t i = 0; i < size / 8; i = found || i + 1 == size / 8 ? i + 1 : size / 8 - 1)
                zero = zero && words[i] == 0;
        }
        KEXPECT(found);
        KEXPECT(zero);
        for (size_t i = 0; i < n; ++i)
            mm::frames_free(held[i], order);
    }
}

KTEST(frames, churn_returns_stats_to_start)
{
    const FrameStats start = mm::frames_stats();
    constexpr size_t kSlots = 128;
    static PhysicalAddress live[kSlots];
    static unsigned live_order[kSlots];
    static bool used[kSlots];
    for (size_t i = 0; i < kSlots; ++i)
        used[i] = false;
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    unsigned allocations = 0;
    for (unsigned op = 0; op < 20000; ++op) {
        const size_t slot = next_random(rng) % kSlots;
        if (used[slot]) {
            if (next_random(rng) % 2 == 0)
                mm::frames_free(live[slot], live_order[slot]);
            else
                mm::frames_free(live[slot]);
            used[slot] = false;
            continue;
        }
        // Orders 0..10, small ones far more often.
        const uint64_t r = next_random(rng) % 64;
        const unsigned order = r < 32 ? 0 : r < 44 ? 1 : r < 52 ? 2 : r < 56 ? 3 : r < 60 ? 9 : (r % 11);
        const auto limit = next_random(rng) % 4 == 0 ? mm::ZoneLimit::Below4GiB : mm::ZoneLimit::Any;
        auto frame = mm::frames_allocate(order, mm::Zero::No, limit);
        if (!frame)
            continue;
        KEXPECT(frame->is_aligned(mm::kFrameSize << order));
        if (limit == mm::ZoneLimit::Below4GiB)
            KEXPECT(frame->get() < 4 * kGiB);
        *static_cast<volatile uint64_t*>(mm::frame_to_virt(*frame)) = frame->get();
        live[slot] = *frame;
        live_order[slot] = order;
        used[slot] = true;
        ++allocations;
    }
    for (size_t i = 0; i < kSlots; ++i) {
        if (used[i]) {
            KEXPECT(*static_cast<volatile uint64_t*>(mm::frame_to_virt(live[i])) == live[i].get());
            mm::frames_free(live[i]);
        }
    }
    KEXPECT(allocations > 5000);
    const FrameStats end = mm::frames_stats();
    KEXPECT(same_free_state(start, end));
    KEXPECT_EQ(end.allocations - start.allocations, end.frees - start.frees);
    KEXPECT(mm::frames_check_invariants().ok());
}

KTEST(frames, order9_two_mib_block)
{
    auto block = mm::frames_allocate(9);
    KASSERT(block.has_value());
    KEXPECT(block->is_aligned(2ull << 20));
    auto* bytes = static_cast<volatile uint8_t*>(mm::frame_to_virt(*block));
    bytes[0] = 0xa5;
    bytes[(2u << 20) - 1] = 0x5a;
    KEXPECT(bytes[0] == 0xa5 && bytes[(2u << 20) - 1] == 0x5a);
    mm::frames_free(*block, 9);
    // The largest order too (4 MiB), if the machine has one free.
    auto largest = mm::frames_allocate(mm::kFrameMaxOrder);
    if (largest) {
        KEXPECT(largest->is_aligned(mm::kFrameMaxBlock));
        mm::frames_free(*largest);
    }
}

KTEST(frames, write_through_the_physmap)
{
    auto frame = mm::frames_allocate(0);
    KASSERT(frame.has_value());
    void* virt = mm::frame_to_virt(*frame);
    KEXPECT_EQ(reinterpret_cast<uint64_t>(virt), arch::kPhysMapBase + frame->get());
    KEXPECT(mm::virt_to_frame(virt) == *frame);
    KEXPECT(arch::physmap_maps(*frame));
    auto* words = static_cast<volatile uint64_t*>(virt);
    for (unsigned i = 0; i < 512; ++i)
        words[i] = frame->get() ^ (0x0101010101010101ull * i);
    bool intact = true;
    for (unsigned i = 0; i < 512; ++i)
        intact = intact && words[i] == (frame->get() ^ (0x0101010101010101ull * i));
    KEXPECT(intact);
    mm::frames_free(*frame);
}

KTEST(frames, below_4gib_requests_and_highest_zone_first)
{
    auto low = mm::frames_allocate(0, mm::Zero::Yes, mm::ZoneLimit::Below4GiB);
    KASSERT(low.has_value());
    KEXPECT(low->get() < 4 * kGiB);
    auto any = mm::frames_allocate(0);
    KASSERT(any.has_value());
    const FrameStats s = mm::frames_stats();
    if (s.zone_count > s.zone_count_below_4gib) {
        // RAM above 4 GiB exists: plain requests are served from there, through the extended physmap.
        KEXPECT(any->get() >= 4 * kGiB);
        KEXPECT(arch::physmap_maps(*any));
        auto* word = static_cast<volatile uint64_t*>(mm::frame_to_virt(*any));
        *word = 0x4a15e1f00dull;
        KEXPECT(*word == 0x4a15e1f00dull);
        KEXPECT(arch::physmap_top() > 4 * kGiB);
        lib::log::print("    ({} MiB of frames above 4 GiB; frame {:#x} came from there)\n",
                        (s.bytes_total - s.bytes_total_below_4gib) >> 20, *any);
    } else {
        lib::log::print("    (no RAM above 4 GiB on this machine: highest low zone first)\n");
        KEXPECT(mm::frames_zone(s.zone_count - 1).managed.contains(*any));
    }
    mm::frames_free(*any);
    mm::frames_free(*low, 0);
}

KTEST(frames, kernel_page_source)
{
    mm::PageSource& source = mm::kernel_page_source();
    void* pages = source.allocate_pages(2);
    KASSERT(pages != nullptr);
    const uint64_t v = reinterpret_cast<uint64_t>(pages);
    KEXPECT(v >= arch::kPhysMapBase);
    KEXPECT(v % (4 * mm::kFrameSize) == 0);
    __builtin_memset(pages, 0x77, 4 * mm::kFrameSize);
    KEXPECT(static_cast<volatile uint8_t*>(pages)[4 * mm::kFrameSize - 1] == 0x77);
    const FrameStats during = mm::frames_stats();
    source.free_pages(pages, 2);
    KEXPECT_EQ(mm::frames_stats().bytes_used + 4 * mm::kFrameSize, during.bytes_used);
    KEXPECT(source.allocate_pages(mm::kFrameOrders) == nullptr); // beyond the largest order
}

namespace {

// A 4 MiB block of the real pool, given back when the scope ends (also on KASSERT's return).
class ScopedMaxBlock {
public:
    ScopedMaxBlock() = default;
    explicit ScopedMaxBlock(PhysicalAddress block) : m_block(block), m_held(true) { }
    ~ScopedMaxBlock()
    {
        if (m_held)
            mm::frames_free(m_block, mm::kFrameMaxOrder);
    }
    ScopedMaxBlock(const ScopedMaxBlock&) = delete;
    ScopedMaxBlock& operator=(const ScopedMaxBlock&) = delete;

    static ScopedMaxBlock allocate()
    {
        auto block = mm::frames_allocate(mm::kFrameMaxOrder);
        return block ? ScopedMaxBlock(*block) : ScopedMaxBlock();
    }
    bool held() const { return m_held; }
    PhysicalAddress get() const { return m_block; }
    PhysRange range() const { return mm::make_phys_range(m_block.get(), m_block.get() + mm::kFrameMaxBlock); }

private:
    PhysicalAddress m_block;
    bool m_held = false;
};

// Which block the last run of frames.core_errors_freestanding built its allocator over.
PhysicalAddress g_core_errors_block;

} // namespace

KTEST(frames, core_errors_freestanding)
{
    // A private allocator over one 4 MiB block of the real pool: the error paths the kernel
    // wrapper turns into panics, checked without panicking. It is built afresh for every run (too
    // large for the stack, so on the heap): a zone left from an earlier run would still cover
    // that run's block, which the pool has handed to others since.
    ScopedMaxBlock block = ScopedMaxBlock::allocate();
    if (!block.held())
        KSKIP("no free 4 MiB block");
    g_core_errors_block = block.get();
    struct Owned {
        mm::FrameAllocator* allocator;
        ~Owned() { delete allocator; }
    } owned{new (std::nothrow) mm::FrameAllocator(arch::kPhysMapBase)};
    KASSERT(owned.allocator != nullptr);
    mm::FrameAllocator& local = *owned.allocator;
    const uint64_t base = block.get().get();
    KASSERT(local.add_range(block.range()).has_value());
    KASSERT(local.zone_count() == 1);
    // Every byte it will write (metadata, free-list links) lies in the block this run owns.
    const mm::FrameZoneInfo zone = local.zone(0);
    KASSERT(zone.metadata.start.get() >= base && zone.managed.end.get() <= base + mm::kFrameMaxBlock);
    auto a = local.allocate(1);
    KASSERT(a.has_value());
    KEXPECT(block.range().contains(*a));
    KEXPECT(local.free(a->offset(mm::kFrameSize)).error() == mm::FrameError::InteriorAddress);
    KEXPECT(local.free(*a, 0).error() == mm::FrameError::SizeMismatch);
    KEXPECT(local.free(PhysicalAddress(base)).error() == mm::FrameError::ForeignAddress); // its metadata
    KEXPECT(local.free(*a).has_value());
    KEXPECT(local.free(*a).error() == mm::FrameError::DoubleFree);
    KEXPECT(local.allocate(mm::kFrameOrders).error() == mm::FrameError::InvalidOrder);
    KEXPECT(local.check_invariants().ok());
}

// The shell's `ktest` may run a case any number of times in one boot. Runs the case above twice,
// with the first run's block taken by someone else (this test, which fills it with a pattern) in
// between: the second run must pass, and must not write into that block.
KTEST(frames, core_errors_case_runs_again_after_its_block_changed_hands)
{
    const kernel::ktest::TestCase* core_errors = kernel::ktest::find_case("frames", "core_errors_freestanding");
    KASSERT(core_errors != nullptr);
    kernel::ktest::Context first;
    core_errors->fn(first);
    if (first.skipped())
        KSKIP("no free 4 MiB block");
    KEXPECT(!first.failed());

    // Take back the block the first run used (the most recently freed one is handed out first;
    // the others taken on the way are given back at once).
    constexpr size_t kMaxTries = 64;
    PhysicalAddress others[kMaxTries];
    size_t other_count = 0;
    bool found = false;
    while (!found && other_count < kMaxTries) {
        auto candidate = mm::frames_allocate(mm::kFrameMaxOrder);
        if (!candidate)
            break;
        found = *candidate == g_core_errors_block;
        if (!found)
            others[other_count++] = *candidate;
    }
    for (size_t i = 0; i < other_count; ++i)
        mm::frames_free(others[i], mm::kFrameMaxOrder);
    KASSERT(found);
    const ScopedMaxBlock foreign(g_core_errors_block);
    auto* words = static_cast<volatile uint64_t*>(mm::frame_to_virt(foreign.get()));
    constexpr size_t kWords = mm::kFrameMaxBlock / sizeof(uint64_t);
    for (size_t i = 0; i < kWords; ++i)
        words[i] = 0xf0f0f0f000000000ull ^ i;

    kernel::ktest::Context second;
    core_errors->fn(second);
    if (second.skipped())
        KSKIP("only one free 4 MiB block");
    KEXPECT(!second.failed());
    KEXPECT(g_core_errors_block != foreign.get());
    size_t changed = 0;
    for (size_t i = 0; i < kWords; ++i)
        changed += words[i] != (0xf0f0f0f000000000ull ^ i) ? 1 : 0;
    if (changed != 0)
        ktest_ctx.failf(__FILE__, __LINE__, "the second run wrote {} words into the block it had given back", changed);
}

KTEST(frames, remapping_the_boot_physmap_changes_nothing)
{
    struct Counter {
        unsigned calls = 0;
    } counter;
    const arch::PageTableFrameSource source{&counter, [](void* c) {
                                                ++static_cast<Counter*>(c)->calls;
                                                return PhysicalAddress();
                                            }};
    for (bool allow_1gib : {true, false}) {
        auto ext = arch::map_physmap_range(PhysicalAddress(0), PhysicalAddress(4 * kGiB), source, allow_1gib);
        KASSERT(ext.has_value());
        KEXPECT_EQ(ext->bytes_mapped, uint64_t{0});
        KEXPECT_EQ(ext->tables_allocated, uint32_t{0});
    }
    KEXPECT_EQ(counter.calls, 0u);
    KEXPECT(arch::map_physmap_range(PhysicalAddress(4096), PhysicalAddress(2ull << 20), source).error() ==
            arch::PagingError::OutOfRange);
    KEXPECT(arch::map_physmap_range(PhysicalAddress(0), PhysicalAddress(0), source).error() ==
            arch::PagingError::OutOfRange);
    KEXPECT(
        arch::map_physmap_range(PhysicalAddress(0), PhysicalAddress(arch::kPhysMapMaxBytes + kGiB), source).error() ==
        arch::PagingError::OutOfRange);
    KEXPECT(arch::physmap_maps(PhysicalAddress(0)));
    KEXPECT(arch::physmap_maps(PhysicalAddress(4 * kGiB - 1)));
}
