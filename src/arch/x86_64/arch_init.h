#pragma once
// Bringing up the Attunement on x86_64. kernel_main calls, in order:
//   arch::init_cpu();                    // GDT + TSS, IDT, PIC remapped with every line masked,
//                                        // SMEP and SMAP on when the CPU has them
//   arch::start_timer(hz);               // or kernel::time::init(arch::system_timer(), hz)
//   arch::interrupts_enable();
#include <stdint.h>

namespace arch {

void init_cpu();

// Starts the system timer at `hz` through kernel::time (which panics on an unsupported rate).
void start_timer(uint32_t hz);

} // namespace arch
