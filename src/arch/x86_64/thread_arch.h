#pragma once
// x86_64 side of the Loom of Fate: FPU/SSE enablement, the context switch and the kernel-stack
// area. The generic interface (arch::thread_context_*, arch::kernel_stack_*) is declared in
// arch/thread.h; this header adds what only x86_64 code (the exception reports) needs.
//
// Kernel-stack area: a window of kKernelStackSlots slots of kKernelStackSlotBytes each at
// kKernelStackAreaBase (PML4 slot 448, outside the physmap's 64 TiB and the image). A slot is
//
//   slot base                                 base + 16 KiB                      base + 32 KiB
//   |  guard: 4 pages, never mapped          |  stack: 4 pages, RW + NX            | (next slot)
//
// so running off the bottom of a stack touches an unmapped page: the #PF cannot push its frame on
// that stack and escalates to #DF, which runs on IST1 and names the thread (interrupts.cpp).
// The page tables of the whole window are created once at init, so mapping and unmapping a stack
// never allocates or frees a table and the Mana Pool's figures return exactly to where they were.
#include <stdint.h>

#include "arch/thread.h"

namespace arch {

inline constexpr uint64_t kKernelStackAreaBase = 0xffffe00000000000;
inline constexpr uint64_t kKernelStackSlotBytes = 32 * 1024;
inline constexpr uint64_t kKernelStackGuardBytes = kKernelStackSlotBytes - kKernelStackBytes;
inline constexpr uint32_t kKernelStackSlots = 1024;
inline constexpr uint64_t kKernelStackAreaBytes = kKernelStackSlotBytes * kKernelStackSlots;
static_assert(kKernelStackGuardBytes >= 4096);

// If `address` lies in the guard of a kernel stack slot, stores the slot and returns true.
bool kernel_stack_guard_hit(uint64_t address, uint32_t* slot);
// If `address` lies anywhere in the kernel-stack area (guard or stack).
inline bool in_kernel_stack_area(uint64_t address) { return address - kKernelStackAreaBase < kKernelStackAreaBytes; }

} // namespace arch

extern "C" void arch_context_switch(arch::ThreadContext* from, arch::ThreadContext* to);
extern "C" void arch_thread_trampoline();
