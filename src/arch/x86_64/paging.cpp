// The page-table editor: see paging.h.
#include "arch/x86_64/paging.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/memory_layout.h"

namespace arch {

namespace {

constexpr uint64_t k1GiB = 1ull << 30;
constexpr uint64_t k2MiB = 2ull << 20;
constexpr uint64_t kTableFlags = kPtePresent | kPteWritable;
// A 1 GiB leaf's address field has bits 12..29 reserved (bit 12 is PAT): mask them off.
constexpr uint64_t k1GiBAddressMask = kPteAddressMask & ~(k1GiB - 1);
constexpr uint64_t k2MiBAddressMask = kPteAddressMask & ~(k2MiB - 1);

uint64_t g_physmap_top = kPhysMapSize;

// A table's entries through the physmap. Page tables always live below 4 GiB
// (boot.S's in the image, new ones from PageTableFrameSource), which boot.S maps.
volatile uint64_t* table_at(uint64_t table_phys)
{
    return phys_to_virt(PhysicalAddress(table_phys)).as_ptr<volatile uint64_t>();
}

uint64_t leaf_flags()
{
    const bool nx = (rdmsr(kMsrEfer) & kEferNxe) != 0;
    return kPtePresent | kPteWritable | kPteLargePage | (nx ? kPteNoExecute : 0);
}

// The next-level table behind `entry`, allocating (and linking) a zeroed one if absent.
lib::Expected<uint64_t, PagingError> next_table(volatile uint64_t& entry, const PageTableFrameSource& frames,
                                                PhysmapExtension& ext)
{
    const uint64_t value = entry;
    if ((value & kPtePresent) != 0)
        return value & kPteAddressMask;
    const PhysicalAddress table = frames.allocate != nullptr ? frames.allocate(frames.context) : PhysicalAddress();
    if (table.is_null())
        return lib::unexpected(PagingError::OutOfMemory);
    // Fully written (zeroed by the source) before the entry makes it reachable.
    entry = table.get() | kTableFlags;
    ++ext.tables_allocated;
    return table.get();
}

} // namespace

const char* to_string(PagingError error)
{
    switch (error) {
    case PagingError::OutOfMemory: return "out of page-table frames";
    case PagingError::OutOfRange: return "range not 2 MiB aligned or outside the physmap window";
    case PagingError::Conflict: return "physmap entry maps other memory";
    case PagingError::NotMapped: return "no 4 KiB page mapped there";
    }
    return "unknown paging error";
}

bool cpu_has_1gib_pages()
{
    if (cpuid(0x80000000).eax < 0x80000001)
        return false;
    return (cpuid(0x80000001).edx & (1u << 26)) != 0;
}

lib::Expected<PhysmapExtension, PagingError> map_physmap_range(PhysicalAddress start, PhysicalAddress end,
                                                               const PageTableFrameSource& frames, bool allow_1gib)
{
    if (!(start < end) || !start.is_aligned(k2MiB) || !end.is_aligned(k2MiB) || end.get() > kPhysMapMaxBytes)
        return lib::unexpected(PagingError::OutOfRange);
    const bool use_1gib = allow_1gib && cpu_has_1gib_pages();
    const uint64_t leaf = leaf_flags();
    volatile uint64_t* pml4 = table_at(read_cr3() & kPteAddressMask);
    PhysmapExtension ext;
    bool changed = false;

    auto finish = [&]() {
        // Entries only went from not-present to present, which needs no invalidation
        // (no TLB or paging-structure cache entry is made from a not-present entry,
        // SDM 4.10.4.3). One CR3 reload at boot costs nothing and leaves no doubt.
        if (changed || ext.tables_allocated != 0)
            write_cr3(read_cr3());
    };

    for (uint64_t gib = start.get() & ~(k1GiB - 1); gib < end.get(); gib += k1GiB) {
        const uint64_t virt = kPhysMapBase + gib;
        auto pdpt = next_table(pml4[(virt >> 39) & 511], frames, ext);
        if (!pdpt) {
            finish();
            return lib::unexpected(pdpt.error());
        }
        volatile uint64_t& pdpte = table_at(*pdpt)[(virt >> 30) & 511];
        const uint64_t lo = gib > start.get() ? gib : start.get();
        const uint64_t hi = gib + k1GiB < end.get() ? gib + k1GiB : end.get();

        const uint64_t existing = pdpte;
        if ((existing & kPtePresent) != 0 && (existing & kPteLargePage) != 0) {
            if ((existing & k1GiBAddressMask) != gib) {
                finish();
                return lib::unexpected(PagingError::Conflict);
            }
            continue; // this GiB is mapped already
        }
        if ((existing & kPtePresent) == 0 && use_1gib && lo == gib && hi == gib + k1GiB) {
            pdpte = gib | leaf;
            ++ext.pages_1gib;
            ext.bytes_mapped += k1GiB;
            changed = true;
            continue;
        }
        auto pd = next_table(pdpte, frames, ext);
        if (!pd) {
            finish();
            return lib::unexpected(pd.error());
        }
        volatile uint64_t* pd_entries = table_at(*pd);
        for (uint64_t m = lo; m < hi; m += k2MiB) {
            volatile uint64_t& pde = pd_entries[((kPhysMapBase + m) >> 21) & 511];
            const uint64_t value = pde;
            if ((value & kPtePresent) != 0) {
                // A 2 MiB leaf must map this very address; a 4 KiB table below it is
                // someone's finer mapping of it, left alone.
                if ((value & kPteLargePage) != 0 && (value & k2MiBAddressMask) != m) {
                    finish();
                    return lib::unexpected(PagingError::Conflict);
                }
                continue;
            }
            pde = m | leaf;
            ++ext.pages_2mib;
            ext.bytes_mapped += k2MiB;
            changed = true;
        }
    }
    if (end.get() > g_physmap_top)
        g_physmap_top = end.get();
    finish();
    return ext;
}

bool physmap_maps(PhysicalAddress phys)
{
    if (phys.get() >= kPhysMapMaxBytes)
        return false;
    const uint64_t virt = kPhysMapBase + phys.get();
    uint64_t table = read_cr3() & kPteAddressMask;
    for (int level = 3; level >= 0; --level) {
        const uint64_t entry = table_at(table)[(virt >> (12 + 9 * level)) & 511];
        if ((entry & kPtePresent) == 0)
            return false;
        if (level == 0 || ((level == 1 || level == 2) && (entry & kPteLargePage) != 0)) {
            const uint64_t page = level == 2 ? k1GiB : level == 1 ? k2MiB : kPageSize;
            const uint64_t mask = kPteAddressMask & ~(page - 1);
            return (entry & mask) == (phys.get() & ~(page - 1));
        }
        table = entry & kPteAddressMask;
    }
    return false;
}

uint64_t physmap_top() { return g_physmap_top; }

namespace {

bool is_kernel_window(uint64_t virt)
{
    // Upper half, outside the physmap window and the image's PML4 slot.
    return virt >= kPhysMapBase + kPhysMapMaxBytes && virt < kKernelVirtualBase && (virt & (kPageSize - 1)) == 0;
}

// The PT entry for `virt`, walking (and with `frames`, creating) the upper levels.
// A large page on the way is a Conflict: this window only holds 4 KiB pages.
lib::Expected<volatile uint64_t*, PagingError> pte_for(uint64_t virt, const PageTableFrameSource* frames,
                                                       PhysmapExtension& ext)
{
    uint64_t table = read_cr3() & kPteAddressMask;
    for (int level = 3; level >= 1; --level) {
        volatile uint64_t& entry = table_at(table)[(virt >> (12 + 9 * level)) & 511];
        if ((entry & kPtePresent) == 0 && frames == nullptr)
            return lib::unexpected(PagingError::NotMapped);
        if ((entry & kPtePresent) != 0 && (entry & kPteLargePage) != 0)
            return lib::unexpected(PagingError::Conflict);
        auto next = next_table(entry, frames != nullptr ? *frames : PageTableFrameSource{}, ext);
        if (!next)
            return lib::unexpected(next.error());
        table = *next;
    }
    return &table_at(table)[(virt >> 12) & 511];
}

} // namespace

lib::Expected<uint32_t, PagingError> populate_kernel_tables(VirtualAddress start, VirtualAddress end,
                                                            const PageTableFrameSource& frames)
{
    if (!(start < end) || !is_kernel_window(start.get()) || !is_kernel_window(end.get() - kPageSize))
        return lib::unexpected(PagingError::OutOfRange);
    PhysmapExtension ext;
    // One PT covers 2 MiB: touching one address per 2 MiB creates every table.
    for (uint64_t virt = start.get(); virt < end.get(); virt = (virt & ~(k2MiB - 1)) + k2MiB) {
        auto pte = pte_for(virt, &frames, ext);
        if (!pte)
            return lib::unexpected(pte.error());
    }
    return ext.tables_allocated;
}

lib::Expected<void, PagingError> map_kernel_page(VirtualAddress virt, PhysicalAddress phys,
                                                 const PageTableFrameSource& frames)
{
    if (!is_kernel_window(virt.get()) || !phys.is_aligned(kPageSize))
        return lib::unexpected(PagingError::OutOfRange);
    PhysmapExtension ext;
    auto pte = pte_for(virt.get(), &frames, ext);
    if (!pte)
        return lib::unexpected(pte.error());
    if ((**pte & kPtePresent) != 0)
        return lib::unexpected(PagingError::Conflict);
    const bool nx = (rdmsr(kMsrEfer) & kEferNxe) != 0;
    // Not-present -> present needs no invalidation (SDM 4.10.4.3).
    **pte = phys.get() | kPtePresent | kPteWritable | (nx ? kPteNoExecute : 0);
    return {};
}

namespace {

// The present PTE that maps `virt` in the kernel window (no table is created on the way).
lib::Expected<volatile uint64_t*, PagingError> present_kernel_pte(VirtualAddress virt)
{
    if (!is_kernel_window(virt.get()))
        return lib::unexpected(PagingError::OutOfRange);
    PhysmapExtension ext;
    auto pte = pte_for(virt.get(), nullptr, ext);
    if (!pte)
        return lib::unexpected(pte.error());
    if ((**pte & kPtePresent) == 0)
        return lib::unexpected(PagingError::NotMapped);
    return *pte;
}

} // namespace

lib::Expected<PhysicalAddress, PagingError> unmap_kernel_page(VirtualAddress virt)
{
    auto pte = present_kernel_pte(virt);
    if (!pte)
        return lib::unexpected(pte.error());
    const uint64_t value = **pte;
    **pte = 0;
    invlpg(virt);
    return PhysicalAddress(value & kPteAddressMask);
}

lib::Expected<PhysicalAddress, PagingError> kernel_page_frame(VirtualAddress virt)
{
    auto pte = present_kernel_pte(virt);
    if (!pte)
        return lib::unexpected(pte.error());
    return PhysicalAddress(**pte & kPteAddressMask);
}

namespace {

struct AuditWalk {
    MappingAudit& audit;

    static uint64_t canonical(uint64_t virt) { return static_cast<uint64_t>(static_cast<int64_t>(virt << 16) >> 16); }

    // level 3 = PML4 .. 0 = PT; `base` is the virtual address the table starts covering.
    void walk(uint64_t table_phys, int level, uint64_t base, bool writable, bool executable, bool user)
    {
        if (table_phys >= physmap_top()) {
            ++audit.unreachable_tables;
            return;
        }
        ++audit.tables;
        const volatile uint64_t* table = table_at(table_phys);
        const unsigned shift = 12 + 9 * static_cast<unsigned>(level);
        for (uint64_t i = 0; i < 512; ++i) {
            const uint64_t entry = table[i];
            if ((entry & kPtePresent) == 0)
                continue;
            const uint64_t virt = canonical(base + (i << shift));
            const bool w = writable && (entry & kPteWritable) != 0;
            const bool x = executable && !(audit.nx_enabled && (entry & kPteNoExecute) != 0);
            const bool u = user && (entry & kPteUser) != 0;
            const bool leaf = level == 0 || ((level == 1 || level == 2) && (entry & kPteLargePage) != 0);
            if (!leaf) {
                walk(entry & kPteAddressMask, level - 1, virt, w, x, u);
                continue;
            }
            if (level == 0)
                ++audit.leaves_4kib;
            else if (level == 1)
                ++audit.leaves_2mib;
            else
                ++audit.leaves_1gib;
            if (w && x && audit.writable_executable++ == 0)
                audit.first_writable_executable = virt;
            if (u && audit.user_accessible++ == 0)
                audit.first_user_accessible = virt;
        }
    }
};

} // namespace

MappingAudit audit_live_mappings()
{
    MappingAudit audit;
    audit.nx_enabled = (rdmsr(kMsrEfer) & kEferNxe) != 0;
    AuditWalk walk{audit};
    walk.walk(read_cr3() & kPteAddressMask, 3, 0, true, true, true);
    return audit;
}

} // namespace arch
