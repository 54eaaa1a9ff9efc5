#pragma once
// The counter the cost ktests (mm_cost, sched_cost) read: the TSC, which under QEMU
// `-icount shift=0` advances exactly once per guest instruction, so their figures are exact
// instruction counts there and cycle counts on hardware.
#include <stdint.h>

namespace kernel::diag {

inline constexpr uint64_t kCalibrationLoops = 10000;

// The counter read by itself, as a measurement sees it.
uint64_t counter_read_overhead();
// Ticks for a loop of exactly 2 * loops instructions, counter reads included.
uint64_t counter_loop_ticks(uint64_t loops);
// Whether the counter advances exactly once per instruction: doubling the loop must add exactly
// its 2 * kCalibrationLoops instructions (the cost of the reads cancels out), with interrupts off.
// A cycle counter is never that exact. `extra_ticks` gets what the doubling added.
bool counter_counts_instructions(uint64_t* extra_ticks);

} // namespace kernel::diag
