// x86_64 implementation of the generic arch/cpu.h.
#include "arch/x86_64/cpu.h"

namespace arch {

bool interrupts_enabled() { return (read_rflags() & kRflagsInterrupt) != 0; }

// The "memory" clobbers keep the compiler from moving memory accesses across the flag change.
void interrupts_disable() { asm volatile("cli" : : : "memory"); }
void interrupts_enable() { asm volatile("sti" : : : "memory"); }

// `sti` takes effect after the next instruction, so no interrupt can slip in before `hlt`.
void wait_for_interrupt() { asm volatile("sti; hlt" : : : "memory"); }

void cpu_relax() { asm volatile("pause" : : : "memory"); }

[[noreturn]] void halt_forever()
{
    for (;;)
        asm volatile("cli; hlt" : : : "memory");
}

uint64_t read_cycle_counter() { return rdtsc(); }

} // namespace arch
