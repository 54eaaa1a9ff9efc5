#pragma once
// The Heartwood's virtual address space, as boot.S builds it (and linker.ld links it):
//
//   0xffff800000000000 .. +4 GiB   physmap: physical 0..4 GiB, 2 MiB pages, RW + NX
//   0xffffffff80000000 + phys      the kernel image (from __text_start), 4 KiB pages with per-section
//                                  permissions; linked for physical load address 1 MiB
//   0 .. 1 GiB                     identity map during the switch to long mode only; removed
//                                  before kernel_main (nothing is mapped in the lower half)
#include <stdint.h>

#include "lib/types.h"

namespace arch {

inline constexpr uint64_t kKernelVirtualBase = 0xffffffff80000000;
inline constexpr uint64_t kKernelPhysicalLoadAddress = 0x100000;
inline constexpr uint64_t kPhysMapBase = 0xffff800000000000;
inline constexpr uint64_t kPhysMapSize = 4ull << 30;

// Page-table entry bits used by boot.S and by code that inspects its tables.
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteUser = 1ull << 2;
inline constexpr uint64_t kPteLargePage = 1ull << 7; // 2 MiB (PD) or 1 GiB (PDPT) leaf
inline constexpr uint64_t kPteNoExecute = 1ull << 63;
inline constexpr uint64_t kPteAddressMask = 0x000ffffffffff000;

// True if `phys` lies inside the physmap.
constexpr bool is_physmapped(PhysicalAddress phys) { return phys.get() < kPhysMapSize; }

// Where physical memory can be read and written. Precondition: is_physmapped(phys).
inline VirtualAddress phys_to_virt(PhysicalAddress phys) { return VirtualAddress(kPhysMapBase + phys.get()); }

// The physical address behind a physmap address. Precondition: inside the physmap.
constexpr PhysicalAddress physmap_to_phys(VirtualAddress virt) { return PhysicalAddress(virt.get() - kPhysMapBase); }

// The physical address of something inside the kernel image (code or static data).
inline PhysicalAddress kernel_virt_to_phys(const void* ptr)
{
    return PhysicalAddress(VirtualAddress::from_ptr(ptr).get() - kKernelVirtualBase);
}

} // namespace arch

// Linker-script symbols (src/arch/x86_64/linker.ld). Only their addresses are meaningful.
extern "C" {
extern const char __text_start[], __text_end[];
extern const char __rodata_start[], __rodata_end[];
extern char __data_start[], __data_end[];
extern char __bss_start[], __bss_end[];
extern const char __ksyms_start[], __ksyms_end[];
extern const char __kernel_virt_start[], __kernel_virt_end[]; // the mapped image, page-aligned
extern const char __kernel_phys_start[], __kernel_phys_end[]; // values are physical addresses
// boot.S: the 64 KiB boot stack, with the unmapped guard page just below it.
extern char boot_stack_guard[], boot_stack_bottom[], boot_stack_top[];
}
