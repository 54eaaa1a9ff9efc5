#pragma once
// A small editor for the live x86_64 page tables, reached through the physmap.
//
// For now it does one job: extending the physmap (kPhysMapBase + phys) past the
// 4 GiB that boot.S maps, so RAM above 4 GiB can be handed out as frames and
// written through the physmap like the rest. Only RAM is mapped (callers pass
// usable ranges, not the whole span up to the top of RAM): a write-back mapping
// of MMIO holes could let the CPU speculatively touch device memory.
//
// New leaves are RW + NX (NX only when EFER.NXE is on, since bit 63 is
// reserved otherwise), never user, write-back. 1 GiB pages are used for every
// whole, aligned GiB inside a range when the CPU has them (CPUID
// 80000001h:EDX[26] pdpe1gb); everything else gets 2 MiB pages, so range bounds
// must be 2 MiB aligned.
//
// Not thread-safe: the caller serialises (the frame allocator's init does).
#include <stdint.h>

#include "lib/expected.h"
#include "lib/types.h"

namespace arch {

// How far the physmap may grow: PML4 slots 256..383 (64 TiB), leaving the rest
// of the upper half to other regions and the kernel image (slot 511).
inline constexpr uint64_t kPhysMapMaxBytes = 64ull << 40;
inline constexpr uint64_t kPhysMapGranule = 2ull << 20; // smallest page the physmap editor uses

// Where new page tables come from: a zeroed 4 KiB frame that the physmap
// already covers (below 4 GiB), or a null address when none is left.
struct PageTableFrameSource {
    void* context = nullptr;
    PhysicalAddress (*allocate)(void* context) = nullptr;
};

enum class PagingError : uint8_t {
    OutOfMemory, // the frame source ran dry (whatever was mapped before stays mapped)
    OutOfRange,  // not 2 MiB aligned, empty/inverted, or beyond kPhysMapMaxBytes
    Conflict,    // an existing physmap entry maps some other physical address
    NotMapped,   // 4 KiB editor: nothing is mapped at that address
};

const char* to_string(PagingError error);

struct PhysmapExtension {
    uint64_t bytes_mapped = 0; // newly mapped (already-mapped parts are skipped)
    uint32_t pages_1gib = 0;
    uint32_t pages_2mib = 0;
    uint32_t tables_allocated = 0; // PDPTs and PDs taken from the frame source
};

// True when the CPU can map 1 GiB pages.
bool cpu_has_1gib_pages();

// Maps physical [start, end) at kPhysMapBase + phys. Idempotent: entries that
// already map exactly this memory are kept. `allow_1gib` = false forces 2 MiB
// pages (tests). On error, what was mapped before the error stays mapped and
// consistent.
lib::Expected<PhysmapExtension, PagingError> map_physmap_range(PhysicalAddress start, PhysicalAddress end,
                                                               const PageTableFrameSource& frames,
                                                               bool allow_1gib = true);

// True when `phys` is mapped in the physmap by the live tables.
bool physmap_maps(PhysicalAddress phys);

// Exclusive end of the highest physical address mapped by the physmap so far
// (at least kPhysMapSize, the boot map).
uint64_t physmap_top();

// ---- 4 KiB kernel mappings (the Loom of Fate's kernel-stack area) ----
// For a dedicated upper-half window outside the physmap and the image (see
// thread_arch.h). Leaves are RW + NX (when EFER.NXE), global off, never user.
// The caller serialises (the kernel-stack area has its own lock).

// Creates every missing PDPT, PD and PT covering [start, end) (4 KiB aligned),
// so that later map_kernel_page calls in that window never allocate. Returns
// the number of tables allocated. Tables are never freed.
lib::Expected<uint32_t, PagingError> populate_kernel_tables(VirtualAddress start, VirtualAddress end,
                                                            const PageTableFrameSource& frames);
// Maps one 4 KiB page. Missing tables come from `frames` (pass an empty source
// after populate_kernel_tables: OutOfMemory then means "outside the window").
// Conflict if something is mapped there already.
lib::Expected<void, PagingError> map_kernel_page(VirtualAddress virt, PhysicalAddress phys,
                                                 const PageTableFrameSource& frames);
// Unmaps one 4 KiB page, flushes it from this CPU's TLB and returns the frame
// it mapped (NotMapped when there was none).
lib::Expected<PhysicalAddress, PagingError> unmap_kernel_page(VirtualAddress virt);
// The frame behind a 4 KiB kernel mapping, or NotMapped.
lib::Expected<PhysicalAddress, PagingError> kernel_page_frame(VirtualAddress virt);

// ---- Auditing the live tables (hardening checks) ----

// What a walk of every present entry of the live page tables (all four levels, 2 MiB and 1 GiB
// leaves included) found. Permissions are effective ones: writable only if every level allows
// writing, executable unless some level has NX (everything is executable without EFER.NXE),
// user-accessible only if every level has U.
struct MappingAudit {
    bool nx_enabled = false;
    uint64_t tables = 0; // page tables visited, the PML4 included
    uint64_t leaves_4kib = 0;
    uint64_t leaves_2mib = 0;
    uint64_t leaves_1gib = 0;
    uint64_t writable_executable = 0;       // leaves both writable and executable: W^X violations
    uint64_t user_accessible = 0;           // leaves a user-mode access could reach
    uint64_t first_writable_executable = 0; // virtual address of the first violation (0: none)
    uint64_t first_user_accessible = 0;
    uint64_t unreachable_tables = 0; // tables outside the physmap (not walked)
};

MappingAudit audit_live_mappings();

} // namespace arch
