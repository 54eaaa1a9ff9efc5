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

namespace {
uint32_t cpuid7_ebx()
{
    if (cpuid(0).eax < 7)
        return 0;
    return cpuid(7, 0).ebx;
}
} // namespace

bool cpu_has_smep() { return (cpuid7_ebx() & kCpuid7EbxSmep) != 0; }
bool cpu_has_smap() { return (cpuid7_ebx() & kCpuid7EbxSmap) != 0; }

} // namespace arch
