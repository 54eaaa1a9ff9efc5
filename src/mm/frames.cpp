// The Heartwood's frame allocator: the global FrameAllocator, its lock, and how
// it is built from the boot memory map. See frames.h.
//
// Kernel only: the host tests compile every src/mm/*.cpp, but this file needs
// the x86_64 physmap and page tables (their host counterpart is the generic
// FrameAllocator itself, tested directly).
#if defined(__AETHELOS_KERNEL__)

#include "mm/frames.h"

#include "arch/cpu.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/paging.h"
#include "kernel/boot_info.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/panic.h"
#include "lib/thread_safety.h"
#include "lib/utility.h"
#include "sync/irq_spinlock.h"

namespace mm {

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kKiB = 1ull << 10;

// Physical addresses here equal physmap offsets, which are 2^47-aligned: far
// beyond the 4 MiB the FrameAllocator requires.
constinit kernel::sync::IrqSpinLock g_lock{"frames", kernel::sync::LockRank::kFrameAllocator};
constinit FrameAllocator g_frames AETHELOS_GUARDED_BY(g_lock){arch::kPhysMapBase};
bool g_ready = false;
FramesInitReport g_report;

// Usable RAM split at 4 GiB; static because a boot stack is no place for 4 KiB.
PhysRange g_low[kernel::BootInfo::kMaxMemoryRegions];
PhysRange g_high[kernel::BootInfo::kMaxMemoryRegions];

void reserve_or_panic(PhysRange range, const char* what) AETHELOS_REQUIRES(g_lock)
{
    g_lock.assert_held();
    if (auto status = g_frames.reserve(range); !status)
        kernel::panic("Mana Pool: cannot reserve {} [{:#x}, {:#x}): {}", what, range.start, range.end,
                      to_string(status.error()));
}

// Page-table frames for the physmap extension: zeroed, below 4 GiB (so the
// boot physmap reaches them), taken while init_frames holds the lock.
PhysicalAddress page_table_frame(void*) AETHELOS_REQUIRES(g_lock)
{
    g_lock.assert_held();
    auto frame = g_frames.allocate(0, Zero::Yes, ZoneLimit::Below4GiB);
    return frame ? *frame : PhysicalAddress();
}

// A bad free is a kernel bug: stop with the address, the reason and who freed.
[[noreturn, gnu::cold]] void bad_free(PhysicalAddress frame, int order, FrameError error, uint64_t caller)
{
    static char message[256];
    if (order < 0)
        lib::format(message, sizeof(message), "Mana Pool: invalid free of frame {:#x} from {:p}: {}", frame,
                    reinterpret_cast<const void*>(caller), to_string(error));
    else
        lib::format(message, sizeof(message), "Mana Pool: invalid free of frame {:#x} (order {}) from {:p}: {}", frame,
                    order, reinterpret_cast<const void*>(caller), to_string(error));
    kernel::panic_message(message, nullptr, caller);
}

void free_checked(PhysicalAddress frame, int order, uint64_t caller)
{
    lib::Expected<void, FrameError> status;
    {
        kernel::sync::IrqSpinLock::Guard guard{g_lock};
        status = order < 0 ? g_frames.free(frame) : g_frames.free(frame, static_cast<unsigned>(order));
    }
    if (!status) [[unlikely]]
        bad_free(frame, order, status.error(), caller);
}

class KernelPageSource final : public PageSource {
public:
    constexpr KernelPageSource() = default;

    void* allocate_pages(unsigned order) override
    {
        auto frame = frames_allocate(order);
        return frame ? frame_to_virt(*frame) : nullptr;
    }

    [[gnu::noinline]] void free_pages(void* p, unsigned order) override
    {
        free_checked(virt_to_frame(p), static_cast<int>(order),
                     reinterpret_cast<uint64_t>(__builtin_return_address(0)));
    }
};

constinit KernelPageSource g_page_source;

// RAM above 4 GiB: mapped into the physmap in 2 MiB units, so each range is
// trimmed inwards to 2 MiB (real maps end high RAM on such a boundary anyway;
// what a ragged edge loses is reported). Ranges whose mapping fails are left out.
size_t map_high_memory(size_t count)
{
    const arch::PageTableFrameSource source{nullptr, &page_table_frame};
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
        const PhysRange r = g_high[i];
        const uint64_t end_limit = lib::min(r.end.get(), arch::kPhysMapMaxBytes);
        const PhysRange mapped{r.start.align_up(arch::kPhysMapGranule),
                               PhysicalAddress(lib::align_down(end_limit, arch::kPhysMapGranule))};
        if (mapped.empty()) {
            g_report.high_bytes_unmapped += r.size();
            continue;
        }
        g_report.high_bytes_unmapped += r.size() - mapped.size();
        auto ext = arch::map_physmap_range(mapped.start, mapped.end, source);
        if (!ext) {
            lib::log::warn("Mana Pool: cannot map RAM [{:#x}, {:#x}) into the physmap ({}); leaving it unused",
                           mapped.start, mapped.end, arch::to_string(ext.error()));
            g_report.high_bytes_unmapped += mapped.size();
            continue;
        }
        g_report.high_bytes_mapped += ext->bytes_mapped;
        g_report.physmap_1gib_pages += ext->pages_1gib;
        g_report.physmap_2mib_pages += ext->pages_2mib;
        g_report.physmap_tables += ext->tables_allocated;
        g_high[kept++] = mapped;
    }
    return kept;
}

} // namespace

void init_frames(const kernel::BootInfo& info)
{
    if (g_ready)
        kernel::panic("Mana Pool: init_frames called twice");
    const uint64_t t0 = arch::read_cycle_counter();
    {
        kernel::sync::IrqSpinLock::Guard guard{g_lock};

        // The first MiB stays out of the pool: the real-mode IVT and BIOS data area
        // (0..0x500), the EBDA below 640 KiB that firmware (SMM, ACPI) may still use,
        // legacy VGA memory and option/BIOS ROMs (0xA0000..0xFFFFF), and BIOSes known
        // to scribble on low memory. It is also where the SMP AP trampoline must go
        // (real mode starts below 1 MiB); it will be carved from this range, not from
        // the pool. It costs under 640 KiB.
        reserve_or_panic(make_phys_range(0, kMiB), "the first MiB");
        // The image includes boot.S's page tables and boot stack (.bss) and .ksyms.
        reserve_or_panic(make_phys_range(reinterpret_cast<uint64_t>(__kernel_phys_start),
                                         reinterpret_cast<uint64_t>(__kernel_phys_end)),
                         "the kernel image");
        for (const kernel::BootModule& module : info.boot_modules())
            reserve_or_panic(PhysRange{module.start, module.end}, "a boot module");
        // BootInfo holds copies, but the blob is tiny and a later reader (ACPI, a
        // debugger) may want the original.
        reserve_or_panic(PhysRange{info.info_phys_start, info.info_phys_end}, "the Multiboot2 information");
        // Firmware should report the framebuffer as reserved; do not rely on it.
        if (info.has_framebuffer)
            reserve_or_panic(
                PhysRange{info.framebuffer.phys_addr, info.framebuffer.phys_addr.offset(info.framebuffer.size_bytes())},
                "the framebuffer");

        // Usable RAM, split at 4 GiB, adjacent entries merged (the map is sorted).
        size_t low = 0;
        size_t high = 0;
        const PhysicalAddress split(kLowMemoryLimit);
        for (const kernel::MemoryRegion& region : info.usable_regions()) {
            const PhysRange r{region.base, region.end()};
            const PhysRange below{r.start, lib::min(r.end, split)};
            const PhysRange above{lib::max(r.start, split), r.end};
            if (!below.empty()) {
                if (low > 0 && g_low[low - 1].end == below.start)
                    g_low[low - 1].end = below.end;
                else
                    g_low[low++] = below;
            }
            if (!above.empty()) {
                if (high > 0 && g_high[high - 1].end == above.start)
                    g_high[high - 1].end = above.end;
                else
                    g_high[high++] = above;
            }
        }

        auto low_result = g_frames.add_ranges(lib::Span<const PhysRange>(g_low, low));
        if (!low_result)
            kernel::panic("Mana Pool: cannot build zones below 4 GiB: {}", to_string(low_result.error()));
        if (g_frames.zone_count() == 0)
            kernel::panic("Mana Pool: no usable RAM below 4 GiB after reserving the kernel and boot data");

        const size_t mapped = map_high_memory(high);

        if (mapped > 0) {
            auto high_result = g_frames.add_ranges(lib::Span<const PhysRange>(g_high, mapped));
            if (!high_result)
                kernel::panic("Mana Pool: cannot build zones above 4 GiB: {}", to_string(high_result.error()));
        }
        g_ready = true;
    }
    g_report.cycles = arch::read_cycle_counter() - t0;

    const FrameStats s = frames_stats();
    lib::log::info("Mana Pool: {} MiB of frames in {} zones ({} MiB in {} below 4 GiB); buddy metadata {} KiB, "
                   "reserved or unusable {} KiB",
                   s.bytes_free / kMiB, s.zone_count, s.bytes_total_below_4gib / kMiB, s.zone_count_below_4gib,
                   s.metadata_bytes / kKiB, s.skipped_bytes / kKiB);
    if (g_report.high_bytes_mapped > 0 || g_report.high_bytes_unmapped > 0)
        lib::log::info("Mana Pool: physmap extended over {} MiB above 4 GiB ({} x 1 GiB + {} x 2 MiB pages, "
                       "{} table frames); {} KiB of high RAM left unmapped",
                       g_report.high_bytes_mapped / kMiB, g_report.physmap_1gib_pages, g_report.physmap_2mib_pages,
                       g_report.physmap_tables, g_report.high_bytes_unmapped / kKiB);
    for (size_t i = 0; i < frames_zone_count(); ++i) {
        const FrameZoneInfo z = frames_zone(i);
        lib::log::debug("Mana Pool: zone {} [{:#x}, {:#x}) {} KiB, metadata {} KiB", i, z.managed.start, z.managed.end,
                        z.managed.size() / kKiB, z.metadata.size() / kKiB);
    }
    lib::log::debug("Mana Pool: frame allocator ready in {} cycles", g_report.cycles);
}

bool frames_ready() { return g_ready; }

const FramesInitReport& frames_init_report() { return g_report; }

lib::Expected<PhysicalAddress, FrameError> frames_allocate(unsigned order, Zero zero, ZoneLimit limit)
{
    lib::Expected<PhysicalAddress, FrameError> frame = lib::unexpected(FrameError::OutOfMemory);
    {
        kernel::sync::IrqSpinLock::Guard guard{g_lock};
        frame = g_frames.allocate(order, Zero::No, limit);
    }
    // Zeroed outside the lock: up to 4 MiB is too long to keep interrupts off for.
    if (frame && zero == Zero::Yes)
        __builtin_memset(frame_to_virt(*frame), 0, kFrameSize << order);
    return frame;
}

[[gnu::noinline]] void frames_free(PhysicalAddress frame)
{
    free_checked(frame, -1, reinterpret_cast<uint64_t>(__builtin_return_address(0)));
}

[[gnu::noinline]] void frames_free(PhysicalAddress frame, unsigned order)
{
    free_checked(frame, static_cast<int>(order), reinterpret_cast<uint64_t>(__builtin_return_address(0)));
}

FrameStats frames_stats()
{
    kernel::sync::IrqSpinLock::Guard guard{g_lock};
    return g_frames.stats();
}

FrameCheckReport frames_check_invariants()
{
    kernel::sync::IrqSpinLock::Guard guard{g_lock};
    return g_frames.check_invariants();
}

size_t frames_zone_count()
{
    kernel::sync::IrqSpinLock::Guard guard{g_lock};
    return g_frames.zone_count();
}

FrameZoneInfo frames_zone(size_t i)
{
    kernel::sync::IrqSpinLock::Guard guard{g_lock};
    return g_frames.zone(i);
}

// Without the lock: the reserved ranges are fixed once init_frames returns.
lib::Span<const PhysRange> frames_reserved_ranges() AETHELOS_NO_THREAD_SAFETY_ANALYSIS
{
    return g_frames.reserved_ranges();
}

PhysicalAddress frames_managed_end()
{
    kernel::sync::IrqSpinLock::Guard guard{g_lock};
    const size_t n = g_frames.zone_count();
    return n == 0 ? PhysicalAddress() : g_frames.zone(n - 1).managed.end;
}

// Without the lock: address arithmetic on the physmap base, which never changes.
void* frame_to_virt(PhysicalAddress frame) AETHELOS_NO_THREAD_SAFETY_ANALYSIS { return g_frames.to_virt(frame); }

PhysicalAddress virt_to_frame(const void* virt) AETHELOS_NO_THREAD_SAFETY_ANALYSIS { return g_frames.to_phys(virt); }

PageSource& kernel_page_source() { return g_page_source; }

} // namespace mm

#endif // __AETHELOS_KERNEL__
