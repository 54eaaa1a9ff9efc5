#pragma once
// The Heartwood's physical frame allocator: one global mm::FrameAllocator over
// the boot memory map, guarded by an IrqSpinLock (callable from interrupt
// handlers), with frames reached through the physmap.
//
//   mm::init_frames(kernel::boot_info());            // once, early in kernel_main
//   auto frame = mm::frames_allocate(0, mm::Zero::Yes);
//   if (!frame) { /* OutOfMemory: callers handle it */ }
//   auto* page = static_cast<uint64_t*>(mm::frame_to_virt(*frame));
//   mm::frames_free(*frame);                         // panics on an invalid free
//
// See frame_allocator.h for zones and policy (highest zones first;
// ZoneLimit::Below4GiB for memory the boot physmap must reach).
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "lib/span.h"
#include "lib/types.h"
#include "mm/frame_allocator.h"
#include "mm/page_source.h"

namespace kernel {
struct BootInfo;
}

namespace mm {

// What init_frames did (also logged).
struct FramesInitReport {
    uint64_t cycles = 0;            // TSC cycles spent in init_frames
    uint64_t high_bytes_mapped = 0; // physmap extension above 4 GiB
    uint32_t physmap_1gib_pages = 0;
    uint32_t physmap_2mib_pages = 0;
    uint32_t physmap_tables = 0;      // page-table frames taken for it
    uint64_t high_bytes_unmapped = 0; // RAM above 4 GiB left out (unaligned edges, failures)
};

// Builds the allocator from the boot memory map. Reserves the first MiB, the
// kernel image (with boot.S's page tables, boot stack and .ksyms), the boot
// modules, the Multiboot2 info blob and the framebuffer; adds the RAM below
// 4 GiB, maps RAM above 4 GiB into the physmap (page tables from low zones),
// then adds it too. Panics when no usable memory is left.
void init_frames(const kernel::BootInfo& info);
bool frames_ready();
const FramesInitReport& frames_init_report();

lib::Expected<PhysicalAddress, FrameError> frames_allocate(unsigned order, Zero zero = Zero::No,
                                                           ZoneLimit limit = ZoneLimit::Any);
// Free by address, or with the order cross-checked. An invalid free (double,
// foreign, interior, wrong order) panics with the address and the caller.
void frames_free(PhysicalAddress frame);
void frames_free(PhysicalAddress frame, unsigned order);

FrameStats frames_stats();
FrameCheckReport frames_check_invariants();
size_t frames_zone_count();
FrameZoneInfo frames_zone(size_t i); // ascending address order
// Fixed once init_frames has run.
lib::Span<const PhysRange> frames_reserved_ranges();
// Exclusive end of the highest zone: the physmap covers all managed RAM below it.
PhysicalAddress frames_managed_end();

// Frames through the physmap (any managed frame is mapped).
void* frame_to_virt(PhysicalAddress frame);
PhysicalAddress virt_to_frame(const void* virt);

// The kernel heap's page source: allocate_pages(order) hands out physmap
// addresses of 2^order frames (nullptr when none are left); free_pages returns
// them (and panics on a bad free, like frames_free).
PageSource& kernel_page_source();

} // namespace mm
