#pragma once
// x86_64 bodies of the interrupt-flag half of the generic arch/cpu.h, inline because every
// IrqSpinLock and InterruptGuard runs them: an out-of-line call per flag change was measurable on
// the yield path. Included only through arch/cpu.h in kernel builds.
#include <stdint.h>

namespace arch {

inline bool interrupts_enabled()
{
    uint64_t flags;
    asm volatile("pushfq; popq %0" : "=r"(flags) : : "memory");
    return (flags & (1ull << 9)) != 0; // RFLAGS.IF
}

// The "memory" clobbers keep the compiler from moving memory accesses across the flag change.
inline void interrupts_disable() { asm volatile("cli" : : : "memory"); }
inline void interrupts_enable() { asm volatile("sti" : : : "memory"); }

} // namespace arch
