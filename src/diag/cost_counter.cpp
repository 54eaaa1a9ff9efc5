#include "diag/cost_counter.h"

#include "arch/cpu.h"

namespace kernel::diag {

uint64_t counter_read_overhead()
{
    const uint64_t t0 = arch::read_cycle_counter();
    const uint64_t t1 = arch::read_cycle_counter();
    return t1 - t0;
}

uint64_t counter_loop_ticks(uint64_t loops)
{
    uint64_t n = loops;
    const uint64_t t0 = arch::read_cycle_counter();
    asm volatile("1: dec %0\n\tjnz 1b" : "+r"(n) : : "cc"); // 2 instructions per iteration
    return arch::read_cycle_counter() - t0;
}

bool counter_counts_instructions(uint64_t* extra_ticks)
{
    arch::InterruptGuard no_irqs;
    const uint64_t once = counter_loop_ticks(kCalibrationLoops);
    const uint64_t twice = counter_loop_ticks(2 * kCalibrationLoops);
    *extra_ticks = twice - once;
    return *extra_ticks == 2 * kCalibrationLoops;
}

} // namespace kernel::diag
