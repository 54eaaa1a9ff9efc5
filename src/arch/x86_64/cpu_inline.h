#pragma once
// x86_64 bodies of the interrupt-flag half of the generic arch/cpu.h, inline because every
// IrqSpinLock and InterruptGuard runs them: an out-of-line call per flag change was measurable on
// the yield path. Included only through arch/cpu.h in kernel builds.
#include <stdint.h>

namespace arch {

inline constexpr uint64_t kRflagsInterrupt = 1ull << 9; // RFLAGS.IF

inline uint64_t read_rflags()
{
    uint64_t v;
    asm volatile("pushfq; popq %0" : "=r"(v) : : "memory");
    return v;
}

inline bool interrupts_enabled() { return (read_rflags() & kRflagsInterrupt) != 0; }

// The "memory" clobbers keep the compiler from moving memory accesses across the flag change.
inline void interrupts_disable() { asm volatile("cli" : : : "memory"); }
inline void interrupts_enable() { asm volatile("sti" : : : "memory"); }

} // namespace arch
