// x86_64 implementation of the generic arch/cpu.h.
#include "arch/x86_64/cpu.h"

namespace arch {

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
